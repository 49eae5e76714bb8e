"""The model training starts from: the base plugin's segmenter, its weights or a random initialisation.

With ``init = "checkpoint"`` the segmenter is built by the plugin's own
factory (registry build, verified weights, input convention), exactly as a
suite builds it. With ``init = "random"`` it is the same segmenter class on
segment_anything's registry model (SAM 2: ``build_sam2`` on the packaged
config) with the builder's random initialisation (seeded by the recipe), or, with ``architecture = "reduced"``,
on the same builder with a small image encoder (:mod:`mskbench.segmenters.architecture`: SAM's ``_build_sam``
with a 1-block, 64-wide ViT; SAM 2's config with a 5-block, 8-wide Hiera): prompt encoder and mask decoder
stay full size, so decoder training does the real work; only the encoder is small.
A reduced checkpoint loads in the SAM plugins like any other: the card
beside it records the architecture and the plugin builds that one
(:mod:`mskbench.segmenters.architecture`, the one place that builds either).

Which parameters train, per ``mode`` (counts for SAM ViT-B in docs/training.md):

- ``decoder``: the mask decoder and the prompt encoder (SAM 2: ``sam_mask_decoder``, ``sam_prompt_encoder``);
  the image encoder is frozen (its embeddings are computed once and cached);
- ``full``: every parameter;
- ``adapters``: only SegmentAnyBone's adapters (encoder ``Space_Adapter`` / ``MLP_Adapter``, decoder
  ``Adapter`` / ``MLP_Adapter``; :mod:`mskbench.segmenters.adapters`); every base weight is frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mskbench.plugin_manager import Registry
from mskbench.segmenters.architecture import sam2_model, sam_model
from mskbench.segmenters.sam_family import PromptableSegmenter, Weights
from mskbench.training.card import BaseModel


def input_convention(plugin: str, params: dict[str, Any]) -> str:
    """How the base plugin turns a slice into model input (recorded on the card)."""
    if plugin in ("sam", "sam2"):
        return params["input_convention"]
    return plugin  # medsam: MedSAM's recipe; samri: SAMRI's stretch + SamPredictor


def _random_segmenter(plugin: str, params: dict[str, Any], architecture: str, device: str) -> PromptableSegmenter:
    from mskbench.segmenters.medsam import MedSamSegmenter, SamMedsamInput
    from mskbench.segmenters.sam import SamriSegmenter, SamSegmenter

    if plugin == "sam2":
        from mskbench.segmenters import sam2_image
        from mskbench.segmenters.sam_catalog import sam2_config

        cls = sam2_image.Sam2MedsamInput if params["input_convention"] == "medsam" else sam2_image.Sam2Segmenter
        model = sam2_model(sam2_config(params["version"], params["variant"]), architecture)
        return cls(model, device=device, precision=params["precision"],
                   variant=f"{params['version']}/{params['variant']}", weights=initial_weights(model))
    if plugin == "sam":
        cls = SamMedsamInput if params["input_convention"] == "medsam" else SamSegmenter
        variant = params["variant"]
    else:
        cls, variant = {"medsam": MedSamSegmenter, "samri": SamriSegmenter}[plugin], params.get("variant", "vit_b")
    build = params.get("variant", "vit_b") if plugin == "sam" else "vit_b"
    model = sam_model(build, architecture)
    return cls(model, device=device, precision=params["precision"], variant=variant, weights=initial_weights(model))


def initial_weights(model: torch.nn.Module) -> Weights:
    """No file, but the sha256 of the random initial state dict as ``torch.save`` writes it: it keys the
    embedding cache (two random inits never share embeddings) and the card records it."""
    import hashlib
    import io

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return Weights(None, hashlib.sha256(buffer.getvalue()).hexdigest())


@dataclass(frozen=True)
class Base:
    segmenter: PromptableSegmenter
    card: BaseModel


def build_base(base: dict[str, Any], seed: int, device: str, registry: Registry) -> Base:
    """The recipe's ``[base]`` as a segmenter on ``device``, and its card entry."""
    plugin = base["plugin"]
    params = registry.resolve_params("model", plugin, base["params"], "base.params")
    if base["init"] == "random":
        torch.manual_seed(seed)
        segmenter = _random_segmenter(plugin, params, base["architecture"], device)
    else:
        info = registry.get("model", plugin, "base.plugin")
        if info.preflight is not None:
            info.preflight(params, base["checkpoint"])
        segmenter = registry.create("model", plugin, params, "base", device=device, checkpoint=base["checkpoint"])
    weights = segmenter.weights
    card = BaseModel(plugin, params, weights.path, weights.sha256, input_convention(plugin, params))
    return Base(segmenter, card)


def trainable_parameters(model: torch.nn.Module, mode: str) -> list[torch.nn.Parameter]:
    """Freeze what ``mode`` keeps fixed (``requires_grad = False``); the parameters that train, in model order.
    ``adapters``: the adapters must be attached (:func:`mskbench.segmenters.adapters.attach_adapters`)."""
    from mskbench.segmenters.adapters import ADAPTER_NAMES

    decoder = ("prompt_encoder.", "mask_decoder.", "sam_prompt_encoder.", "sam_mask_decoder.")  # SAM, SAM 2
    trains = {
        "decoder": lambda name: name.startswith(decoder),
        "full": lambda name: True,
        "adapters": lambda name: not ADAPTER_NAMES.isdisjoint(name.split(".")),
    }[mode]
    out = []
    for name, param in model.named_parameters():
        param.requires_grad_(trains(name))
        if param.requires_grad:
            out.append(param)
    return out

"""What the SAM-family segmenters share: weights loading, encode/decode batching, the manifest entry.

Each concrete segmenter (:mod:`.sam`, :mod:`.medsam`, :mod:`.sam2_image`)
supplies only its own model convention: ``_encode_batch`` (same-sized slices
-> one embedding dict each) and ``_decode_group`` (one embedding, one
:class:`~mskbench.segmenters.prompt_batch.PromptGroup` -> bool masks). This
base class does the rest the same way for all of them: one encoder call per
chunk of equally sized slices, one decoder call per prompt layout, no_grad
and autocast, prompt checks, the manifest.

Embeddings are ``dict[str, Tensor | int | tuple]`` with CPU tensors, so the
embedding cache can ``torch.save`` them and reload with ``weights_only=True``,
and a whole volume of embeddings lives in host memory, not on the GPU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mskbench.segmenters.checkpoints import (
    apply_state_dict,
    expected_sha256,
    load_checkpoint_state,
    resolve_checkpoint,
    sha256_file,
)
from mskbench.segmenters.prompt_batch import PromptGroup, check_prompts, group_prompts
from mskbench.segmenters.torch_utils import check_precision, effective_precision, inference_context, torch_device
from mskbench.types import Prompt

Embedding = dict[str, Any]

#: slices per encoder call; bounds the activation memory of a ViT-H global-attention block.
DEFAULT_ENCODE_BATCH = 4


@dataclass(frozen=True)
class Weights:
    """Where a model's weights came from, for the run manifest (None: in-memory model)."""

    path: str | None = None
    sha256: str | None = None


def load_weights(model: torch.nn.Module, key: str, checkpoint: str | None, arch: str) -> Weights:
    """Load the checkpoint for registry ``key`` (or the suite's path) into ``model``.

    The file is verified against the official sha256 when it is the official
    file, loaded with ``weights_only=True``, and a state dict for another
    architecture is one :class:`CheckpointError` naming ``arch``. Encoder and
    decoder adapters the state dict has entries for are attached first (:mod:`.adapters`).
    """
    from mskbench.segmenters.adapters import attach_adapters_for

    path = resolve_checkpoint(key, checkpoint)
    state = load_checkpoint_state(path, expected_sha256(key, path))
    attach_adapters_for(model, state)  # a checkpoint of `mskbench train`'s adapters mode (none: nothing attached)
    apply_state_dict(model, state, path=path, arch=arch)
    return Weights(str(path), sha256_file(path))


class PromptableSegmenter:
    """Base of the SAM-family segmenters; see the module docstring for the split of work."""

    supported_prompts: frozenset[str] = frozenset()
    architecture: str = ""
    #: a mask is where the decoded score map exceeds this (upstream's own threshold).
    threshold: float = 0.0
    #: names the image and prompt transforms; part of the embedding-cache key.
    preprocessing: str = ""
    #: a single click decoded with ``multimask_output=True``, keeping the mask with the highest predicted IoU
    #: (the upstream predictors' documented advice); False: one mask for every prompt (SAMRI's own inference).
    single_click_multimask: bool = True
    #: ``encode`` shares no mutable state with ``decode``/``refine`` (each model encodes through a predictor of
    #: its own), so the next batch may be encoded on another thread (:mod:`mskbench.execution.encode_pipeline`).
    concurrent_encode: bool = True

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        device: str,
        precision: str,
        variant: str,
        weights: Weights | None = None,
        encode_batch: int = DEFAULT_ENCODE_BATCH,
    ) -> None:
        self.device = torch_device(device)
        self.precision = effective_precision(self.device, precision, self.architecture)
        self.model = model.to(self.device).eval()
        self.variant = variant
        self.weights = weights or Weights()
        self.encode_batch = max(1, int(encode_batch))

    # -- the Segmenter protocol --------------------------------------------------------------

    def encode(self, images: Sequence[np.ndarray]) -> list[Embedding]:
        """One embedding per uint8 H×W slice; equally sized slices share encoder calls."""
        for image in images:
            if not (isinstance(image, np.ndarray) and image.ndim == 2 and image.dtype == np.uint8):
                raise ValueError(
                    f"{self.architecture} encodes uint8 H×W slices, got "
                    f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}"
                )
        embeddings: list[Embedding | None] = [None] * len(images)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for index, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(index)
        with inference_context(self.device, self.precision):
            for indices in by_shape.values():
                for start in range(0, len(indices), self.encode_batch):
                    chunk = indices[start : start + self.encode_batch]
                    for index, embedding in zip(chunk, self._encode_batch([images[i] for i in chunk])):
                        embeddings[index] = embedding
        return embeddings  # type: ignore[return-value]

    def decode(self, embedding: Embedding, prompts: Sequence[Prompt]) -> np.ndarray:
        """Bool masks (len(prompts), H, W) in the slice's pixels: :meth:`decode_scores` > ``threshold``."""
        return self.decode_scores(embedding, prompts) > self.threshold

    def decode_scores(self, embedding: Embedding, prompts: Sequence[Prompt]) -> np.ndarray:
        """The float32 maps (len(prompts), H, W) the masks are thresholded from, one decoder call per layout.

        Logits for SAM and SAM 2, probabilities for MedSAM, each exactly as
        its upstream inference computes them before its own threshold.
        """
        height, width = (int(v) for v in embedding["original_size"])
        check_prompts(prompts, self.supported_prompts, (height, width), self.architecture)
        scores = np.zeros((len(prompts), height, width), dtype=np.float32)
        with inference_context(self.device, self.precision):
            for group in group_prompts(prompts):
                scores[list(group.indices)] = self._decode_group(embedding, group)
        return scores

    def describe(self) -> dict[str, Any]:
        """Manifest entry: what ran, from which weights, how (``precision``: the one actually used)."""
        return {
            **weights_manifest(self),
            "single_click_multimask": self.single_click_multimask,
            "supported_prompts": sorted(self.supported_prompts),
        }

    def _multimask(self, group: PromptGroup) -> bool:
        """``multimask_output`` for one prompt group: only a single click, and only where the model's convention says so."""
        return group.multimask and self.single_click_multimask

    # -- supplied by each model --------------------------------------------------------------

    def _encode_batch(self, images: list[np.ndarray]) -> list[Embedding]:
        raise NotImplementedError

    def _decode_group(self, embedding: Embedding, group: PromptGroup) -> np.ndarray:
        """Float score maps (n, H, W) for one prompt group."""
        raise NotImplementedError


def sam_from_checkpoint(cls: type, build: str, key: str, arch: str, variant: str, precision: str, device: str,
                        checkpoint: str | None) -> Any:
    """A segmenter of ``cls`` on segment_anything's registry model ``build`` with the verified checkpoint ``key``
    (SAM, SAMRI, MedSAM and SAM weights through MedSAM's recipe all load this way); precision checked first.
    A checkpoint `mskbench train` wrote builds the architecture its card records (:mod:`.architecture`)."""
    from mskbench.segmenters.architecture import sam_model

    check_precision(device, precision, cls.architecture)
    model, weights = load_card_architecture(lambda architecture: sam_model(build, architecture), key, checkpoint, arch)
    return cls(model, device=device, precision=precision, variant=variant, weights=weights)


def load_card_architecture(build: Callable[[str], torch.nn.Module], key: str, checkpoint: str | None,
                           arch: str) -> tuple[torch.nn.Module, Weights]:
    """The model ``build(architecture)`` makes for the architecture ``checkpoint``'s card records ("full" without
    a card: :mod:`.architecture`), with the checkpoint loaded by :func:`load_weights`; SAM and SAM 2 load so."""
    from mskbench.segmenters.architecture import checkpoint_architecture

    path = str(resolve_checkpoint(key, checkpoint))
    architecture = checkpoint_architecture(path)
    model = build(architecture)
    label = arch if architecture == "full" else f"{arch} ({architecture}, as its card records)"
    return model, load_weights(model, key, path, arch=label)


def weights_manifest(model: Any) -> dict[str, Any]:
    """The manifest fields every SAM-family model has: architecture, variant, weights, precision, device, preprocessing."""
    return {
        "architecture": model.architecture,
        "variant": model.variant,
        "checkpoint": model.weights.path,
        "checkpoint_sha256": model.weights.sha256,
        "precision": model.precision,
        "device": str(model.device),
        "preprocessing": model.preprocessing,
    }


def sam_decoder_logits(model: Any, features: torch.Tensor, points: tuple[torch.Tensor, torch.Tensor] | None,
                       boxes: torch.Tensor | None, masks: torch.Tensor | None) -> torch.Tensor:
    """segment_anything's prompt encoder then mask decoder (single mask) on one slice's (C, h, w) features, for
    prompts already in the model's input space: the step SAM's and MedSAM's decoders share."""
    sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=masks)
    logits, _ = model.mask_decoder(
        image_embeddings=features[None],
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=False,
    )
    return logits


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A grayscale uint8 slice as the H×W×3 RGB uint8 image the SAM predictors take."""
    return np.repeat(image[:, :, None], 3, axis=2)


def pick_masks(maps: np.ndarray, iou_predictions: np.ndarray, multimask: bool) -> np.ndarray:
    """(n, C, H, W) -> (n, H, W): the only map, or for multimask output the one with the highest predicted IoU."""
    if not multimask:
        return maps[:, 0]
    return maps[np.arange(len(maps)), iou_predictions.argmax(axis=1)]

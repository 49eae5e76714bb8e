"""Which network a SAM checkpoint needs: the registry's, or the architecture its model card records.

The one place that maps an architecture name to a model: ``"full"`` is the
registry builder (segment_anything's ``sam_model_registry[build]``; SAM 2's
``build_sam2`` on the packaged config), ``"reduced"`` the same builder with a
small image encoder: segment_anything's own ``_build_sam`` with a 1-block,
64-wide ViT (:func:`reduced_sam`), and for SAM 2 the packaged config composed by
``build_sam2`` with hydra overrides for a 5-block, 8-wide Hiera
(:data:`REDUCED_SAM2_OVERRIDES`). Prompt encoders and mask decoders stay full
size, so decoder training does the real work. `mskbench train` uses the reduced
models for CPU-sized random runs.

A checkpoint written by `mskbench train` has its card beside it
(:func:`~mskbench.training.card.card_for_checkpoint`); the card's
``recipe.base.architecture`` says which network the weights are for, so a
reduced checkpoint loads in every SAM plugin without a suite option. The card
is JSON, validated on reading and tied to the file by its sha256, so no file
can run code and a card cannot claim another file's weights. A checkpoint
without a card (the official weights, a model from elsewhere) is the registry
model, as before.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from mskbench.errors import CheckpointError

ARCHITECTURES = ("full", "reduced")
#: the reduced image encoder: (embed_dim, depth, num_heads, global attention blocks)
REDUCED_ENCODER = (64, 1, 2, ())
#: hydra overrides for SAM 2's reduced Hiera trunk (stage widths 8, 16, 32, 64) and the neck reading it
REDUCED_SAM2_OVERRIDES = (
    "++model.image_encoder.trunk.embed_dim=8",
    "++model.image_encoder.trunk.stages=[1,2,1,1]",
    "++model.image_encoder.trunk.global_att_blocks=[2]",
    "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
)


def reduced_sam(checkpoint: str | None = None) -> torch.nn.Module:
    """segment_anything's SAM with a 1-block, 64-wide ViT encoder (``_build_sam``); signature of the registry's."""
    build_sam = importlib.import_module("segment_anything.build_sam")  # the package re-exports a function by that name
    embed_dim, depth, heads, global_blocks = REDUCED_ENCODER
    return build_sam._build_sam(embed_dim, depth, heads, list(global_blocks), checkpoint)


def sam_model(build: str, architecture: str) -> torch.nn.Module:
    """An uninitialised-by-file SAM: the registry's ``build`` (vit_b/l/h) or the reduced model."""
    from segment_anything import sam_model_registry

    return reduced_sam() if architecture == "reduced" else sam_model_registry[build]()


def sam2_model(config: str, architecture: str) -> torch.nn.Module:
    """SAM 2 from the packaged ``config`` by ``build_sam2`` (no weights), its trunk reduced for ``"reduced"``."""
    from mskbench.segmenters import sam2_image  # its build_sam2: the name tests replace with a tiny model

    if architecture == "reduced":
        return sam2_image.build_sam2(config, ckpt_path=None, device="cpu",
                                     hydra_overrides_extra=list(REDUCED_SAM2_OVERRIDES))
    return sam2_image.build_sam2(config, ckpt_path=None, device="cpu")


def checkpoint_architecture(checkpoint: Path | str) -> str:
    """The architecture ``checkpoint``'s card records (``recipe.base.architecture``), ``"full"`` without a card."""
    from mskbench.training.card import CARD_NAME, card_for_checkpoint

    card = card_for_checkpoint(checkpoint)
    if card is None:
        return "full"
    base = card.recipe.get("base")
    architecture = base.get("architecture", "full") if isinstance(base, dict) else "full"
    if architecture not in ARCHITECTURES:
        raise CheckpointError(f"{Path(checkpoint).parent / CARD_NAME}: recipe.base.architecture {architecture!r} is "
                              f"not one of {', '.join(ARCHITECTURES)}; the card is damaged, retrain or restore it")
    return architecture

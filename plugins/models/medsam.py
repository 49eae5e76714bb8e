"""Model plugin ``medsam``: MedSAM ViT-B weights on SAM code, with MedSAM's published inference recipe."""

from __future__ import annotations

from typing import Any

from mskbench.segmenters.plugin_params import PRECISION_PARAM
from mskbench.segmenters.prompt_batch import BOX_PROMPTS
from mskbench.segmenters.sam_catalog import MEDSAM_CHECKPOINT_KEY, check_checkpoint

PARAMS = {"precision": PRECISION_PARAM}


def make_medsam(precision: str, device: str, checkpoint: str | None):
    """SAM ViT-B from segment_anything's builder with the MedSAM checkpoint."""
    from mskbench.segmenters.medsam import MedSamSegmenter

    return MedSamSegmenter.from_checkpoint(precision, device, checkpoint)


make_medsam.supported_prompts = BOX_PROMPTS  # read by the planner without building the model


def preflight(params: dict[str, Any], checkpoint: str | None) -> None:
    check_checkpoint(MEDSAM_CHECKPOINT_KEY, checkpoint)


def register_plugin(register) -> None:
    register(
        name="medsam",
        factory=make_medsam,
        description="MedSAM ViT-B (box prompts) with MedSAM's own preprocessing and sigmoid > 0.5 output.",
        params=PARAMS,
        requires=("checkpoint",),
        preflight=preflight,
    )

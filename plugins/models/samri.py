"""Model plugin ``samri``: SAMRI's MRI-tuned SAM ViT-B decoder, box + one interior point, via ``SamPredictor``."""

from __future__ import annotations

from typing import Any

from mskbench.params import Param
from mskbench.segmenters.plugin_params import PRECISION_PARAM
from mskbench.segmenters.prompt_batch import SAM_PROMPTS
from mskbench.segmenters.sam_catalog import SAMRI_VARIANTS, check_checkpoint, samri_checkpoint_key

PARAMS = {
    "variant": Param(
        "str",
        default="bp",
        choices=SAMRI_VARIANTS,
        help="SAMRI checkpoint: bp (box+point), box, or their zero-shot-enhanced *_zero versions",
    ),
    "precision": PRECISION_PARAM,
}


def make_samri(variant: str, precision: str, device: str, checkpoint: str | None):
    """SAM ViT-B from segment_anything's builder with a SAMRI checkpoint."""
    from mskbench.segmenters.sam import SamriSegmenter

    return SamriSegmenter.from_checkpoint(variant, precision, device, checkpoint)


make_samri.supported_prompts = SAM_PROMPTS  # read by the planner without building the model


def preflight(params: dict[str, Any], checkpoint: str | None) -> None:
    check_checkpoint(samri_checkpoint_key(params["variant"]), checkpoint)


def register_plugin(register) -> None:
    register(
        name="samri",
        factory=make_samri,
        description="SAMRI (SAM ViT-B with an MRI-tuned mask decoder) through SamPredictor; box + interior point.",
        params=PARAMS,
        requires=("checkpoint",),
        preflight=preflight,
    )

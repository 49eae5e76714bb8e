"""Model plugin ``sam``: Meta's Segment Anything (ViT-B/L/H), exactly as ``SamPredictor`` runs it."""

from __future__ import annotations

from typing import Any

from mskbench.params import Param
from mskbench.segmenters.plugin_params import INPUT_CONVENTION_PARAM, PRECISION_PARAM
from mskbench.segmenters.prompt_batch import SAM_PROMPTS
from mskbench.segmenters.sam_catalog import SAM_VARIANTS, check_checkpoint, sam_checkpoint_key

PARAMS = {
    "variant": Param("str", default="vit_b", choices=SAM_VARIANTS, help="image encoder size"),
    "precision": PRECISION_PARAM,
    "input_convention": INPUT_CONVENTION_PARAM,
}


def make_sam(variant: str, precision: str, input_convention: str, device: str, checkpoint: str | None):
    """Build SAM with segment_anything's registry builder and load the verified checkpoint."""
    if input_convention == "medsam":
        from mskbench.segmenters.medsam import SamMedsamInput

        return SamMedsamInput.from_checkpoint(variant, precision, device, checkpoint)
    from mskbench.segmenters.sam import SamSegmenter

    return SamSegmenter.from_checkpoint(variant, precision, device, checkpoint)


make_sam.supported_prompts = SAM_PROMPTS  # read by the planner without building the model
make_sam.interactive = True  # SamSegmenter.refine: previous low-res logits as mask_input
make_sam.feedback = frozenset({"logits"})


def preflight(params: dict[str, Any], checkpoint: str | None) -> None:
    check_checkpoint(sam_checkpoint_key(params["variant"]), checkpoint)


def register_plugin(register) -> None:
    register(
        name="sam",
        factory=make_sam,
        description="Segment Anything (ViT-B/L/H) through SamPredictor: box, point or box+point prompts.",
        params=PARAMS,
        requires=("checkpoint",),
        preflight=preflight,
    )

"""Model plugin ``sam2``: SAM 2 / 2.1 Hiera image models, exactly as ``SAM2ImagePredictor`` runs them."""

from __future__ import annotations

from typing import Any

from mskbench.params import Param
from mskbench.segmenters.plugin_params import INPUT_CONVENTION_PARAM, PRECISION_PARAM
from mskbench.segmenters.prompt_batch import SAM_PROMPTS
from mskbench.segmenters.sam_catalog import SAM2_VARIANTS, SAM2_VERSIONS, check_checkpoint, sam2_checkpoint_key

PARAMS = {
    "version": Param("str", default="2.1", choices=SAM2_VERSIONS, help="SAM 2 release (config and checkpoint)"),
    "variant": Param("str", default="base_plus", choices=SAM2_VARIANTS, help="Hiera image encoder size"),
    "precision": PRECISION_PARAM,
    "input_convention": INPUT_CONVENTION_PARAM,
}


def make_sam2(version: str, variant: str, precision: str, input_convention: str, device: str, checkpoint: str | None):
    """Build with sam2.build_sam.build_sam2 from the packaged config; load the verified checkpoint."""
    from mskbench.segmenters.sam2_image import Sam2MedsamInput, Sam2Segmenter

    cls = Sam2MedsamInput if input_convention == "medsam" else Sam2Segmenter
    return cls.from_checkpoint(version, variant, precision, device, checkpoint)


make_sam2.supported_prompts = SAM_PROMPTS  # read by the planner without building the model
make_sam2.interactive = True  # Sam2Segmenter.refine: previous low-res logits as mask_input
make_sam2.feedback = frozenset({"logits"})


def preflight(params: dict[str, Any], checkpoint: str | None) -> None:
    check_checkpoint(sam2_checkpoint_key(params["version"], params["variant"]), checkpoint)


def register_plugin(register) -> None:
    register(
        name="sam2",
        factory=make_sam2,
        description="SAM 2 / 2.1 (Hiera t/s/b+/l) through SAM2ImagePredictor: box, point or box+point prompts.",
        params=PARAMS,
        requires=("checkpoint",),
        preflight=preflight,
    )

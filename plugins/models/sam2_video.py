"""Model plugin ``sam2_video``: SAM 2 / 2.1 ``SAM2VideoPredictor`` propagating each label's prompt through a volume.

A ``volume`` model: the slices along the slicing axis are the video's
frames (see :mod:`mskbench.segmenters.sam2_video`). Same configs,
checkpoints, ``version`` / ``variant`` / ``precision`` params and checkpoint
preflight as ``sam2``.
"""

from __future__ import annotations

from typing import Any

from mskbench.params import Param
from mskbench.segmenters.plugin_params import PRECISION_PARAM
from mskbench.segmenters.prompt_batch import SAM_PROMPTS
from mskbench.segmenters.sam_catalog import SAM2_VARIANTS, SAM2_VERSIONS, check_checkpoint, sam2_checkpoint_key

PARAMS = {
    "version": Param("str", default="2.1", choices=SAM2_VERSIONS, help="SAM 2 release (config and checkpoint)"),
    "variant": Param("str", default="base_plus", choices=SAM2_VARIANTS, help="Hiera image encoder size"),
    "precision": PRECISION_PARAM,
    "limit_to_reference_extent": Param(
        "bool", default=False,
        help="stop propagation at the box3d prompt's extent (the reference's own first and last slice) and leave the "
        "slices outside empty; uses ground truth beyond the prompt, so the rows are flagged reference_extent_used",
    ),
}


def make_sam2_video(
    version: str, variant: str, precision: str, limit_to_reference_extent: bool, device: str, checkpoint: str | None
):
    """Build with sam2.build_sam.build_sam2_video_predictor from the packaged config; load the verified checkpoint."""
    from mskbench.segmenters.sam2_video import Sam2VideoModel

    return Sam2VideoModel.from_checkpoint(
        version, variant, precision, device, checkpoint, limit_to_reference_extent=limit_to_reference_extent
    )


# read by the planner without building the model; equal to Sam2VideoModel's own (tested)
make_sam2_video.kind = "volume"
make_sam2_video.supported_prompts = SAM_PROMPTS | {"box3d"}
make_sam2_video.interactive = False


def preflight(params: dict[str, Any], checkpoint: str | None) -> None:
    check_checkpoint(sam2_checkpoint_key(params["version"], params["variant"]), checkpoint)


def register_plugin(register) -> None:
    register(
        name="sam2_video",
        factory=make_sam2_video,
        description="SAM 2 / 2.1 video predictor as a volume model: each label's box3d, box or point prompts "
        "propagated forward and backward through the slices.",
        params=PARAMS,
        requires=("checkpoint",),
        preflight=preflight,
    )

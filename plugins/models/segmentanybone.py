"""Model plugin ``segmentanybone``: SegmentAnyBone (bone on any MRI), a volume model run slice by slice.

Two released files: ``bone_sam.pth`` (the suite's ``checkpoint``) and the
depth-attention network ``atten.pth`` (``depth_checkpoint``); both are looked
up by name in the checkpoint folder unless a path is given. The plan checks
that both exist and that their tensors have exactly the released
architecture's names and shapes (built on torch's ``meta`` device: no memory,
no compute) before any subject is loaded.
"""

from __future__ import annotations

from typing import Any

from mskbench.errors import PluginError
from mskbench.params import Param
from mskbench.types import LabelInfo, TissueClass

PARAMS = {
    "depth_checkpoint": Param("path", default=None,
                              help="the depth-attention VNet atten.pth (default: looked up in the checkpoint folder)"),
}


def make_segmentanybone(device: str, checkpoint: str | None, depth_checkpoint: str | None = None):
    from mskbench.segmenters.segmentanybone import SegmentAnyBone

    return SegmentAnyBone.from_checkpoints(device, checkpoint, depth_checkpoint)


def preflight(params: dict[str, Any], checkpoint: str | None) -> None:
    from mskbench.segmenters.segmentanybone_checks import check_released_files

    check_released_files(checkpoint, params.get("depth_checkpoint"))


def check_label_map(params: dict[str, Any], label_map: dict[int, LabelInfo]) -> None:
    """A dataset without a bone label has nothing this model segments."""
    if not any(info.tissue == TissueClass.BONE for info in label_map.values()):
        names = ", ".join(info.name for info in label_map.values())
        raise PluginError(f"SegmentAnyBone segments bone and the dataset evaluates no bone label ({names}); "
                          "select a bone label or leave this model out for this dataset")


# read by the planner without building the model
make_segmentanybone.supported_prompts = frozenset({"none", "box", "point", "box+point"})
make_segmentanybone.kind = "volume"
make_segmentanybone.check_label_map = check_label_map


def register_plugin(register) -> None:
    register(
        name="segmentanybone",
        factory=make_segmentanybone,
        description="SegmentAnyBone (MobileSAM with adapters + 3D depth attention): automatic (`none`) or box/point "
        "prompts per slice; one class, bone.",
        params=PARAMS,
        requires=("checkpoint", "torch", "monai"),
        preflight=preflight,
    )

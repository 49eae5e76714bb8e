"""Model plugin ``nnunet``: a trained nnU-Net v2 model folder, run by nnunetv2's own ``nnUNetPredictor``.

The plan checks the folder's JSON files and its label names against each
dataset's (:mod:`mskbench.segmenters.nnunet_folder`) before any subject is
loaded; nnunetv2 and torch are imported only when the model is built.
"""

from __future__ import annotations

from typing import Any

from mskbench.params import Param
from mskbench.segmenters.nnunet_folder import CONFIGURATIONS, check_model_labels, read_model_folder
from mskbench.types import LabelInfo

PARAMS = {
    "model_folder": Param("path", help="the folder nnUNetv2_train wrote: plans.json, dataset.json, fold_<k>/"),
    "folds": Param("list", default=[0], min_items=1, help='fold numbers to ensemble, e.g. [0, 1, 2, 3, 4], or ["all"]'),
    "checkpoint_name": Param("str", default="checkpoint_final.pth", help="checkpoint file in each fold folder"),
    "configuration": Param("str", default="3d_fullres", choices=CONFIGURATIONS, help="the plans configuration trained"),
    "use_mirroring": Param("bool", default=True, help="test-time mirroring over the axes the trainer allowed"),
    "tile_step_size": Param("float", default=0.5, minimum=0.1, maximum=1.0,
                            help="sliding-window step as a fraction of the patch (nnU-Net's default 0.5)"),
}


def make_nnunet(device: str, checkpoint: str | None, **params: Any):
    from mskbench.segmenters.nnunet import NnUNetModel

    return NnUNetModel(**params, device=device, checkpoint=checkpoint)


def _read(params: dict[str, Any]):
    return read_model_folder(params["model_folder"], params["folds"], params["checkpoint_name"], params["configuration"])


def preflight(params: dict[str, Any], checkpoint: str | None) -> None:
    _read(params)


def check_label_map(params: dict[str, Any], label_map: dict[int, LabelInfo]) -> None:
    check_model_labels(_read(params), label_map)


# read by the planner without building the model
make_nnunet.supported_prompts = frozenset({"none"})
make_nnunet.kind = "volume"
make_nnunet.check_label_map = check_label_map


def register_plugin(register) -> None:
    register(
        name="nnunet",
        factory=make_nnunet,
        description="A trained nnU-Net v2 model folder (automatic; pair with the `none` prompter), run by nnUNetPredictor.",
        params=PARAMS,
        requires=("torch",),
        preflight=preflight,
    )

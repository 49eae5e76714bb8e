"""Model plugin ``nninteractive``: nnInteractive's inference session, a 3D interactive model (box3d, 3D clicks,
previous mask), so the ``clicks`` prompter with ``space = "volume"`` drives it.

The plan checks the model folder's files and that the nnInteractive package is
installed (:mod:`mskbench.segmenters.nninteractive_folder`) before any subject
is loaded; torch and nnInteractive are imported only when the model is built.
"""

from __future__ import annotations

from typing import Any

from mskbench.params import Param
from mskbench.segmenters.nninteractive_folder import OFFICIAL_FOLDER, check_installed, read_interactive_folder

PARAMS = {
    "model_folder": Param("path", default=None,
                          help=f"the release folder (plans.json, dataset.json, fold_<k>/); default "
                               f"$MSKBENCH_CHECKPOINTS/{OFFICIAL_FOLDER}"),
    "fold": Param("str", default=None, pattern=r"[0-9]+|all",
                  help='the fold_<fold> folder to run, e.g. "0" or "all"; default: the folder\'s only fold_* folder'),
    "checkpoint_name": Param("str", default="checkpoint_final.pth", help="checkpoint file in the fold folder"),
    "box": Param("str", default="auto", choices=("auto", "3d", "key_slice"),
                 help="a box3d as nnInteractive's 3D box (CVPR 2025 baseline) or its key slice's 2D box; auto: 3D "
                      "when the checkpoint takes 3D boxes"),
    "autozoom": Param("bool", default=True, help="nnInteractive's AutoZoom (its default)"),
}


def make_nninteractive(device: str, checkpoint: str | None, **params: Any):
    from mskbench.segmenters.nninteractive import NnInteractiveModel

    return NnInteractiveModel(**params, device=device, checkpoint=checkpoint)


def preflight(params: dict[str, Any], checkpoint: str | None) -> None:
    """The folder first (a missing one skips the entry under on_missing_checkpoint = "skip"), then the package."""
    read_interactive_folder(params["model_folder"], params["fold"], params["checkpoint_name"])
    check_installed()


# read by the planner without building the model; equal to NnInteractiveModel's own (tested)
make_nninteractive.supported_prompts = frozenset({"box3d", "point"})
make_nninteractive.kind = "volume"
make_nninteractive.interactive = True
make_nninteractive.feedback = frozenset({"mask"})


def register_plugin(register) -> None:
    register(
        name="nninteractive",
        factory=make_nninteractive,
        description="nnInteractive (3D interactive: box3d, clicks placed in the volume, previous mask), "
                    "run by its own inference session.",
        params=PARAMS,
        requires=("torch", "checkpoint"),
        preflight=preflight,
    )

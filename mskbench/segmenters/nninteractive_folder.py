"""An nnInteractive model folder and the nnInteractive package, checked at plan time (no torch, no checkpoint read).

The folder is what nnInteractive releases (``nnInteractive_v1.0`` in the
Hugging Face repository ``MIC-DKFZ/nnInteractive``): ``plans.json``,
``dataset.json``, ``inference_info.json`` (older releases:
``inference_session_class.json``) and ``fold_<k>/checkpoint_final.pth``.
It is nnU-Net's format, so plans.json gets the nnU-Net plugin's checks
(:mod:`mskbench.segmenters.nnunet_folder`): it may name only the network
libraries nnU-Net plans with. A missing folder or file is a
:class:`CheckpointError` (a suite entry with ``on_missing_checkpoint =
"skip"`` is then skipped with this line); a missing package is a
:class:`PluginError` (exit 2).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mskbench.data.dataset_json import read_dataset_json
from mskbench.errors import CheckpointError, DataError, PluginError
from mskbench.segmenters.checkpoints import CHECKPOINTS_ENV, checkpoint_dir
from mskbench.segmenters.nnunet_folder import check_network_names, check_single_channel, read_plans

OFFICIAL_FOLDER = "nnInteractive_v1.0"
RELEASE_REPO = "MIC-DKFZ/nnInteractive"
#: the capability file nnInteractive's session reads, then the legacy one
CAPABILITY_FILES = ("inference_info.json", "inference_session_class.json")
SESSION_MODULE = "nnInteractive.inference.inference_session"


@dataclass(frozen=True)
class InteractiveFolder:
    """A checked nnInteractive model folder: its parsed JSON and the one checkpoint it runs."""

    path: Path
    plans: dict[str, Any]
    dataset_json: dict[str, Any]
    checkpoint: Path


def how_to_get() -> str:
    """Where the official folder comes from and where mskbench looks for it."""
    return (f"download it with `huggingface-cli download {RELEASE_REPO} --include \"{OFFICIAL_FOLDER}/*\" "
            f"--local-dir {checkpoint_dir()}` (https://huggingface.co/{RELEASE_REPO}; put it in ${CHECKPOINTS_ENV}) "
            "or set model_folder")


def folder_path(model_folder: str | None) -> Path:
    """The folder to run: the suite's ``model_folder``, else the official release in the checkpoint folder."""
    return Path(model_folder).expanduser() if model_folder else checkpoint_dir() / OFFICIAL_FOLDER


def _fold_folder(path: Path, fold: Any) -> str:
    """``fold_<fold>``, or with ``fold`` unset the folder's only ``fold_*`` (as nnInteractive's loader picks it)."""
    if fold is not None:
        return f"fold_{fold}"
    folds = sorted(p.name for p in path.glob("fold_*") if p.is_dir())
    if not folds:
        raise CheckpointError(f"nnInteractive model folder {path} has no fold_<k> folder; {how_to_get()}")
    if len(folds) > 1:
        raise PluginError(f"nnInteractive model folder {path} has {', '.join(folds)}; set fold to the one to run")
    return folds[0]


def _check_capability_file(path: Path) -> None:
    present = [path / name for name in CAPABILITY_FILES if (path / name).is_file()]
    if not present:
        raise CheckpointError(f"nnInteractive model folder {path} has neither {' nor '.join(CAPABILITY_FILES)}; "
                              f"restore the release's file or {how_to_get()}")
    try:
        content = json.loads(present[0].read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{present[0]}: cannot read it ({exc}); restore the release's file") from None
    if present[0].name == CAPABILITY_FILES[0] and not isinstance(content, dict):
        raise CheckpointError(f"{present[0]}: holds a {type(content).__name__}, not an object; restore the release's file")


def read_interactive_folder(model_folder: str | None, fold: Any, checkpoint_name: str) -> InteractiveFolder:
    """The checked folder; each missing file is one :class:`CheckpointError` line naming it."""
    path = folder_path(model_folder)
    if not path.is_dir():
        raise CheckpointError(f"nnInteractive model folder {path} does not exist; {how_to_get()}")
    for name in ("plans.json", "dataset.json"):
        if not (path / name).is_file():
            raise CheckpointError(f"nnInteractive model folder {path} has no {name}; restore the release's file "
                                  f"or {how_to_get()}")
    _check_capability_file(path)
    checkpoint = path / _fold_folder(path, fold) / checkpoint_name
    if not checkpoint.is_file():
        raise CheckpointError(f"nnInteractive checkpoint {checkpoint} does not exist; set fold and checkpoint_name "
                              f"to a file the folder has, or {how_to_get()}")
    plans = read_plans(path / "plans.json")
    check_network_names(plans, path / "plans.json")
    json_path = path / "dataset.json"
    try:
        dataset_json = read_dataset_json(json_path)
    except DataError as exc:
        raise CheckpointError(str(exc)) from None
    check_single_channel(dataset_json, json_path)
    return InteractiveFolder(path, plans, dataset_json, checkpoint)


def check_installed() -> None:
    """The nnInteractive package's inference session can be imported (found without importing torch)."""
    try:
        found = importlib.util.find_spec(SESSION_MODULE) is not None
    except ImportError:  # a parent package that is missing or fails to import
        found = False
    if not found:
        raise PluginError("model 'nninteractive' needs the nnInteractive package (nninteractive>=2.6), which is not "
                          "installed; pip install 'mskbench[nninteractive]'")

"""An nnU-Net v2 trained-model folder, checked from its JSON files alone (no torch, no checkpoint read).

The folder is what ``nnUNetv2_train`` writes (``<Dataset>/<Trainer>__<Plans>__<configuration>``):
``plans.json``, ``dataset.json`` and ``fold_<k>/<checkpoint_name>`` per fold.
Everything here runs at plan time, so a wrong folder, configuration or label
set fails before the first subject is loaded, each as one line.

``plans.json`` names the network class and the classes its arguments need;
nnU-Net imports whatever those names say, so only the network libraries
nnU-Net itself plans with are accepted: a user's JSON file must not choose
which code runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mskbench.data.dataset_json import label_name_key, names_from_dataset_json, read_dataset_json
from mskbench.errors import CheckpointError, DataError, PluginError
from mskbench.types import LabelInfo

#: nnU-Net readers whose array layout :mod:`mskbench.segmenters.nnunet_geometry` reproduces
SUPPORTED_READERS = ("SimpleITKIO", "NibabelIO", "NibabelIOWithReorient")
CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres")
#: module prefixes plans.json may name for the network class and its imported arguments
_ALLOWED_NETWORK_MODULES = ("dynamic_network_architectures.",)
_ALLOWED_ARGUMENT_MODULES = ("torch.nn.",)


@dataclass(frozen=True)
class ModelFolder:
    """A checked nnU-Net model folder: its parsed JSON and the checkpoint file of every fold."""

    path: Path
    configuration: str
    plans: dict[str, Any]
    dataset_json: dict[str, Any]
    checkpoints: tuple[Path, ...]
    label_names: dict[int, str]  # nnU-Net label id -> name (normalised), background dropped

    @property
    def reader(self) -> str:
        return str(self.plans.get("image_reader_writer", "SimpleITKIO"))


def fold_names(folds: Sequence[Any] | str) -> list[str]:
    """``[0, 1]`` -> ``["0", "1"]``; ``"all"`` or ``["all"]`` -> ``["all"]`` (nnU-Net's ``fold_all``)."""
    items = [folds] if isinstance(folds, str) else list(folds)
    if not items:
        raise PluginError('folds is empty; give fold numbers such as [0] or [0, 1, 2, 3, 4], or "all"')
    names = []
    for fold in items:
        if fold == "all" or (isinstance(fold, int) and not isinstance(fold, bool) and fold >= 0):
            names.append(str(fold))
        else:
            raise PluginError(f'folds: {fold!r} is not a fold; give whole numbers >= 0 such as [0, 1], or "all"')
    return names


def read_plans(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"nnU-Net model folder {path.parent} has no plans.json; point model_folder at the "
                              "folder nnUNetv2_train wrote (<Trainer>__<Plans>__<configuration>)")
    try:
        plans = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read plans.json ({exc}); restore the file nnU-Net wrote") from None
    if not isinstance(plans, dict) or not isinstance(plans.get("configurations"), dict):
        raise CheckpointError(f"{path}: no 'configurations' table; this is not an nnU-Net v2 plans.json")
    return plans


def check_network_names(plans: dict[str, Any], path: Path) -> None:
    """The network classes and imported arguments plans.json names, before nnU-Net imports any of them.

    Every configuration is checked, since the one run may inherit its
    architecture from another. One without an ``architecture`` table (the
    older plans format) gets nnU-Net's own class names filled in.
    """
    for name, configuration in plans["configurations"].items():
        architecture = configuration.get("architecture") if isinstance(configuration, dict) else None
        if architecture is None:
            continue
        if not isinstance(architecture, dict):
            raise CheckpointError(f"{path}: configuration '{name}': 'architecture' is not a table")
        network = str(architecture.get("network_class_name", ""))
        if not network.startswith(_ALLOWED_NETWORK_MODULES):
            raise CheckpointError(
                f"{path}: configuration '{name}' names network class '{network}'; mskbench builds only "
                "dynamic_network_architectures networks (what nnU-Net plans), so a plans file cannot choose other code"
            )
        arguments = architecture.get("arch_kwargs")
        for key in architecture.get("_kw_requires_import", ()):
            value = arguments.get(key) if isinstance(arguments, dict) else None
            if value is not None and not str(value).startswith(_ALLOWED_ARGUMENT_MODULES):
                raise CheckpointError(
                    f"{path}: configuration '{name}' argument '{key}' names '{value}'; only torch.nn classes are "
                    "accepted there (what nnU-Net plans)"
                )


def check_single_channel(dataset_json: Mapping[str, Any], json_path: Path) -> None:
    """mskbench subjects carry one image, so a model folder's dataset.json must declare one input channel."""
    channels = dataset_json.get("channel_names", dataset_json.get("modality", {"0": ""}))
    if not isinstance(channels, dict) or len(channels) != 1:
        raise PluginError(f"{json_path}: the model takes {len(channels) if isinstance(channels, dict) else '?'} "
                          "input channels; mskbench subjects have one image, so use a single-channel model")


def read_model_folder(folder: str | Path, folds: Sequence[Any] | str, checkpoint_name: str, configuration: str) -> ModelFolder:
    """The checked folder; missing files are :class:`CheckpointError`, a wrong setting :class:`PluginError`."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise CheckpointError(f"nnU-Net model folder {path} does not exist; set model_folder to the folder "
                              "nnUNetv2_train wrote (<Trainer>__<Plans>__<configuration>)")
    plans = read_plans(path / "plans.json")
    available = sorted(plans["configurations"])
    if configuration not in plans["configurations"]:
        raise PluginError(f"configuration '{configuration}' is not in {path / 'plans.json'} (it has "
                          f"{', '.join(available)}); set configuration to one of those")
    check_network_names(plans, path / "plans.json")
    reader = str(plans.get("image_reader_writer", "SimpleITKIO"))
    if reader not in SUPPORTED_READERS:
        raise PluginError(f"{path / 'plans.json'}: image_reader_writer '{reader}' is not supported; mskbench hands "
                          f"nnU-Net volumes as {', '.join(SUPPORTED_READERS)} read them")
    json_path = path / "dataset.json"
    if not json_path.is_file():
        raise CheckpointError(f"nnU-Net model folder {path} has no dataset.json; restore the file nnU-Net wrote")
    try:
        dataset_json = read_dataset_json(json_path)
        label_names = names_from_dataset_json(dataset_json, json_path)
    except DataError as exc:
        raise CheckpointError(str(exc)) from None
    check_single_channel(dataset_json, json_path)
    checkpoints = []
    for fold in fold_names(folds):
        checkpoint = path / f"fold_{fold}" / checkpoint_name
        if not checkpoint.is_file():
            raise CheckpointError(f"nnU-Net checkpoint {checkpoint} does not exist; train fold {fold}, or set folds "
                                  "and checkpoint_name to files the model folder has")
        checkpoints.append(checkpoint)
    return ModelFolder(path, configuration, plans, dataset_json, tuple(checkpoints), label_names)


def label_lookup(model_labels: Mapping[int, str], dataset_labels: Mapping[int, str]) -> dict[int, int]:
    """nnU-Net label id -> dataset label id, by name; model labels the dataset lacks are left out (background).

    Every dataset label must be one the model predicts, else the plan error
    names both lists (a label the model cannot output would score as missed).
    """
    by_name = {name: label for label, name in model_labels.items()}
    wanted = {label: label_name_key(name) for label, name in dataset_labels.items()}
    missing = sorted(name for name in wanted.values() if name not in by_name)
    if missing:
        raise PluginError(
            f"the nnU-Net model's labels ({', '.join(sorted(by_name)) or 'none'}) do not include the dataset's "
            f"{', '.join(missing)} (dataset labels: {', '.join(sorted(wanted.values()))}); select the labels the "
            "model was trained for with the dataset's `labels`, or rename them"
        )
    return {by_name[name]: label for label, name in wanted.items()}


def check_model_labels(folder: ModelFolder, label_map: Mapping[int, LabelInfo]) -> None:
    """Plan-time form of :func:`label_lookup` on the dataset's label map (after the suite's selection)."""
    label_lookup(folder.label_names, {label: info.name for label, info in label_map.items()})

"""Train the `yolo` prompter's detector on a dataset's slices, offline, with ultralytics.

The slices are prepared exactly as the runner prepares them
(:func:`mskbench.data.preprocess.prepare_subject`), so the detector sees at
training time the uint8 images it will be asked about in a run. The model is
built from ultralytics' packaged ``yolov8n.yaml`` (random initialisation, no
downloaded weights) and trained with plots and AMP off, no dataloader
workers, and the network switched off (:mod:`mskbench.prompting.ultralytics_env`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.data.preprocess import PreprocessConfig, prepare_subject, take_slice
from mskbench.errors import DataError, PluginError
from mskbench.params import suggest
from mskbench.protocols import Dataset
from mskbench.prompting.yolo_data import write_data_yaml, write_split
from mskbench.prompting.yolo_weights import ARCHITECTURE, packaged_config, save_detector, versioned_path

log = logging.getLogger(__name__)

#: Defaults mskbench changes: a horizontal flip would move the patella behind the femur on a
#: sagittal slice and swap medial and lateral on an axial one, so it is off unless asked for.
DEFAULT_TRAIN_ARGS = {"fliplr": 0.0}
#: ultralytics arguments mskbench fixes: offline, reproducible, no plots to draw fonts for.
FIXED_ARGS = {"plots": False, "amp": False, "workers": 0, "exist_ok": True, "deterministic": True, "pretrained": False}
_METRIC_NAMES = {
    "metrics/precision(B)": "precision",
    "metrics/recall(B)": "recall",
    "metrics/mAP50(B)": "mAP50",
    "metrics/mAP50-95(B)": "mAP50-95",
}


@dataclass(frozen=True)
class TrainConfig:
    """How to train; ``train_args`` are further ultralytics train arguments (lr0, mosaic, ...)."""

    epochs: int = 50
    imgsz: int = 256
    batch: int = 16
    seed: int = 0
    device: str = "cpu"
    val_split: str = "val"
    empty_slices: bool = True
    train_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainedDetector:
    weights: Path
    card: dict[str, Any]


def check_train_args(train_args: Mapping[str, Any]) -> None:
    """Unknown or mskbench-fixed ultralytics arguments are user errors, named."""
    from mskbench.prompting.ultralytics_env import import_ultralytics

    import_ultralytics()
    from ultralytics.cfg import DEFAULT_CFG_DICT

    reserved = set(FIXED_ARGS) | {"data", "epochs", "imgsz", "batch", "seed", "device", "project", "name", "model"}
    for key in train_args:
        if key in reserved:
            raise PluginError(f"--train-args: '{key}' is set by mskbench (use its own option if it has one); remove it")
        if key not in DEFAULT_CFG_DICT:
            raise PluginError(
                f"--train-args: '{key}' is not an ultralytics train argument{suggest(key, list(DEFAULT_CFG_DICT))}"
            )


def split_subjects(dataset: Dataset, split: str, val_split: str) -> tuple[list[str], list[str], str]:
    """Training and validation subject ids, and where validation came from.

    Validation uses the dataset's ``val_split`` when it has subjects there;
    otherwise the last training subject is held out; with a single training
    subject, validation reuses it (its metrics are then optimistic).
    """
    train = dataset.subject_ids(split)
    if not train:
        raise DataError(f"--split {split}: the dataset has no subjects in this split; choose another split")
    val = [s for s in dataset.subject_ids(val_split) if s not in train] if val_split else []
    if val:
        return train, val, f"split '{val_split}'"
    if len(train) >= 2:
        return train[:-1], train[-1:], f"held-out training subject {train[-1]}"
    return train, train, "training subject (no held-out data: metrics are optimistic)"


def dataset_slices(
    dataset: Dataset, subject_ids: Sequence[str], slice_axis: str, preprocess: PreprocessConfig
) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(name, uint8 image, reference) for every evaluated slice of the subjects."""
    for subject_id in subject_ids:
        prepared = prepare_subject(dataset.load(subject_id), slice_axis, preprocess)
        for k in prepared.slice_indices:
            name = f"{subject_id}_{k:04d}".replace("/", "_")
            yield name, take_slice(prepared.image, prepared.axis, k), take_slice(prepared.labels, prepared.axis, k)


def _versions() -> dict[str, str]:
    import torch
    import ultralytics

    import mskbench

    return {
        "mskbench": mskbench.__version__,
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def train_detector(
    dataset: Dataset,
    *,
    dataset_name: str,
    split: str,
    out_dir: Path,
    config: TrainConfig = TrainConfig(),
    dataset_params: Mapping[str, Any] | None = None,
    slice_axis: str | None = None,
) -> TrainedDetector:
    """Train a detector on ``split`` of ``dataset`` and write ``<out_dir>/<name>-yolov8n-v<N>.pt`` + card."""
    from mskbench.prompting.ultralytics_env import offline_training

    check_train_args(config.train_args)
    axis = slice_axis or dataset.slice_axis
    preprocess = PreprocessConfig(include_empty_slices=config.empty_slices)
    labels = sorted(dataset.label_map)
    if not labels:
        raise DataError(f"dataset '{dataset_name}' has no labels to detect")
    class_of_label = {label: cls for cls, label in enumerate(labels)}
    train_ids, val_ids, val_source = split_subjects(dataset, split, config.val_split)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mskbench-yolo-") as tmp, offline_training():
        from ultralytics import YOLO

        root = Path(tmp)
        n_train = write_split(root, "train", dataset_slices(dataset, train_ids, axis, preprocess), class_of_label)
        n_val = write_split(root, "val", dataset_slices(dataset, val_ids, axis, preprocess), class_of_label)
        if n_train == 0 or n_val == 0:
            raise DataError(
                f"dataset '{dataset_name}': no slices to {'train' if n_train == 0 else 'validate'} on in split "
                f"'{split}' after preprocessing; use a split with labelled subjects"
            )
        data_yaml = write_data_yaml(root, {cls: dataset.label_map[label].name for label, cls in class_of_label.items()})
        log.info("training %s on %d slices (%d validation) for %d epochs", ARCHITECTURE, n_train, n_val, config.epochs)
        model = YOLO(packaged_config(ARCHITECTURE), task="detect")  # never a same-named file in the cwd
        model.train(
            data=str(data_yaml), epochs=config.epochs, imgsz=config.imgsz, batch=config.batch, seed=config.seed,
            device=config.device, project=str(root / "runs"), name="train",
            **{**DEFAULT_TRAIN_ARGS, **config.train_args}, **FIXED_ARGS,
        )
        trainer = model.trainer
        metrics = {_METRIC_NAMES.get(k, k): float(v) for k, v in (trainer.metrics or {}).items()}
        best = YOLO(str(trainer.best), task="detect")  # our own file from this run
        state = {key: value.float() for key, value in best.model.state_dict().items()}
        versions = _versions()
    weights = versioned_path(out_dir, dataset_name)
    card = {
        "architecture": ARCHITECTURE,
        "dataset": dataset_name,
        "dataset_params": dict(dataset_params or {}),
        "split": split,
        "train_subjects": train_ids,
        "validation": val_source,
        "validation_subjects": val_ids,
        "slice_axis": axis,
        "preprocess": preprocess.describe(),
        "classes": [
            {"class": cls, "label": label, "name": dataset.label_map[label].name,
             "tissue": str(dataset.label_map[label].tissue)}
            for label, cls in class_of_label.items()
        ],
        "imgsz": config.imgsz,
        "training": {**asdict(config), "train_args": {**DEFAULT_TRAIN_ARGS, **config.train_args},
                     "train_slices": n_train, "validation_slices": n_val},
        "metrics": metrics,
        "versions": versions,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    save_detector(weights, state, card)
    log.info("wrote %s", weights)
    return TrainedDetector(weights, card)

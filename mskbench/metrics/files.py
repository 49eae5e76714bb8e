"""Scoring label files a user brings: one pair, or two folders matched by file name.

The reference's grid is authoritative: its header gives the spacing and a
prediction on any other grid is an error (resampling silently would change
the numbers being published). A reference without a prediction counts as an
empty prediction (its labels become misses), never as a dropped case.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mskbench.data.readers import Volume, read_volume
from mskbench.errors import DataError
from mskbench.metrics.engine import score_unit
from mskbench.protocols import Metric, MetricValue

log = logging.getLogger(__name__)

LABEL_SUFFIXES = (".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr")
#: affine entries (mm) may differ by this much between the two headers (float32 rounding)
GRID_TOLERANCE_MM = 1e-3


@dataclass(frozen=True)
class LabelScore:
    """Case state and metric values of one label in one file pair."""

    case_state: str
    values: dict[str, MetricValue]

    @property
    def substituted(self) -> list[str]:
        return [name for name, value in self.values.items() if value.substituted]


@dataclass
class FileScore:
    """All labels of one reference file against its prediction (None when missing)."""

    case: str
    reference_path: str
    prediction_path: str | None
    spacing: tuple[float, ...]
    labels: dict[int, LabelScore] = field(default_factory=dict)

    @property
    def prediction_missing(self) -> bool:
        return self.prediction_path is None


def read_label_volume(path: str | Path) -> Volume:
    """Read a label file and check it holds non-negative integer labels."""
    volume = read_volume(path)
    array = volume.array
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            raise DataError(f"{path}: label file contains NaN or infinite values; labels must be integers")
        fractional = array[array != np.round(array)]
        if fractional.size:
            raise DataError(
                f"{path}: label values must be integers, found {float(fractional.flat[0])}; "
                "is this an image or a probability map rather than a label file?"
            )
        array = array.astype(np.int64)
    elif array.dtype.kind not in "iub":
        raise DataError(f"{path}: label file has data type {array.dtype}; labels must be integers")
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        raise DataError(f"{path}: label file contains negative values ({array.min()}); labels must be >= 0")
    return Volume(array, volume.spacing, volume.affine, volume.path, volume.original_orientation)


def check_same_grid(reference: Volume, prediction: Volume) -> None:
    """Raise when the prediction is not on the reference's voxel grid."""
    if reference.array.shape != prediction.array.shape or not np.allclose(
        reference.affine, prediction.affine, rtol=0.0, atol=GRID_TOLERANCE_MM
    ):
        raise DataError(
            f"{prediction.path}: voxel grid differs from the reference {reference.path} (shape "
            f"{prediction.array.shape} vs {reference.array.shape}, spacing {prediction.spacing} vs "
            f"{reference.spacing}, or orientation/origin); resample the prediction onto the reference grid"
        )


def present_labels(*arrays: np.ndarray) -> list[int]:
    """Non-zero label values found in any of the arrays, ascending."""
    found: set[int] = set()
    for array in arrays:
        found.update(int(v) for v in np.unique(array) if v != 0)
    return sorted(found)


def score_arrays(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing: Sequence[float],
    labels: Iterable[int],
    metrics: Sequence[Metric],
) -> dict[int, LabelScore]:
    """Score each label of two label volumes on one grid."""
    scores = {}
    for label in labels:
        state, values = score_unit(reference == label, prediction == label, spacing, metrics)
        scores[label] = LabelScore(state, values)
    return scores


def score_files(
    reference_path: str | Path,
    prediction_path: str | Path | None,
    labels: Sequence[int] | None,
    metrics: Sequence[Metric],
) -> FileScore:
    """Score one file pair; ``prediction_path=None`` scores an empty prediction.

    ``labels=None`` scores every non-zero label present in either file.
    """
    reference = read_label_volume(reference_path)
    if prediction_path is None:
        prediction_array = np.zeros_like(reference.array)
    else:
        prediction = read_label_volume(prediction_path)
        check_same_grid(reference, prediction)
        prediction_array = prediction.array
    chosen = list(labels) if labels is not None else present_labels(reference.array, prediction_array)
    return FileScore(
        case=case_name(Path(reference_path)),
        reference_path=str(reference_path),
        prediction_path=None if prediction_path is None else str(prediction_path),
        spacing=reference.spacing,
        labels=score_arrays(reference.array, prediction_array, reference.spacing, chosen, metrics),
    )


def case_name(path: Path) -> str:
    """File name without its label-file suffix ('knee_01.nii.gz' -> 'knee_01')."""
    name = path.name
    for suffix in sorted(LABEL_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def match_folders(reference_dir: str | Path, prediction_dir: str | Path) -> tuple[list[tuple[Path, Path | None]], list[Path]]:
    """Pair each reference file with the prediction of the same file name.

    Returns the pairs (prediction None when missing) and the prediction files
    that have no reference (they cannot be scored and are reported).
    """
    reference_dir, prediction_dir = Path(reference_dir), Path(prediction_dir)
    for folder, option in ((reference_dir, "--reference-dir"), (prediction_dir, "--prediction-dir")):
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder; check {option}")
    references = _label_files(reference_dir)
    if not references:
        raise DataError(
            f"{reference_dir}: no label files ({', '.join(LABEL_SUFFIXES)}); check --reference-dir"
        )
    predictions = {path.name: path for path in _label_files(prediction_dir)}
    pairs = [(path, predictions.get(path.name)) for path in references]
    reference_names = {path.name for path in references}
    orphans = [path for name, path in sorted(predictions.items()) if name not in reference_names]
    return pairs, orphans


def _label_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(LABEL_SUFFIXES))


def fill_absent_labels(scores: Sequence[FileScore], labels: Sequence[int], metrics: Sequence[Metric]) -> None:
    """Give every pair a both_empty entry for labels found elsewhere but in neither of its files.

    Keeps one row per (case, label) across a folder, so absent structures are
    counted as excluded rather than missing from the table.
    """
    empty = np.zeros((1, 1, 1), dtype=bool)
    for score in scores:
        for label in labels:
            if label not in score.labels:
                state, values = score_unit(empty, empty, score.spacing, metrics)
                score.labels[label] = LabelScore(state, values)
        score.labels = dict(sorted(score.labels.items()))


def to_rows(scores: Iterable[FileScore]) -> pd.DataFrame:
    """Long-format rows: one per (case, label, metric)."""
    rows = [
        {
            "case_id": score.case,
            "reference_path": score.reference_path,
            "prediction_path": score.prediction_path,
            "prediction_missing": score.prediction_missing,
            "label": label,
            "case_state": label_score.case_state,
            "metric": metric,
            "value": value.value,
            "substituted": value.substituted,
        }
        for score in scores
        for label, label_score in score.labels.items()
        for metric, value in label_score.values.items()
    ]
    columns = ["case_id", "reference_path", "prediction_path", "prediction_missing", "label", "case_state",
               "metric", "value", "substituted"]
    return pd.DataFrame(rows, columns=columns)

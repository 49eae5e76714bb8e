"""Turn one (subject, cell)'s predicted masks into metric rows (DESIGN §7).

Slice rows score each evaluated slice per label; subject rows score the
reassembled 3D volumes, with the mean of the slice values beside them in a
separately named column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from mskbench.data.preprocess import take_slice
from mskbench.metrics.cases import REMOVED_BY_PREPROCESSING
from mskbench.metrics.engine import score_unit, size_bin
from mskbench.protocols import Metric, MetricValue
from mskbench.types import LabelInfo


def _selected(
    scored: tuple[str, dict[str, MetricValue]], names: Collection[str] | None
) -> tuple[str, dict[str, MetricValue]]:
    state, values = scored
    if names is None:
        return state, values
    return state, {name: value for name, value in values.items() if name in names}


def _removed(values: dict[str, MetricValue]) -> tuple[str, dict[str, MetricValue]]:
    """The row of a label preprocessing deleted: NaN for every metric, nothing substituted."""
    return REMOVED_BY_PREPROCESSING, {
        name: dataclasses.replace(value, value=float("nan"), substituted=False) for name, value in values.items()
    }


def score_subject(
    reference: np.ndarray,
    predictions: Mapping[int, np.ndarray],
    labels: Sequence[LabelInfo],
    slice_indices: Sequence[int],
    axis: int,
    spacing: Sequence[float],
    metrics: Sequence[Metric],
    base: Mapping[str, Any],
    names: Collection[str] | None = None,
    removed: Collection[int] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Slice and subject metric rows for one subject and one cell.

    ``predictions`` maps label id to a bool volume on the reference grid;
    ``base`` holds the identifying columns (run_id, cell_id, subject_id);
    ``names`` keeps only those metric values (None keeps all); ``removed``
    lists labels that preprocessing deleted from the reference entirely: their
    rows get case state ``removed_by_preprocessing`` and NaN values (not the
    both_empty / false_positive the cleaned masks would give).
    """
    pixel_spacing = tuple(s for i, s in enumerate(spacing) if i != axis)
    slice_rows: list[dict[str, Any]] = []
    subject_rows: list[dict[str, Any]] = []
    empty = np.zeros(reference.shape, dtype=bool)
    slice_area = float(np.prod([n for i, n in enumerate(reference.shape) if i != axis]))
    for label in labels:
        ref_volume = reference == label.id
        pred_volume = predictions.get(label.id, empty)
        per_metric: dict[str, list[float]] = {}
        for index in slice_indices:
            ref_slice = take_slice(ref_volume, axis, index)
            pred_slice = take_slice(pred_volume, axis, index)
            area_fraction = np.count_nonzero(ref_slice) / slice_area
            state, values = _selected(score_unit(ref_slice, pred_slice, pixel_spacing, metrics), names)
            if label.id in removed:
                state, values = _removed(values)
            bin_name = size_bin(area_fraction) if area_fraction > 0 else None
            for metric, value in values.items():
                per_metric.setdefault(metric, []).append(value.value)
                slice_rows.append({
                    **base, "slice_index": int(index), "label": label.id, "label_name": label.name,
                    "case_state": state, "area_fraction": area_fraction, "size_bin": bin_name,
                    "metric": metric, "value": value.value, "substituted": value.substituted,
                })
        state, values = _selected(score_unit(ref_volume, pred_volume, spacing, metrics), names)
        if label.id in removed:
            state, values = _removed(values)
        for metric, value in values.items():
            slice_values = np.asarray(per_metric.get(metric, []), dtype=float)
            finite = slice_values[~np.isnan(slice_values)]
            subject_rows.append({
                **base, "label": label.id, "label_name": label.name, "tissue": str(label.tissue),
                "case_state": state, "metric": metric,
                "value": value.value, "substituted": value.substituted,
                "slice_mean": float(finite.mean()) if finite.size else float("nan"),
                "n_slices": int(finite.size),
            })
    return slice_rows, subject_rows

"""Scoring one (unit, label) and summarising many (DESIGN §7).

``score_unit`` is what the runner calls per slice and per subject volume;
``aggregate`` turns long-format rows into dataset-level summaries with the
excluded and substituted counts beside every value; ``size_bin`` and
``tertile_bins`` group rows by object size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from mskbench.errors import DataError
from mskbench.metrics.cases import BOTH_EMPTY, case_state
from mskbench.protocols import Metric, MetricValue

#: fixed size bins on reference area / slice area: small < 0.5 % ≤ medium ≤ 3.5 % < large
SMALL_BELOW = 0.005
LARGE_ABOVE = 0.035
TERTILES = ("T1", "T2", "T3")


def score_unit(
    reference: np.ndarray,
    prediction: np.ndarray,
    spacing: Sequence[float],
    metrics: Sequence[Metric],
) -> tuple[str, dict[str, MetricValue]]:
    """Case state and every metric's values for one label in one slice (2D) or volume (3D).

    ``reference`` and ``prediction`` are masks of one shape (cast to bool);
    ``spacing`` gives mm per array axis. A metric name returned twice is an
    error rather than a silent overwrite.
    """
    reference = np.asarray(reference, dtype=bool)
    prediction = np.asarray(prediction, dtype=bool)
    if reference.shape != prediction.shape:
        raise ValueError(f"reference {reference.shape} and prediction {prediction.shape} differ in shape")
    if reference.ndim not in (2, 3) or len(spacing) != reference.ndim:
        raise ValueError(f"need a 2D or 3D mask with one spacing per axis, got {reference.shape} and {spacing}")
    if not all(math.isfinite(s) and s > 0 for s in spacing):
        raise DataError(f"voxel spacing {tuple(spacing)} is not finite and positive; fix the image header")
    state = case_state(reference, prediction)
    values: dict[str, MetricValue] = {}
    for metric in metrics:
        computed = metric.compute(reference, prediction, spacing, state)
        clash = values.keys() & computed.keys()
        if clash:
            raise ValueError(f"metric names returned twice: {sorted(clash)}")
        values.update(computed)
    return state, values


def area_fraction(reference: np.ndarray) -> float:
    """Reference area (voxel count) over the unit's area, the object-size measure."""
    return float(np.count_nonzero(reference)) / reference.size


def size_bin(area_fraction: float) -> str:
    """'small' (< 0.5 %), 'medium' (0.5–3.5 %, both ends inclusive) or 'large' (> 3.5 %).

    Defined only where the reference is present: a fraction of 0 (false positives,
    both empty) has no object size and is rejected.
    """
    if not (0.0 < area_fraction <= 1.0):
        raise ValueError(f"area fraction must be in (0, 1], got {area_fraction!r}")
    if area_fraction < SMALL_BELOW:
        return "small"
    if area_fraction > LARGE_ABOVE:
        return "large"
    return "medium"


def tertile_bins(area_fractions: Sequence[float] | np.ndarray | pd.Series) -> pd.Series:
    """'T1' (smallest third) … 'T3' of the positive area fractions given; None where 0 or NaN.

    Cut points are the 1/3 and 2/3 quantiles (linear) of the positive values
    passed in, so call it within the group the tertiles should refer to
    (e.g. ``rows.groupby(["dataset", "label"]).area_fraction.transform(tertile_bins)``).
    A value equal to a cut point goes to the lower tertile.
    """
    values = pd.Series(area_fractions, dtype=float)
    present = values > 0
    out = pd.Series([None] * len(values), index=values.index, dtype=object)
    if not present.any():
        return out
    low, high = np.quantile(values[present].to_numpy(), [1 / 3, 2 / 3])
    positive = values[present].to_numpy()
    out[present] = np.asarray(TERTILES, dtype=object)[(positive > low).astype(int) + (positive > high)]
    return out


def aggregate(rows: pd.DataFrame, by: Sequence[str]) -> pd.DataFrame:
    """Mean, median, sd, n, excluded and substituted counts per group and metric.

    ``rows`` are long-format metric rows (columns ``metric``, ``value``,
    ``substituted``, ``case_state`` and those named in ``by``). A row is
    excluded when its value is NaN or its case state is both_empty; ``n``
    counts the rest, which include substituted worst-case values (counted in
    ``substituted``). ``sd`` is the sample standard deviation (NaN for n < 2).
    """
    keys = list(by) + ([] if "metric" in by else ["metric"])
    missing = [c for c in {*keys, "value", "substituted", "case_state"} if c not in rows.columns]
    if missing:
        raise ValueError(f"aggregate: rows lack columns {sorted(missing)}")
    excluded = rows["value"].isna() | (rows["case_state"] == BOTH_EMPTY)
    frame = rows[keys].copy()
    frame["included"] = rows["value"].where(~excluded)
    frame["is_excluded"] = excluded
    frame["is_substituted"] = rows["substituted"].astype(bool) & ~excluded
    grouped = frame.groupby(keys, dropna=False, sort=True)
    result = grouped.agg(
        mean=("included", "mean"),
        median=("included", "median"),
        sd=("included", "std"),
        n=("included", "count"),
        excluded=("is_excluded", "sum"),
        substituted=("is_substituted", "sum"),
    ).reset_index()
    return result.astype({"n": int, "excluded": int, "substituted": int})

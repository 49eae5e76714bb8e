"""Boundary-distance metrics of one (unit, label): HD95, HD, ASSD, MASD, NSD (DESIGN §7).

Definitions (distances from :mod:`mskbench.metrics.distances`, in mm):

- ``hd``:   max(max d(R→P), max d(P→R))
- ``hd95``: max(p95 d(R→P), p95 d(P→R)), linear-interpolated percentiles
- ``assd``: pooled mean, (Σ d(R→P) + Σ d(P→R)) / (|∂R| + |∂P|)
- ``masd``: mean of the two directed means, (mean d(R→P) + mean d(P→R)) / 2
- ``nsd``:  fraction of boundary voxels of both masks within τ mm of the
  other boundary, (#{d(R→P) ≤ τ} + #{d(P→R) ≤ τ}) / (|∂R| + |∂P|)

Empty cases: both_empty → NaN for all; miss / false_positive → HD95, HD,
ASSD and MASD are undefined (no boundary to measure to) and get the unit's
field-of-view diagonal, flagged ``substituted``; NSD is defined there (no
boundary voxel lies within τ of an empty surface) and is 0, not substituted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mskbench.metrics.cases import BOTH_EMPTY, HIT
from mskbench.metrics.distances import BoundaryDistances, boundary_distances, unit_diagonal_mm
from mskbench.protocols import MetricValue

#: distances within this many mm of τ count as within τ: guards the ≤ test
#: against rounding in sqrt(Σ (k_i s_i)²) (a 1 mm grid step can come out as 1.0000000000000002)
NSD_ROUNDING_MM = 1e-9

DISTANCE_NAMES = ("hd95", "hd", "assd", "masd")


def summarise_distances(distances: BoundaryDistances, nsd_tolerance_mm: float) -> dict[str, float]:
    """The five surface metrics of a hit from its two directed distance sets."""
    forward = distances.reference_to_prediction
    backward = distances.prediction_to_reference
    pooled_count = forward.size + backward.size
    within = nsd_tolerance_mm + NSD_ROUNDING_MM
    return {
        "hd95": float(max(np.percentile(forward, 95), np.percentile(backward, 95))),
        "hd": float(max(forward.max(), backward.max())),
        "assd": float((forward.sum() + backward.sum()) / pooled_count),
        "masd": float((forward.mean() + backward.mean()) / 2.0),
        "nsd": float((np.count_nonzero(forward <= within) + np.count_nonzero(backward <= within)) / pooled_count),
    }


class SurfaceMetrics:
    """HD95, HD, ASSD, MASD in mm and NSD at ``nsd_tolerance_mm`` (unitless, 0–1)."""

    names = ("hd95", "hd", "assd", "masd", "nsd")

    def __init__(self, nsd_tolerance_mm: float = 1.0) -> None:
        if not (math.isfinite(nsd_tolerance_mm) and nsd_tolerance_mm >= 0):
            raise ValueError(f"nsd_tolerance_mm must be a finite value >= 0, got {nsd_tolerance_mm!r}")
        self.nsd_tolerance_mm = float(nsd_tolerance_mm)

    def compute(
        self,
        reference: np.ndarray,
        prediction: np.ndarray,
        spacing: Sequence[float],
        case_state: str,
    ) -> dict[str, MetricValue]:
        if case_state == BOTH_EMPTY:
            return {name: MetricValue(float("nan")) for name in self.names}
        if case_state != HIT:
            worst = MetricValue(unit_diagonal_mm(reference.shape, spacing), substituted=True)
            return {**{name: worst for name in DISTANCE_NAMES}, "nsd": MetricValue(0.0)}
        values = summarise_distances(boundary_distances(reference, prediction, spacing), self.nsd_tolerance_mm)
        return {name: MetricValue(values[name]) for name in self.names}

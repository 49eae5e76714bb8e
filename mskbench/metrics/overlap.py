"""Dice and IoU of one (unit, label), with the harness's empty-case policy (DESIGN §7).

Counting voxels needs no library; what matters is the policy: both_empty is
NaN (excluded from aggregates and counted there), a miss or a false positive
is 0 because the formulas give 0 with a non-zero denominator (not a
substitution).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mskbench.metrics.cases import BOTH_EMPTY
from mskbench.protocols import MetricValue

_UNDEFINED = MetricValue(float("nan"))


class OverlapMetrics:
    """Dice = 2|R∩P| / (|R|+|P|); IoU = |R∩P| / |R∪P|; unitless, spacing-free."""

    names = ("dice", "iou")

    def compute(
        self,
        reference: np.ndarray,
        prediction: np.ndarray,
        spacing: Sequence[float],
        case_state: str,
    ) -> dict[str, MetricValue]:
        if case_state == BOTH_EMPTY:
            return {"dice": _UNDEFINED, "iou": _UNDEFINED}
        both = int(np.count_nonzero(reference & prediction))
        total = int(np.count_nonzero(reference)) + int(np.count_nonzero(prediction))
        return {
            "dice": MetricValue(2.0 * both / total),
            "iou": MetricValue(both / (total - both)),
        }

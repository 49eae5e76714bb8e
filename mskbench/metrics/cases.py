"""Case state of one (unit, label): which of the two masks has the structure (DESIGN §7).

The state decides the empty-case policy of every metric, so it is computed
once per unit by the harness and handed to each metric, never re-derived by a
metric with its own rule.
"""

from __future__ import annotations

import numpy as np

HIT = "hit"
MISS = "miss"
FALSE_POSITIVE = "false_positive"
BOTH_EMPTY = "both_empty"
CASE_STATES = (HIT, MISS, FALSE_POSITIVE, BOTH_EMPTY)
#: Not decided from the two masks: the loaded reference had the label, but dataset-level
#: preprocessing (small-object removal) deleted all of it, so there is nothing to score against.
#: Every metric value of such a row is NaN (excluded, counted), whatever the prediction.
REMOVED_BY_PREPROCESSING = "removed_by_preprocessing"


def case_state(reference: np.ndarray, prediction: np.ndarray) -> str:
    """'hit' (both present), 'miss', 'false_positive' or 'both_empty' for two bool masks."""
    in_reference = bool(reference.any())
    in_prediction = bool(prediction.any())
    if in_reference:
        return HIT if in_prediction else MISS
    return FALSE_POSITIVE if in_prediction else BOTH_EMPTY

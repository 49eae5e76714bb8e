"""Per (subject, cell, label) summaries of an interactive run over its rounds (DESIGN §7).

``values[k]`` is a metric (Dice or NSD) after round k: round 0 is the
initial prompt, rounds 1..K the corrective clicks.

- ``dsc_auc`` / ``nsd_auc``: trapezoid over the click rounds 1..K with unit
  spacing, divided by K - 1 so the value lies in [0, 1] (a constant Dice d
  gives d). CVPR 2025 (``CVPR25_iter_eval.py``) integrates the same rounds
  (``dscs[-n_clicks:]``, the initial box excluded because it is optional)
  without normalising: its DSC_AUC equals ours times K - 1 (4 for K = 5).
  With K = 1 the value is the Dice after the one click; with K = 0 it is NaN.
- ``final_dsc`` / ``final_nsd``: the value after round K.
- ``noc_80`` / ``noc_90``: the first round k whose Dice reaches 0.8 / 0.9,
  or K + 1 when none does. It counts click rounds, not clicks: a round of
  ``random_error`` or of ``space = "slice"`` can hold several
  (docs/interactive.md).

A NaN value (both masks empty) makes every summary NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DERIVED_METRICS = ("dsc_auc", "nsd_auc", "final_dsc", "final_nsd", "noc_80", "noc_90")
"""Whole-protocol summaries: stored with the final round, meaningless for any single round."""


def auc(values: Sequence[float]) -> float:
    """Normalised trapezoid over rounds 1..K (see module docstring)."""
    clicks = np.asarray(values[1:], dtype=float)
    if clicks.size == 0 or np.isnan(clicks).any():
        return float("nan")
    if clicks.size == 1:
        return float(clicks[0])
    return float(np.trapezoid(clicks) / (clicks.size - 1))


def clicks_to_reach(dice: Sequence[float], threshold: float) -> float:
    """NoC: the first round (not click) reaching ``threshold``, K + 1 when never reached."""
    values = np.asarray(dice, dtype=float)
    if np.isnan(values).any():
        return float("nan")
    reached = np.flatnonzero(values >= threshold)
    return float(reached[0]) if reached.size else float(len(values))


def interaction_summary(dice: Sequence[float], nsd: Sequence[float] | None) -> dict[str, float]:
    """The derived metrics of one (subject, cell, label) from its per-round Dice and NSD."""
    out = {
        "dsc_auc": auc(dice),
        "final_dsc": float(dice[-1]),
        "noc_80": clicks_to_reach(dice, 0.8),
        "noc_90": clicks_to_reach(dice, 0.9),
    }
    if nsd is not None:
        out["nsd_auc"] = auc(nsd)
        out["final_nsd"] = float(nsd[-1])
    return out

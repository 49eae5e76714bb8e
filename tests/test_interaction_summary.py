"""dsc_auc / nsd_auc / final / NoC against hand-computed values and CVPR 2025's own formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from mskbench.interaction.summary import auc, clicks_to_reach, interaction_summary

DICE = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]  # round 0 (box) then 5 clicks


def test_auc_hand_computed():
    # rounds 1..5: (0.6 + 0.95) / 2 + 0.7 + 0.8 + 0.9 = 3.175, normalised by 4
    assert auc(DICE) == pytest.approx(3.175 / 4)


def test_auc_times_k_minus_one_is_cvpr25_dsc_auc():
    # CVPR25_iter_eval.py: integrate.cumulative_trapezoid(np.array(dscs[-n_clicks:]), np.arange(n_clicks))[-1]
    upstream = integrate.cumulative_trapezoid(np.array(DICE[-5:]), np.arange(5))[-1]
    assert auc(DICE) * 4 == pytest.approx(upstream)


def test_auc_ignores_the_initial_round_and_handles_few_rounds():
    assert auc([0.0, 0.4, 0.4]) == pytest.approx(0.4)
    assert auc([0.1, 0.7]) == pytest.approx(0.7)
    assert math.isnan(auc([0.3]))
    assert math.isnan(auc([0.3, float("nan"), 0.5]))


def test_clicks_to_reach():
    assert clicks_to_reach(DICE, 0.8) == 3
    assert clicks_to_reach(DICE, 0.9) == 4
    assert clicks_to_reach([0.85, 0.1], 0.8) == 0
    assert clicks_to_reach([0.1] * 6, 0.8) == 6  # never: rounds + 1
    assert math.isnan(clicks_to_reach([float("nan")] * 3, 0.8))


def test_summary():
    out = interaction_summary(DICE, [0.2, 0.4, 0.4, 0.6, 0.6, 0.8])
    assert out == pytest.approx({
        "dsc_auc": 3.175 / 4, "final_dsc": 0.95, "noc_80": 3, "noc_90": 4,
        "nsd_auc": (0.4 / 2 + 0.4 + 0.6 + 0.6 + 0.8 / 2) / 4, "final_nsd": 0.8,
    })
    assert set(interaction_summary(DICE, None)) == {"dsc_auc", "final_dsc", "noc_80", "noc_90"}

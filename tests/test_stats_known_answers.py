"""Statistics checked against published or documented answers."""

import numpy as np
import pandas as pd
import pingouin as pg
import pytest

from mskbench.stats import agreement
from mskbench.stats.agreement import icc_3_1, icc_3_1_value, parametric_limits
from mskbench.stats.compare import Thresholds, friedman, wilcoxon_pair

# R's ?friedman.test example (Hollander & Wolfe 1973, p. 140): rounding first base, 22 players x 3 methods;
# R prints "Friedman chi-squared = 11.143, df = 2, p-value = 0.003805".
ROUNDING_TIMES = np.array([
    5.40, 5.50, 5.55, 5.85, 5.70, 5.75, 5.20, 5.60, 5.50, 5.55, 5.50, 5.40, 5.90, 5.85, 5.70, 5.45, 5.55, 5.60,
    5.40, 5.40, 5.35, 5.45, 5.50, 5.35, 5.25, 5.15, 5.00, 5.85, 5.80, 5.70, 5.25, 5.20, 5.10, 5.65, 5.55, 5.45,
    5.60, 5.35, 5.45, 5.05, 5.00, 4.95, 5.50, 5.50, 5.40, 5.45, 5.55, 5.50, 5.55, 5.55, 5.35, 5.45, 5.50, 5.55,
    5.50, 5.45, 5.25, 5.65, 5.60, 5.40, 5.70, 5.65, 5.55, 6.30, 6.30, 6.25]).reshape(22, 3)

# Shrout & Fleiss (1979) Table 2: 6 targets x 4 judges; ICC(3,1) = 0.71.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)

# Bland & Altman (1986, Lancet) PEFR: Wright vs mini Wright peak flow meter, first readings, 17 subjects;
# mean difference -2.1 l/min, SD 38.8, CI of the bias -22.1 to 17.8.
WRIGHT = np.array([494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427], float)
MINI = np.array([512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451], float)


def test_friedman_matches_r_rounding_times():
    wide = pd.DataFrame(ROUNDING_TIMES, columns=["round_out", "narrow", "wide"])
    row = friedman(wide, Thresholds())
    assert row["statistic"] == pytest.approx(11.143, abs=5e-4)
    assert row["p_value"] == pytest.approx(0.003805, abs=5e-7)
    assert row["status"] == "computed"


def test_friedman_needs_three_models_and_enough_subjects():
    assert friedman(pd.DataFrame(ROUNDING_TIMES[:, :2]), Thresholds())["status"] == "not computed"
    short = friedman(pd.DataFrame(ROUNDING_TIMES[:4]), Thresholds(min_subjects=6))
    assert short["status"] == "not computed" and "4 paired subject(s)" in short["reason"]


def test_icc_formula_matches_pingouin_wine_example_and_shrout_fleiss():
    wine = pg.read_dataset("icc")
    wide = wine.pivot(index="Wine", columns="Judge", values="Scores").to_numpy(float)
    # pingouin's documented output for this data: ICC(C,1) = 0.729487
    assert icc_3_1_value(wide) == pytest.approx(0.729487, abs=1e-6)
    assert icc_3_1_value(SHROUT_FLEISS) == pytest.approx(0.71, abs=0.005)


def test_icc_wrapper_equals_formula_on_two_raters():
    rng = np.random.default_rng(3)
    ref = rng.normal(2.0, 0.5, 30)
    pred = ref + rng.normal(0.1, 0.2, 30)
    out = icc_3_1(ref, pred)
    assert out["icc"] == pytest.approx(icc_3_1_value(np.column_stack([ref, pred])), abs=1e-9)
    assert out["icc_ci_low"] < out["icc"] < out["icc_ci_high"]


def test_icc_wrapper_accepts_older_pingouin_names(monkeypatch):
    old = pd.DataFrame({"Type": ["ICC1", "ICC2", "ICC3"], "ICC": [0.1, 0.2, 0.654], "pval": [0.5, 0.4, 0.01],
                        "CI95%": [[0.0, 0.2], [0.1, 0.3], [0.4, 0.8]]})
    monkeypatch.setattr(agreement.pg, "intraclass_corr", lambda *a, **k: old)
    out = icc_3_1(np.arange(8.0), np.arange(8.0) + 1)
    assert out == {"icc": 0.654, "icc_ci_low": 0.4, "icc_ci_high": 0.8, "icc_p_value": 0.01}


def test_parametric_limits_match_bland_altman_1986():
    out = parametric_limits(WRIGHT - MINI)
    assert out["bias"] == pytest.approx(-2.1, abs=0.05)
    assert out["sd_diff"] == pytest.approx(38.8, abs=0.05)
    assert out["bias_ci_low"] == pytest.approx(-22.1, abs=0.1)
    assert out["bias_ci_high"] == pytest.approx(17.8, abs=0.1)
    assert out["loa_lower"] == pytest.approx(-2.1176 - 1.96 * 38.765, abs=0.01)
    half_width = out["loa_upper_ci_high"] - out["loa_upper"]
    assert half_width == pytest.approx(2.1199 * 38.765 * np.sqrt(3 / 17), abs=0.01)


def test_bland_altman_switches_to_percentiles_when_spread_grows():
    rng = np.random.default_rng(0)
    ref = np.linspace(1, 100, 60)
    pred = ref + rng.normal(0, 1, 60) * ref * 0.2  # proportional error
    out = agreement.bland_altman(ref, pred, np.arange(60), rng, 300)
    assert out["levene_p"] < 0.05
    diffs = pred - ref
    assert out["ba_method"] == "nonparametric"
    assert out["bias"] == pytest.approx(np.median(diffs))
    assert out["loa_upper"] == pytest.approx(np.percentile(diffs, 97.5))
    assert out["bias_ci_low"] <= out["bias"] <= out["bias_ci_high"]


def test_wilcoxon_all_zero_differences_and_declared_zero_rule():
    same = np.linspace(0.7, 0.9, 10)
    assert wilcoxon_pair(same, same, Thresholds())["p_value"] == 1.0
    from scipy import stats

    a = np.array([0.8, 0.82, 0.79, 0.9, 0.85, 0.81, 0.77, 0.88])
    b = np.array([0.8, 0.80, 0.75, 0.86, 0.85, 0.78, 0.70, 0.80])
    assert wilcoxon_pair(a, b, Thresholds())["p_value"] == pytest.approx(
        stats.wilcoxon(a, b, zero_method="pratt").pvalue)

"""Biomarker agreement models of the source study: GP regression, mixed-model ICC, regression SE and p-values."""

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from mskbench.stats.agreement import icc_3_1, regression
from mskbench.stats.analysis import StatsSettings, agreement
from mskbench.stats.gp_regression import fit_gp, gp_row
from mskbench.stats.icc_mixed import bootstrap_icc, closed_form_icc, mixed_icc, mixedlm_icc


def curved(rng, n, noise_sd=0.1):
    x = np.sort(rng.uniform(1.0, 3.0, n))
    return x, x + 0.3 * (x - 2.0) ** 2 + rng.normal(0, noise_sd, n)


def truth(x):
    return x + 0.3 * (x - 2.0) ** 2


def test_gp_recovers_a_planted_curve_and_noise():
    rng = np.random.default_rng(0)
    x, y = curved(rng, 80)
    fit = fit_gp(x, y)
    assert fit["status"] == "computed", fit["reason"]
    grid, mean = np.array(fit["grid"]), np.array(fit["mean"])
    assert grid.min() == pytest.approx(x.min()) and grid.max() == pytest.approx(x.max())
    inner = (grid > 1.2) & (grid < 2.8)
    assert np.max(np.abs(mean[inner] - truth(grid[inner]))) < 0.08
    assert fit["noise_sd"] == pytest.approx(0.1, rel=0.3)
    # the band is a prediction band: fresh predictions from the same model fall inside it ~95 % of the time
    fresh_x = rng.uniform(1.2, 2.8, 4000)
    fresh_y = truth(fresh_x) + rng.normal(0, 0.1, fresh_x.size)
    lower = np.interp(fresh_x, grid, fit["lower"])
    upper = np.interp(fresh_x, grid, fit["upper"])
    assert 0.90 <= np.mean((fresh_y >= lower) & (fresh_y <= upper)) <= 0.99


def test_gp_that_does_not_converge_is_not_computed_with_why():
    x = np.linspace(1.0, 3.0, 30)
    exact = fit_gp(x, 2.0 * x + 1.0)  # no noise: the white-noise level runs onto its lower bound
    assert exact["status"] == "not computed"
    assert exact["reason"].startswith("GP fit did not converge:") and "bound" in exact["reason"]
    rng = np.random.default_rng(1)
    x, y = curved(rng, 40)
    stopped = fit_gp(x, y, max_iter=1)
    assert stopped["status"] == "not computed"
    assert "L-BFGS-B stopped after" in stopped["reason"]
    assert fit_gp(np.ones(10), np.arange(10.0))["status"] == "not computed"


def test_gp_only_where_bland_altman_rejects_normality():
    rng = np.random.default_rng(2)
    x, y = curved(rng, 30)
    skipped = gp_row(x, y, rejected=False, why="Shapiro–Wilk p = 0.4")
    assert skipped == {"status": "not applicable", "reason": "Shapiro–Wilk p = 0.4"}
    fitted = gp_row(x, y, rejected=True, why="Shapiro–Wilk p = 0.001")
    assert fitted["status"] == "computed" and len(json.loads(fitted["grid"])) == 50


def pairs_frame(reference, prediction, subjects=None):
    n = len(reference)
    keys = {"dataset": "knee", "model": "m", "prompter": "gt_box", "structure": "femoral_cartilage",
            "biomarker": "cartilage_thickness", "method": "medial_axis", "unit": "mm", "instance": 0}
    return pd.DataFrame({**keys, "subject_id": subjects if subjects is not None else [f"s{i}" for i in range(n)],
                         "reference": reference, "prediction": prediction})


def test_stats_agreement_fits_gp_on_proportional_error_and_reports_non_convergence():
    rng = np.random.default_rng(0)
    ref = np.linspace(1, 100, 60)
    noisy = ref + rng.normal(0, 1, 60) * ref * 0.2  # spread grows with size: Levene rejects
    exact = ref ** 1.5 / 10  # noise-free curve: skewed differences, a GP with no noise to fit
    frame = pd.concat([pairs_frame(ref, noisy).assign(model="noisy"), pairs_frame(ref, exact).assign(model="exact")])
    table, gp = agreement(frame, StatsSettings(n_boot=100, n_boot_icc=200))
    gp = gp.set_index("model")
    assert set(table["ba_method"]) == {"nonparametric"}
    assert gp.loc["noisy", "status"] == "computed" and "rejected" in gp.loc["noisy", "reason"]
    assert gp.loc["exact", "status"] == "not computed"
    assert gp.loc["exact", "reason"].startswith("GP fit did not converge")


def test_regression_standard_errors_and_p_values_match_statsmodels_ols():
    rng = np.random.default_rng(4)
    ref = rng.uniform(1.5, 3.0, 25)
    pred = 0.2 + 0.9 * ref + rng.normal(0, 0.15, 25)
    ours = regression(ref, pred)
    ols = sm.OLS(pred, sm.add_constant(ref)).fit()
    assert ours["intercept"] == pytest.approx(ols.params[0], abs=1e-10)
    assert ours["slope"] == pytest.approx(ols.params[1], abs=1e-10)
    assert ours["intercept_se"] == pytest.approx(ols.bse[0], rel=1e-9)
    assert ours["slope_se"] == pytest.approx(ols.bse[1], rel=1e-9)
    assert ours["intercept_p"] == pytest.approx(ols.pvalues[0], rel=1e-7)
    assert ours["slope_p"] == pytest.approx(ols.pvalues[1], rel=1e-7)
    flat = regression(np.ones(5), np.arange(5.0))
    assert np.isnan(flat["slope_se"]) and np.isnan(flat["slope_p"])


def simulated(rng, n, var_subject=1.0, var_residual=0.25, offset=0.3):
    subject = rng.normal(0, np.sqrt(var_subject), n)
    ref = 2.0 + subject + rng.normal(0, np.sqrt(var_residual), n)
    pred = 2.0 + offset + subject + rng.normal(0, np.sqrt(var_residual), n)
    return ref, pred


def test_mixed_icc_recovers_known_variance_components_and_equals_icc_3_1():
    ref, pred = simulated(np.random.default_rng(5), 400)
    fit = mixedlm_icc(ref, pred, np.arange(400))
    assert fit["lmm_converged"]
    assert fit["icc_lmm"] == pytest.approx(0.8, abs=0.03)  # 1 / (1 + 0.25)
    assert fit["var_subject"] == pytest.approx(1.0, rel=0.15)
    assert fit["var_residual"] == pytest.approx(0.25, rel=0.15)
    # balanced two-source data: REML variance components give the consistency ICC, pingouin's ICC(C,1)
    assert fit["icc_lmm"] == pytest.approx(icc_3_1(ref, pred)["icc"], abs=1e-5)


def test_closed_form_bootstrap_equals_mixedlm_on_resamples_with_instances():
    rng = np.random.default_rng(6)
    n_subjects = 15
    subjects = np.repeat([f"s{i}" for i in range(n_subjects)], 2)  # two instances (e.g. disc levels) each
    ref, pred = simulated(rng, 2 * n_subjects)
    for _ in range(4):
        drawn = rng.integers(0, n_subjects, n_subjects)
        rows = np.concatenate([np.flatnonzero(subjects == f"s{i}") for i in drawn])
        targets = np.arange(len(rows))  # a subject drawn twice contributes two sets of targets
        expected = mixedlm_icc(ref[rows], pred[rows], targets)["icc_lmm"]
        assert closed_form_icc(ref[rows], pred[rows]) == pytest.approx(expected, abs=1e-4)


def test_mixed_icc_is_zero_when_subjects_vary_less_than_the_error():
    rng = np.random.default_rng(7)
    ref = rng.normal(0, 1, 30)
    pred = -ref + rng.normal(0, 0.1, 30)  # negative ANOVA ICC; REML stops at a zero subject variance
    assert closed_form_icc(ref, pred) == 0.0
    assert mixedlm_icc(ref, pred, np.arange(30))["icc_lmm"] < 0.02  # statsmodels stops just inside the boundary


def test_mixed_icc_bootstrap_median_interval_and_seed():
    ref, pred = simulated(np.random.default_rng(8), 40)
    subjects = np.arange(40)
    out = mixed_icc(ref, pred, subjects, subjects, np.random.default_rng(0), n_boot=3000)
    assert out["icc_lmm_n_boot"] == 3000
    assert out["icc_lmm_ci_low"] < out["icc_lmm_boot_median"] < out["icc_lmm_ci_high"]
    assert out["icc_lmm_boot_median"] == pytest.approx(out["icc_lmm"], abs=0.03)
    again = mixed_icc(ref, pred, subjects, subjects, np.random.default_rng(0), n_boot=3000)
    assert again == out
    # the vectorised draws are a subject bootstrap: their spread matches resampling by hand
    rng = np.random.default_rng(1)
    by_hand = []
    for _ in range(1000):
        idx = rng.integers(0, 40, 40)
        by_hand.append(closed_form_icc(ref[idx], pred[idx]))
    fast = bootstrap_icc(ref, pred, subjects, np.random.default_rng(2), 1000)
    assert np.std(fast) == pytest.approx(np.std(by_hand), rel=0.15)
    assert np.median(fast) == pytest.approx(np.median(by_hand), abs=0.01)


def test_mixed_icc_interval_covers_the_truth_in_repeated_studies():
    hits = 0
    for seed in range(60):
        ref, pred = simulated(np.random.default_rng(100 + seed), 30)
        boot = bootstrap_icc(ref, pred, np.arange(30), np.random.default_rng(seed), 1000)
        low, high = np.percentile(boot, [2.5, 97.5])
        hits += low <= 0.8 <= high
    assert hits >= 50  # nominal 95 % of 60 = 57; percentile intervals run a little short at n = 30


def test_stats_command_reports_a_gp_that_does_not_converge(tmp_path, capsys):
    import duckdb

    import mskbench.cli.analysis  # noqa: F401  (registers stats on the app)
    from mskbench.cli.main import main
    from stats_fixtures import plant

    db = plant(tmp_path / "exact.duckdb", datasets={"knee": 16}, models={"sam": 0.0})
    con = duckdb.connect(str(db))  # prediction = exp(2 x reference): skewed differences, no noise to fit
    con.execute("UPDATE biomarkers SET value = (SELECT exp(2 * r.value) FROM biomarkers r WHERE r.source = 'reference' "
                "AND r.cell_id = biomarkers.cell_id AND r.subject_id = biomarkers.subject_id) "
                "WHERE source = 'prediction'")
    con.close()
    assert main(["stats", "--db", str(db), "--n-boot", "200", "--n-boot-icc", "200"]) == 0
    out = capsys.readouterr().out
    assert "(nonparametric)" in out
    assert "GP regression: not computed (GP fit did not converge: The optimal value found for dimension 0 of " \
           "parameter k2__noise_level is close to the specified lower bound" in out
    con = duckdb.connect(str(db), read_only=True)
    status, reason = con.execute("SELECT status, reason FROM stats_gp_regression").fetchone()
    con.close()
    assert status == "not computed" and reason.startswith("GP fit did not converge")

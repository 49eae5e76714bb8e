"""Planted-effect studies: the analyses find what was put in, and nothing that was not."""

import numpy as np
import pandas as pd
import pytest

from mskbench.stats.compare import Thresholds, compare_models
from mskbench.stats.mixed import acquisition_effects, vif_screen
from mskbench.stats.ranking import rank_intervals


def subject_frame(rng, n, offsets, *, subject_sd=0.05, noise_sd=0.02, dataset="knee"):
    """Long subject-level rows for models whose Dice differ by `offsets`."""
    base = 0.8 + rng.normal(0, subject_sd, n)
    rows = []
    for model, offset in offsets.items():
        values = np.clip(base + offset + rng.normal(0, noise_sd, n), 0, 1)
        rows += [{"dataset": dataset, "prompter": "gt_box", "metric": "dice", "structure": "cartilage",
                  "model": model, "subject_id": f"s{i:03d}", "value": v} for i, v in enumerate(values)]
    return pd.DataFrame(rows)


def test_model_005_dice_worse_is_found_worse():
    frame = subject_frame(np.random.default_rng(1), 20, {"a": 0.0, "b": -0.05, "c": 0.0})
    friedman, pairs = compare_models(frame, Thresholds())
    assert friedman.iloc[0]["p_value"] < 0.01
    worse = pairs[(pairs["model_a"] == "a") & (pairs["model_b"] == "b")].iloc[0]
    assert worse["significant"] and worse["better"] == "a"
    assert worse["median_diff"] == pytest.approx(0.05, abs=0.02)
    same = pairs[(pairs["model_a"] == "a") & (pairs["model_b"] == "c")].iloc[0]
    assert not same["significant"] and same["better"] == ""


def test_identical_models_false_positive_rate_near_alpha():
    rejections = 0
    n_studies = 300
    for seed in range(n_studies):
        frame = subject_frame(np.random.default_rng(seed), 20, {"a": 0.0, "b": 0.0})
        _, pairs = compare_models(frame, Thresholds())
        rejections += bool(pairs.iloc[0]["significant"])
    rate = rejections / n_studies
    # binomial(300, 0.05): mean 15, sd 3.8; a broken test (always or never significant) lands far outside
    assert 0.02 <= rate <= 0.09, rate


def test_unpaired_and_nan_subjects_are_dropped_and_counted():
    frame = subject_frame(np.random.default_rng(2), 12, {"a": 0.0, "b": -0.05, "c": 0.0})
    frame.loc[(frame["model"] == "b") & (frame["subject_id"] == "s003"), "value"] = np.nan
    frame = frame[~((frame["model"] == "c") & (frame["subject_id"] == "s007"))]
    friedman, pairs = compare_models(frame, Thresholds())
    assert friedman.iloc[0]["dropped_unpaired"] == 2
    assert friedman.iloc[0]["n_subjects"] == 10
    assert set(pairs["n_subjects"]) == {10}


def test_too_few_subjects_is_not_computed_with_reason():
    frame = subject_frame(np.random.default_rng(2), 4, {"a": 0.0, "b": -0.05, "c": 0.0})
    friedman, pairs = compare_models(frame, Thresholds(min_subjects=6))
    assert friedman.iloc[0]["status"] == "not computed"
    assert "4 paired subject(s); at least 6 needed" in friedman.iloc[0]["reason"]
    assert set(pairs["status"]) == {"not computed"} and pairs["p_adjusted"].isna().all()


def test_rank_intervals_tight_for_separated_models_and_wide_for_ties():
    rng = np.random.default_rng(0)
    frame = subject_frame(rng, 30, {"good": 0.0, "mid": -0.05, "bad": -0.1, "twin": -0.1})
    wide = frame.pivot(index="subject_id", columns="model", values="value")
    table = rank_intervals(wide, True, np.random.default_rng(1), 500).set_index("model")
    assert (table.loc["good", ["rank", "rank_low", "rank_high"]] == 1).all()
    assert table.loc["good", "p_best"] == 1.0
    assert table.loc["mid", "rank"] == 2
    assert table.loc["bad", "rank_low"] == 3 and table.loc["bad", "rank_high"] == 4
    assert table.loc["twin", "rank_low"] == 3 and table.loc["twin", "rank_high"] == 4
    again = rank_intervals(wide, True, np.random.default_rng(1), 500).set_index("model")
    pd.testing.assert_frame_equal(table, again)


def acquisition_study(te_effect, seed=0, n_datasets=5, n=30):
    rng = np.random.default_rng(seed)
    values, acq = [], []
    for d in range(n_datasets):
        offset = rng.normal(0, 0.03)
        for i in range(n):
            subject = f"d{d}-{i}"
            te = 10 + 8 * d + rng.normal(0, 5)
            flip = rng.uniform(10, 90)
            acq.append({"dataset": f"d{d}", "subject_id": subject, "te_ms": te, "tr_ms": 20.0,
                        "flip_angle_deg": flip, "slice_thickness_mm": rng.uniform(0.5, 3),
                        "pixel_spacing_mm": rng.uniform(0.3, 0.8), "acquisition_type": rng.choice(["2D", "3D"]),
                        "field_strength_t": 3.0, "vendor": "GE"})
            dice = 0.85 + offset + te_effect * (te - 30) + rng.normal(0, 0.02)
            values.append({"dataset": f"d{d}", "model": "m", "prompter": "p", "subject_id": subject,
                           "structure": "cartilage", "metric": "dice", "value": dice})
    return pd.DataFrame(values), pd.DataFrame(acq)


def test_planted_te_effect_recovered_with_sign_by_mixed_model():
    values, acq = acquisition_study(te_effect=-0.002)
    coef, vif, status = acquisition_effects(values, acq, min_subjects=6)
    assert status.iloc[0]["model_kind"].startswith("mixedlm")
    te = coef[coef["term"] == "te_ms"].iloc[0]
    assert te["estimate"] < 0 and te["p_value"] < 0.001
    assert te["ci_low"] < -0.002 < te["ci_high"]
    flip = coef[coef["term"] == "flip_angle_deg"].iloc[0]
    assert flip["ci_low"] < 0 < flip["ci_high"]


def test_vif_screen_removes_collinear_and_constant_covariates():
    rng = np.random.default_rng(0)
    te = rng.uniform(5, 60, 80)
    frame = pd.DataFrame({"te_ms": te, "flip_angle_deg": rng.uniform(10, 90, 80),
                          "slice_thickness_mm": 0.05 * te + rng.normal(0, 0.01, 80),
                          "pixel_spacing_mm": np.full(80, 0.5), "is_3d": rng.integers(0, 2, 80).astype(float)})
    kept, steps = vif_screen(frame, list(frame.columns))
    removed = {s["covariate"]: s["reason"] for s in steps if s["removed"]}
    assert removed["pixel_spacing_mm"] == "constant"
    assert len({"te_ms", "slice_thickness_mm"} & set(removed)) == 1
    assert {"flip_angle_deg", "is_3d"} <= set(kept)
    assert all(s["vif"] <= 10 for s in steps if not s["removed"])


@pytest.mark.parametrize("metric", ["noc_80", "noc_90"])
def test_fewer_clicks_to_reach_dice_wins_in_stats_ranking_and_gate(metric):
    """NoC counts clicks: the model needing fewer is the better one everywhere a direction is used."""
    from mskbench.stats.gate import GateSettings, metric_gate
    from mskbench.stats.ranking import ranking

    rng = np.random.default_rng(3)
    rows = []
    for i in range(12):
        base = float(rng.integers(2, 5))
        for model, clicks in (("few", base - 1 - (i % 2)), ("many", base)):
            rows.append({"dataset": "knee", "prompter": "clicks", "metric": metric, "structure": "cartilage",
                         "model": model, "subject_id": f"s{i:03d}", "value": clicks})
    frame = pd.DataFrame(rows)
    _, pairs = compare_models(frame, Thresholds())
    assert pairs.iloc[0]["significant"] and pairs.iloc[0]["better"] == "few"
    ranks = ranking(frame, lambda key: np.random.default_rng(0), 200, 6).set_index("model")["rank"]
    assert ranks["few"] == 1 and ranks["many"] == 2
    promote = metric_gate(frame, "many", "few", metric, None, GateSettings(n_boot=200))
    reject = metric_gate(frame, "few", "many", metric, None, GateSettings(n_boot=200))
    assert bool(promote.iloc[0]["passed"]) and not bool(reject.iloc[0]["passed"])

"""Prompter comparisons per model, and Dice by reference object size (SAMRI bins, tertiles)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from mskbench.metrics.engine import size_bin
from mskbench.stats import data
from mskbench.stats.compare import Thresholds
from mskbench.stats.prompter_pairs import compare_prompters
from mskbench.stats.size_strata import cluster_mean_ci, kruskal_across, size_strata, with_tertiles
from stats_fixtures import plant


@pytest.fixture(scope="module")
def prompted(tmp_path_factory):
    path = tmp_path_factory.mktemp("prompters") / "results.duckdb"
    plant(path, datasets={"knee": 20}, models={"sam": 0.0, "medsam": -0.05},
          prompters=("gt_box", "jitter_box", "detector"), prompter_offsets={"jitter_box": -0.04})
    con = data.open_results(path)
    values = data.subject_metrics(con, ["dice"])
    con.close()
    return values


def test_jittered_boxes_found_worse_for_every_model_and_equal_prompters_not(prompted):
    table = compare_prompters(prompted, Thresholds())
    whole = table[table["structure"] == data.ALL_LABELS].set_index(["model", "prompter_a", "prompter_b"])
    for model in ("sam", "medsam"):
        worse = whole.loc[(model, "gt_box", "jitter_box")]
        assert worse["significant"] and worse["better"] == "gt_box" and worse["n_subjects"] == 20
        assert worse["median_diff"] == pytest.approx(0.04, abs=0.015)
        same = whole.loc[(model, "detector", "gt_box")]
        assert not same["significant"] and same["better"] == ""


def test_prompter_pairs_are_bh_adjusted_within_each_block(prompted):
    table = compare_prompters(prompted, Thresholds())
    for _, block in table.groupby(["dataset", "model", "metric", "structure"]):
        assert len(block) == 3  # three prompters: three pairs
        expected = multipletests(block["p_value"], method="fdr_bh")[1]
        np.testing.assert_allclose(block["p_adjusted"], expected)


def test_one_prompter_gives_no_pairs(prompted):
    assert compare_prompters(prompted[prompted["prompter"] == "gt_box"], Thresholds()).empty


def objects_frame(areas, values, subjects, dataset="knee", model="m", prompter="gt_box"):
    return pd.DataFrame({
        "dataset": dataset, "model": model, "prompter": prompter, "subject_id": subjects,
        "slice_index": np.arange(len(areas)), "structure": "femur", "area_fraction": areas,
        "size_bin": [size_bin(a) for a in areas], "value": values,
    })


def test_samri_bins_tertiles_means_and_kruskal_known_answer():
    areas = np.array([0.001, 0.002, 0.004, 0.01, 0.02, 0.03, 0.04, 0.08, 0.2])
    values = np.array([0.1, 0.3, 0.2, 0.5, 0.6, 0.7, 0.9, 0.8, 0.95])
    subjects = ["a", "b", "c"] * 3
    summary, tests = size_strata(objects_frame(areas, values, subjects),
                                 lambda key: np.random.default_rng(0), 500)
    samri = summary[summary["binning"] == "samri"].set_index("bin")
    assert list(samri["n_objects"]) == [3, 3, 3]
    assert samri.loc["small", "mean"] == pytest.approx(0.2)
    assert samri.loc["medium", "mean"] == pytest.approx(0.6)
    assert samri.loc["large", "mean"] == pytest.approx(np.mean([0.9, 0.8, 0.95]))
    tertile = summary[summary["binning"] == "tertile"].set_index("bin")
    assert tertile.loc["T1", "mean"] == pytest.approx(0.2)  # 9 distinct sizes: three per tertile
    test = tests.set_index("binning").loc["samri"]
    expected = stats.kruskal([0.1, 0.3, 0.2], [0.5, 0.6, 0.7], [0.9, 0.8, 0.95])
    assert test["statistic"] == pytest.approx(expected.statistic)
    assert test["p_value"] == pytest.approx(expected.pvalue)
    assert (summary["ci_low"] <= summary["mean"]).all() and (summary["mean"] <= summary["ci_high"]).all()


def test_tertile_cut_points_come_from_each_labels_objects_not_each_cell():
    areas = np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06])
    one = objects_frame(areas, np.linspace(0.5, 0.9, 6), list("abcdef"), model="m1")
    other = objects_frame(areas[:3], np.linspace(0.5, 0.7, 3), list("abc"), model="m2")  # only the small half
    cartilage = objects_frame(areas / 10, np.linspace(0.5, 0.9, 6), list("abcdef"), model="m1").assign(
        structure="cartilage")  # ten times smaller: its own cut points
    binned = with_tertiles(pd.concat([one, other, cartilage], ignore_index=True))
    assert list(binned.loc[binned["model"] == "m2", "tertile"]) == ["T1", "T1", "T2"]
    assert list(binned.loc[binned["structure"] == "cartilage", "tertile"]) == ["T1", "T1", "T2", "T2", "T3", "T3"]


def test_cluster_bootstrap_with_one_object_per_subject_is_the_ordinary_bootstrap():
    rng = np.random.default_rng(3)
    values = rng.beta(8, 2, 40)
    low, high = cluster_mean_ci(values, np.arange(40), np.random.default_rng(0), 20000)
    reference = stats.bootstrap((values,), np.mean, method="percentile", n_resamples=20000,
                                random_state=np.random.default_rng(1)).confidence_interval
    assert low == pytest.approx(reference.low, abs=0.004)
    assert high == pytest.approx(reference.high, abs=0.004)


def test_cluster_bootstrap_is_wider_when_a_subjects_slices_move_together():
    rng = np.random.default_rng(4)
    subject_level = rng.normal(0.8, 0.1, 10)
    values = np.repeat(subject_level, 20) + rng.normal(0, 0.01, 200)
    clusters = np.repeat(np.arange(10), 20)
    clustered = np.subtract(*cluster_mean_ci(values, clusters, np.random.default_rng(0), 4000)[::-1])
    naive = np.subtract(*cluster_mean_ci(values, np.arange(200), np.random.default_rng(0), 4000)[::-1])
    assert clustered > 3 * naive
    frame = objects_frame(np.full(200, 0.1), values, [f"s{c}" for c in clusters])
    summary, _ = size_strata(frame, lambda key: np.random.default_rng(0), 4000)
    large = summary[(summary["binning"] == "samri") & (summary["bin"] == "large")].iloc[0]
    expected = cluster_mean_ci(values, frame["subject_id"].to_numpy(), np.random.default_rng(0), 4000)
    assert (large["ci_low"], large["ci_high"]) == pytest.approx(expected)


def test_planted_size_effect_is_found_and_no_effect_is_not():
    rng = np.random.default_rng(5)
    areas = np.concatenate([rng.uniform(0.001, 0.004, 40), rng.uniform(0.006, 0.03, 40), rng.uniform(0.04, 0.2, 40)])
    subjects = [f"s{i % 8}" for i in range(120)]
    grows = np.clip(np.repeat([0.5, 0.7, 0.9], 40) + rng.normal(0, 0.08, 120), 0, 1)
    flat = np.clip(0.8 + rng.normal(0, 0.08, 120), 0, 1)
    _, found = size_strata(objects_frame(areas, grows, subjects), lambda key: np.random.default_rng(0), 200)
    _, none = size_strata(objects_frame(areas, flat, subjects), lambda key: np.random.default_rng(0), 200)
    assert found.set_index("binning").loc["samri", "p_value"] < 1e-6
    assert none.set_index("binning").loc["samri", "p_value"] > 0.05


def test_kruskal_leaves_out_bins_with_too_few_objects():
    samples = [np.array([0.5, 0.6, 0.7]), np.array([0.8, 0.85, 0.9]), np.array([0.1])]
    row = kruskal_across(samples, min_objects=3)
    assert row["n_bins"] == 2
    assert row["statistic"] == pytest.approx(stats.kruskal(*samples[:2]).statistic)


def test_kruskal_needs_two_bins_with_objects():
    row = kruskal_across([np.array([0.5, 0.6, 0.7]), np.array([0.4])], min_objects=3)
    assert row["status"] == "not computed" and "1 bin(s)" in row["reason"]
    summary, tests = size_strata(objects_frame(np.array([0.1, 0.2]), np.array([0.9, 0.8]), ["a", "b"]),
                                 lambda key: np.random.default_rng(0), 100)
    assert set(tests["status"]) == {"not computed"}
    assert summary.loc[summary["bin"] == "small", "n_objects"].item() == 0

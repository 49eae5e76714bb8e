"""Case states, the empty-case policy, size bins, aggregation and plugin registration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pluggy
import pytest

from mskbench import hookspecs
from mskbench.errors import DataError
from mskbench.metrics.cases import case_state
from mskbench.metrics.engine import aggregate, area_fraction, score_unit, size_bin, tertile_bins
from mskbench.metrics.overlap import OverlapMetrics
from mskbench.metrics.surface import SurfaceMetrics
from mskbench.protocols import Metric, MetricValue

METRICS = [OverlapMetrics(), SurfaceMetrics()]


def masks():
    present = np.zeros((20, 30), dtype=bool)
    present[5:9, 10:14] = True
    return present, np.zeros_like(present)


def test_case_states():
    present, empty = masks()
    assert case_state(present, present) == "hit"
    assert case_state(present, empty) == "miss"
    assert case_state(empty, present) == "false_positive"
    assert case_state(empty, empty) == "both_empty"


@pytest.mark.parametrize("which", ["miss", "false_positive"])
def test_policy_for_one_sided_cases(which):
    present, empty = masks()
    reference, prediction = (present, empty) if which == "miss" else (empty, present)
    spacing = (0.5, 2.0)
    state, values = score_unit(reference, prediction, spacing, METRICS)
    assert state == which
    diagonal = math.hypot(20 * 0.5, 30 * 2.0)
    assert values["dice"] == MetricValue(0.0) and values["iou"] == MetricValue(0.0)
    for name in ("hd95", "hd", "assd", "masd"):
        assert values[name] == MetricValue(diagonal, substituted=True)
    assert values["nsd"] == MetricValue(0.0, substituted=False)


def test_substituted_diagonal_exceeds_any_measurable_distance():
    """Objects in opposite corners give the largest possible HD, still below the substitute."""
    reference = np.zeros((16, 9, 5), dtype=bool)
    prediction = np.zeros_like(reference)
    reference[0, 0, 0] = prediction[-1, -1, -1] = True
    spacing = (0.3, 1.1, 2.5)
    _, far = score_unit(reference, prediction, spacing, METRICS)
    _, missed = score_unit(reference, np.zeros_like(reference), spacing, METRICS)
    assert far["hd"].value == pytest.approx(math.sqrt((15 * 0.3) ** 2 + (8 * 1.1) ** 2 + (4 * 2.5) ** 2))
    assert far["hd"].value < missed["hd"].value


def test_both_empty_is_nan_everywhere_and_not_substituted():
    _, empty = masks()
    state, values = score_unit(empty, empty, (1.0, 1.0), METRICS)
    assert state == "both_empty"
    assert set(values) == {"dice", "iou", "hd95", "hd", "assd", "masd", "nsd"}
    assert all(math.isnan(v.value) and not v.substituted for v in values.values())


def test_score_unit_accepts_label_arrays_and_rejects_bad_input():
    present, empty = masks()
    state, values = score_unit(present.astype(np.uint8), present.astype(np.uint8), (1.0, 1.0), METRICS)
    assert state == "hit" and values["dice"].value == 1.0 and values["hd"].value == 0.0
    with pytest.raises(DataError, match="spacing"):
        score_unit(present, present, (float("nan"), 1.0), METRICS)
    with pytest.raises(DataError, match="spacing"):
        score_unit(present, present, (0.0, 1.0), METRICS)
    with pytest.raises(ValueError, match="shape"):
        score_unit(present, present[:, :5], (1.0, 1.0), METRICS)
    with pytest.raises(ValueError, match="spacing per axis"):
        score_unit(present, present, (1.0, 1.0, 1.0), METRICS)


def test_two_metrics_returning_one_name_is_an_error():
    present, _ = masks()
    with pytest.raises(ValueError, match="dice"):
        score_unit(present, present, (1.0, 1.0), [OverlapMetrics(), OverlapMetrics()])


def test_nsd_tolerance_is_validated_and_counts_boundary_within_tau():
    with pytest.raises(ValueError):
        SurfaceMetrics(nsd_tolerance_mm=-1.0)
    reference = np.zeros((20, 20), dtype=bool)
    reference[5:15, 5:15] = True
    prediction = np.roll(reference, 1, axis=1)  # 1 voxel = 0.7 mm along columns
    _, tight = score_unit(reference, prediction, (0.5, 0.7), [SurfaceMetrics(0.69)])
    _, exact = score_unit(reference, prediction, (0.5, 0.7), [SurfaceMetrics(0.7)])
    assert exact["nsd"].value == 1.0  # distance exactly tau counts as within
    assert 0.0 < tight["nsd"].value < 1.0


def test_area_fraction_and_size_bins():
    present, _ = masks()
    assert area_fraction(present) == pytest.approx(16 / 600)
    assert size_bin(0.001) == "small"
    assert size_bin(0.005) == "medium" and size_bin(0.035) == "medium"
    assert size_bin(0.0351) == "large"
    for bad in (0.0, -0.1, float("nan"), 1.5):
        with pytest.raises(ValueError):
            size_bin(bad)


def test_tertile_bins_split_positive_fractions_into_thirds():
    fractions = pd.Series([0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, float("nan")], index=list("abcdefgh"))
    bins = tertile_bins(fractions)
    assert list(bins.index) == list("abcdefgh")
    assert bins["a"] is None and bins["h"] is None
    assert list(bins[["b", "c", "d", "e", "f", "g"]]) == ["T1", "T1", "T2", "T2", "T3", "T3"]
    assert tertile_bins([0.0, 0.0]).isna().all()


def test_aggregate_counts_excluded_and_substituted():
    rows = pd.DataFrame(
        {
            "label": [1, 1, 1, 1, 2, 2],
            "metric": ["hd95", "hd95", "hd95", "hd95", "hd95", "dice"],
            "value": [1.0, 3.0, 50.0, float("nan"), 2.0, 0.5],
            "substituted": [False, False, True, False, False, False],
            "case_state": ["hit", "hit", "miss", "both_empty", "hit", "hit"],
        }
    )
    out = aggregate(rows, by=["label"]).set_index(["label", "metric"])
    first = out.loc[(1, "hd95")]
    assert first["n"] == 3 and first["excluded"] == 1 and first["substituted"] == 1
    assert first["mean"] == pytest.approx(18.0) and first["median"] == pytest.approx(3.0)
    assert first["sd"] == pytest.approx(np.std([1.0, 3.0, 50.0], ddof=1))
    single = out.loc[(2, "hd95")]
    assert single["n"] == 1 and math.isnan(single["sd"])
    assert list(out.columns) == ["mean", "median", "sd", "n", "excluded", "substituted"]


def test_aggregate_reports_all_excluded_groups_with_nan_values():
    rows = pd.DataFrame({"metric": ["dice"], "value": [float("nan")], "substituted": [False],
                         "case_state": ["both_empty"], "dataset": ["d"]})
    out = aggregate(rows, by=["dataset"])
    assert out.loc[0, "n"] == 0 and out.loc[0, "excluded"] == 1 and math.isnan(out.loc[0, "mean"])


def test_builtin_metric_plugins_register_through_the_hook():
    import mskbench_builtins.metrics as builtin

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(builtin)
    registered = {}
    manager.hook.mskbench_register_metrics(register=lambda name, factory, **meta: registered.update({name: (factory, meta)}))
    assert set(registered) == {"overlap", "surface"}
    overlap = registered["overlap"][0]()
    surface = registered["surface"][0](nsd_tolerance_mm=2.0)
    assert isinstance(overlap, Metric) and isinstance(surface, Metric)
    assert overlap.names == ("dice", "iou")
    assert surface.names == ("hd95", "hd", "assd", "masd", "nsd") and surface.nsd_tolerance_mm == 2.0
    assert registered["surface"][1]["params"]["nsd_tolerance_mm"].default == 1.0

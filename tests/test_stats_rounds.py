"""`--round N|final` in stats, gate, leaderboard and report, on a database whose rows are written by hand.

Dataset knee (one label, 8 subjects i = 0..7); prompter "clicks" has rounds
0..2, prompter "box" round 0 only. Subject Dice:
  clicks, model a: 0.70 + 0.10 r + 0.01 i   (round 2: 0.90 .. 0.97, so noc_90 = 2)
  clicks, model b: 0.60 + 0.05 r + 0.01 i   (never reaches 0.9, so noc_90 = K + 1 = 3)
  box,    model a: 0.50 + 0.01 i;  model b: 0.40 + 0.01 i
Means over i of 0.01 i = 0.035.
"""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from mskbench.cli.main import main
from mskbench.stats import data
from mskbench.stats.curves import round_curves
from mskbench.store import RowBuffer, Store, to_json, utcnow

SUBJECTS = [f"s{i}" for i in range(8)]
CLICKS = {"a": (0.70, 0.10), "b": (0.60, 0.05)}
BOX = {"a": 0.50, "b": 0.40}
K = 2


def clicks_dice(model: str, r: int, i: int) -> float:
    start, step = CLICKS[model]
    return round(start + step * r + 0.01 * i, 6)  # 0.7 + 0.2 is 0.8999999999999999 in floats


def _metric(buf: RowBuffer, cell: str, subject: str, r: int, metric: str, value: float) -> None:
    buf.add("subject_metrics", run_id="run-1", cell_id=cell, subject_id=subject, round=r, label=1, label_name="femur",
            case_state="hit", metric=metric, value=value, substituted=False, slice_mean=value, n_slices=4)


def _biomarker(buf: RowBuffer, cell: str, subject: str, source: str, r: int | None, value: float) -> None:
    buf.add("biomarkers", run_id="run-1", cell_id=cell, subject_id=subject, structure="femur", biomarker="volume",
            method="voxel_count", source=source, instance=0, value=value, unit="ml", round=r)


def write_rounds_db(path) -> str:
    """The database of the module docstring; biomarker prediction = reference + 1 + r (clicks) or + 5 (box),
    plus a +-0.01 wobble so the agreement statistics are defined."""
    store = Store(path)
    buf = RowBuffer()
    buf.add("runs", run_id="run-1", suite_name="rounds", suite_hash="h", suite_path="s.toml", config=to_json({}),
            manifest=to_json({}), started_at=utcnow(), finished_at=utcnow(), status="finished")
    for model in ("a", "b"):
        for prompter in ("clicks", "box"):
            cell = f"knee|{model}|{prompter}|0"
            buf.add("cells", run_id="run-1", cell_id=cell, dataset="knee", model=model, prompter=prompter, seed=0,
                    dataset_plugin="phantom", model_plugin=model, prompter_plugin=prompter, params=to_json({}),
                    status="done", skip_reason=None)
            for i, subject in enumerate(SUBJECTS):
                reference, wobble = 10.0 + i, 0.01 * ((7 * i) % 3 - 1)
                _biomarker(buf, cell, subject, "reference", None, reference)
                if prompter == "box":
                    _metric(buf, cell, subject, 0, "dice", BOX[model] + 0.01 * i)
                    _biomarker(buf, cell, subject, "prediction", 0, reference + 5.0 + wobble)
                    continue
                dice = [clicks_dice(model, r, i) for r in range(K + 1)]
                for r, value in enumerate(dice):
                    _metric(buf, cell, subject, r, "dice", value)
                    _biomarker(buf, cell, subject, "prediction", r, reference + 1.0 + r + wobble)
                _metric(buf, cell, subject, K, "final_dsc", dice[-1])
                _metric(buf, cell, subject, K, "noc_90", float(next((r for r, d in enumerate(dice) if d >= 0.9), K + 1)))
                _metric(buf, cell, subject, K, "dsc_auc", float(np.trapezoid(dice[1:]) / (K - 1)))
                buf.add("timings", run_id="run-1", cell_id=cell, subject_id=subject, round=1, slice_index=-1,
                        stage="refine", seconds=0.5, peak_memory_mb=1.0)
    store.write(buf)
    store.close()
    return str(path)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return write_rounds_db(tmp_path_factory.mktemp("rounds") / "rounds.duckdb")


def stats_json(db, capsys, *extra) -> dict:
    assert main(["stats", "--db", db, "--no-write", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def mean_of(payload: dict, model: str, prompter: str, metric: str = "dice") -> float:
    (row,) = [r for r in payload["summary"]
              if (r["model"], r["prompter"], r["metric"]) == (model, prompter, metric)]
    return row["mean"]


def test_round_zero_and_final_read_those_rounds(db, capsys):
    final = stats_json(db, capsys)
    assert final["settings"]["round"] == "final"
    assert mean_of(final, "a", "clicks") == pytest.approx(0.90 + 0.035)
    assert mean_of(final, "b", "clicks") == pytest.approx(0.70 + 0.035)
    assert mean_of(final, "a", "box") == pytest.approx(0.50 + 0.035)  # a one-shot cell's final round is round 0
    first = stats_json(db, capsys, "--round", "0")
    assert first["settings"]["round"] == 0
    assert mean_of(first, "a", "clicks") == pytest.approx(0.70 + 0.035)
    assert mean_of(first, "a", "box") == pytest.approx(0.50 + 0.035)
    assert not any(r["metric"] == "noc_90" for r in first["summary"])  # whole-protocol metrics: final only
    assert any(r["metric"] == "noc_90" for r in final["summary"])


def test_a_round_a_cell_lacks_leaves_it_out_with_one_warning(db, capsys, caplog):
    assert main(["stats", "--db", db, "--no-write", "--json", "--round", "1"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert {(r["model"], r["prompter"]) for r in payload["summary"]} == {("a", "clicks"), ("b", "clicks")}
    assert mean_of(payload, "b", "clicks") == pytest.approx(0.65 + 0.035)
    # the box cells lack round 1 for metrics and for biomarkers; only the metrics warn (no second line per cell)
    assert sorted(r.getMessage() for r in caplog.records if r.levelname == "WARNING") == [
        "--round 1: left out cell knee / a / box (its rounds: 0)",
        "--round 1: left out cell knee / b / box (its rounds: 0)"]


@pytest.mark.parametrize("args, expected", [
    (["--round", "3"], "--round 3: no cell has round 3; this database holds round(s) 0, 1, 2"),
    (["--round", "-1"], "--round -1: expected 'final' or a round number"),
    (["--round", "1.5"], "--round 1.5: expected 'final' or a round number"),
    (["--round", "1", "--metric", "dsc_auc"], "--metric dsc_auc: summarises every round of the interaction, so it "
                                              "has no value at --round 1; use --round final"),
])
def test_round_errors_are_one_line(db, capsys, args, expected):
    assert main(["stats", "--db", db, "--no-write", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {expected}"), err


def test_noc_is_lower_is_better_in_comparison_and_ranking(db, capsys):
    payload = stats_json(db, capsys, "--metric", "noc_90")
    (pair,) = [p for p in payload["pairwise"] if p["structure"] == "femur"]
    assert pair["median_diff"] == pytest.approx(-1.0) and pair["better"] == "a"  # a: 2 rounds, b: 3
    ranks = {r["model"]: r["rank"] for r in payload["ranking"]}
    assert ranks == {"a": 1, "b": 2}
    auc = stats_json(db, capsys, "--metric", "dsc_auc")  # a: (0.8 + 0.9) / 2 + 0.01 i
    assert mean_of(auc, "a", "clicks", "dsc_auc") == pytest.approx(0.85 + 0.035)


def gate(db, baseline, candidate, *extra):
    return main(["gate", "--db", db, "--baseline", baseline, "--candidate", candidate, "--prompter", "clicks",
                 *extra])


def test_gate_on_noc_and_on_a_chosen_round(db, capsys):
    assert gate(db, "b", "a", "--metric", "noc_90") == 0  # fewer rounds needed: promote
    assert "round=final" in capsys.readouterr().out
    assert gate(db, "a", "b", "--metric", "noc_90") == 1
    capsys.readouterr()
    # at round 0 b is 0.10 behind a; at round 0 with the box prompter the same
    assert gate(db, "a", "b", "--round", "0", "--json") == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["round"] == 0
    assert payload["checks"][0]["mean_diff"] == pytest.approx(-0.10)
    assert gate(db, "a", "b", "--round", "2", "--metric", "noc_90") == 2


def close(values, expected) -> bool:
    return bool(np.allclose(values, expected, atol=0.011))


def test_biomarker_pairs_follow_the_round(db):
    con = data.open_results(db)
    try:
        final, _ = data.biomarker_pairs(con)
        first, _ = data.biomarker_pairs(con, 0)
        second, unpaired = data.biomarker_pairs(con, 1)
    finally:
        con.close()
    bias = lambda pairs, p: (pairs[pairs["prompter"] == p]["prediction"] - pairs[pairs["prompter"] == p]["reference"])
    assert close(bias(final, "clicks"), 1.0 + K) and close(bias(first, "clicks"), 1.0)
    assert close(bias(final, "box"), 5.0) and close(bias(first, "box"), 5.0)
    assert close(bias(second, "clicks"), 2.0) and bias(second, "box").empty
    assert unpaired.empty  # the box cells' references are not counted as unpaired: the cell is left out whole
    assert len(final) == len(first) == 2 * 2 * len(SUBJECTS)  # one reference per prediction, never per round


def test_a_prediction_without_a_round_reads_as_the_final_round(tmp_path):
    """Databases from before biomarkers.round: predictions were measured on the final round."""
    path = write_rounds_db(tmp_path / "old.duckdb")
    con = duckdb.connect(path)
    con.execute("DELETE FROM biomarkers WHERE source = 'prediction' AND round < 2 AND cell_id LIKE '%clicks%'")
    con.execute("ALTER TABLE biomarkers DROP COLUMN round")
    con.close()
    con = data.open_results(path)  # read-only: the column is missing altogether
    try:
        final, _ = data.biomarker_pairs(con)
        second, _ = data.biomarker_pairs(con, 2)
        first, _ = data.biomarker_pairs(con, 0)
    finally:
        con.close()
    diff = final["prediction"] - final["reference"]
    assert close(diff[final["prompter"] == "clicks"], 3.0) and close(diff[final["prompter"] == "box"], 5.0)
    assert len(second) == 2 * len(SUBJECTS) and set(second["prompter"]) == {"clicks"}
    assert set(first["prompter"]) == {"box"}
    with Store.open_for_writing(path):  # the upgrade adds the column as NULL, not as round 0
        pass
    con = duckdb.connect(path, read_only=True)
    assert con.execute("SELECT count(*) FROM biomarkers WHERE round IS NOT NULL").fetchone()[0] == 0
    con.close()


def test_leaderboard_ranks_noc_lower_first_and_names_the_round(db, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["leaderboard", "--db", db, "--out", str(out), "--metric", "noc_90"]) == 0
    index = (out / "index.html").read_text()
    assert "noc_90 (lower is better) at the final round" in index
    row = index[index.index("<tbody>"):]
    assert row.index("<td>a</td>") < row.index("</tr>")  # the only board's leader is a
    assert main(["leaderboard", "--db", db, "--out", str(out), "--metric", "noc_90", "--round", "1"]) == 2


def test_report_has_the_interaction_section_with_curves_summaries_and_time(db, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["report", "--db", db, "--out", str(out), "--n-boot", "200", "--round", "0"]) == 0
    text = out.read_text()
    assert "round 0 of each cell (--round 0)" in text
    section = text[text.index('<section id="interaction-'):]
    section = section[:section.index("</section>")]
    assert section.count("<figure>") == 1  # one (dataset, prompter) with rounds: knee / clicks
    assert 'data-sort="8" class="num">8</td>' in section  # curves and time: 8 subjects
    from mskbench.report.interaction import interaction_curves, protocol_summary, round_timing
    from mskbench.stats.analysis import StatsSettings

    con = data.open_results(db)
    try:
        curves = interaction_curves(con, StatsSettings(n_boot=200))
        summary = protocol_summary(con, curves).set_index("model")
        timing = round_timing(con)
    finally:
        con.close()
    a = curves[curves["model"] == "a"]
    assert a["mean"].tolist() == pytest.approx([0.735, 0.835, 0.935])
    assert summary.loc["a", "dsc_auc"] == pytest.approx(0.885) and summary.loc["b", "dsc_auc"] == pytest.approx(0.71)
    assert summary.loc["a", "final_dsc"] == pytest.approx(0.935) and summary.loc["b", "final_dsc"] == pytest.approx(0.735)
    assert summary.loc["a", "noc_90"] == 2 and summary.loc["b", "noc_90"] == 3
    assert timing[["model", "round", "mean_seconds"]].values.tolist() == [["a", 1, 0.5], ["b", 1, 0.5]]


def test_a_one_shot_database_has_no_interaction_section(tmp_path):
    from stats_fixtures import plant

    con = data.open_results(plant(tmp_path / "one_shot.duckdb", datasets={"knee": 6}))
    try:
        from mskbench.report.report import build_report
        from mskbench.stats.analysis import StatsSettings

        text = build_report(con, StatsSettings(n_boot=100))
    finally:
        con.close()
    assert 'id="interaction"' not in text and 'href="#interaction"' not in text


def curve_frame(values: dict[str, list[float]], model: str = "m") -> pd.DataFrame:
    """Per-round subject rows (one label) as subject_metric_rounds returns them."""
    return pd.DataFrame([
        {"dataset": "d", "model": model, "prompter": "p", "subject_id": s, "structure": "femur", "metric": "dice",
         "round": r, "value": v, "excluded": False, "substituted": False, "n_seeds": 1}
        for s, series in values.items() for r, v in enumerate(series)])


def rng_for(key):
    return np.random.default_rng(0)


def test_curve_means_and_band_by_hand():
    # two subjects: a resample holds both copies of one subject with probability 1/2, so the 2.5% and 97.5%
    # percentiles of the resampled mean are the two subjects' own values
    curves = round_curves(curve_frame({"s1": [0.5, 0.7, 0.8], "s2": [0.7, 0.9, 0.9]}), rng_for, 2000)
    assert curves["round"].tolist() == [0, 1, 2]
    assert curves["mean"].tolist() == pytest.approx([0.6, 0.8, 0.85])
    assert curves["ci_low"].tolist() == pytest.approx([0.5, 0.7, 0.8])
    assert curves["ci_high"].tolist() == pytest.approx([0.7, 0.9, 0.9])
    # a subject missing a round is left out of every round, so each point averages the same subjects
    gap = round_curves(curve_frame({"s1": [0.5, 0.7], "s2": [0.7, np.nan], "s3": [0.6, 0.8]}), rng_for, 500)
    assert gap["mean"].tolist() == pytest.approx([0.55, 0.75]) and set(gap["n_subjects"]) == {2}
    # one-shot cells (round 0 only) draw no curve
    assert round_curves(curve_frame({"s1": [0.5], "s2": [0.6]}), rng_for, 100).empty


def test_curve_band_matches_scipy_percentile_bootstrap():
    values = np.random.default_rng(7).uniform(0.5, 0.95, size=(30, 2))
    curves = round_curves(curve_frame({f"s{i}": list(v) for i, v in enumerate(values)}), rng_for, 20000)
    for r in (0, 1):
        expected = scipy_stats.bootstrap((values[:, r],), np.mean, n_resamples=20000, method="percentile",
                                         random_state=1).confidence_interval
        row = curves[curves["round"] == r].iloc[0]
        assert row["ci_low"] == pytest.approx(expected.low, abs=0.004)
        assert row["ci_high"] == pytest.approx(expected.high, abs=0.004)

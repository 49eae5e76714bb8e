"""`mskbench stats` on planted databases: tables written, JSON, bad input as one line + exit 2."""

import json

import duckdb
import pytest

import mskbench.cli.analysis  # noqa: F401  (registers stats/report/leaderboard/gate on the app)
from mskbench.cli.main import main
from stats_fixtures import empty_db, plant


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    path = tmp_path_factory.mktemp("stats") / "results.duckdb"
    return plant(path, datasets={"knee": 16, "spine": 12}, models={"sam": 0.0, "medsam": -0.05, "box": -0.2},
                 seeds=(0, 1), nan_subjects={"box": ["knee-003"]}, missing_subjects={"sam": ["spine-002"]},
                 biomarker_bias={"box": 0.4})


def test_stats_writes_tables_and_prints_digest(planted, capsys):
    assert main(["stats", "--db", str(planted), "--n-boot", "200"]) == 0
    out = capsys.readouterr().out
    assert "knee / gt_box / dice / mean over labels" in out and "sam better" in out
    con = duckdb.connect(str(planted), read_only=True)
    tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"stats_summary", "stats_friedman", "stats_pairwise", "stats_ranking", "stats_agreement",
            "stats_mixed_effects", "stats_mixed_status", "stats_vif", "stats_settings", "stats_gp_regression",
            "stats_prompter_pairs", "stats_size_strata", "stats_size_tests"} <= tables
    icc = con.execute("SELECT icc, icc_lmm, icc_lmm_n_boot FROM stats_agreement WHERE dataset = 'knee' "
                      "AND model = 'sam'").fetchone()
    assert icc[1] == pytest.approx(max(icc[0], 0.0), abs=1e-4) and icc[2] == 10_000
    knee = con.execute("SELECT n_subjects, dropped_unpaired FROM stats_friedman WHERE dataset = 'knee' "
                       "AND metric = 'dice' AND structure = 'mean over labels'").fetchone()
    assert knee == (15, 1)  # knee-003 is NaN for box
    spine = con.execute("SELECT dropped_unpaired FROM stats_friedman WHERE dataset = 'spine' AND metric = 'dice' "
                        "AND structure = 'mean over labels'").fetchone()
    assert spine == (1,)  # spine-002 skipped for sam
    skipped = con.execute("SELECT skipped, excluded FROM stats_summary WHERE dataset = 'spine' AND model = 'sam' "
                          "AND metric = 'dice' AND structure = 'mean over labels'").fetchone()
    assert skipped == (1, 0)
    bias = con.execute("SELECT bias, status FROM stats_agreement WHERE dataset = 'knee' AND model = 'box'").fetchone()
    assert bias[1] == "computed" and bias[0] == pytest.approx(0.4, abs=0.1)
    con.close()


def test_stats_json_is_reproducible_from_the_seed(planted, capsys):
    assert main(["stats", "--db", str(planted), "--json", "--no-write", "--n-boot", "200", "--seed", "7"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["stats", "--db", str(planted), "--json", "--no-write", "--n-boot", "200", "--seed", "7"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert first == second
    assert first["settings"]["seed"] == 7
    assert {row["model"] for row in first["ranking"]} == {"sam", "medsam", "box"}


def test_too_few_subjects_reported_not_computed(tmp_path, capsys):
    db = plant(tmp_path / "small.duckdb", datasets={"knee": 4}, models={"a": 0.0, "b": 0.0, "c": -0.1})
    assert main(["stats", "--db", str(db), "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "not computed (4 paired subject(s); at least 6 needed)" in out


@pytest.mark.parametrize("args, message", [
    (["--model", "medsm"], "--model medsm: not in the database (did you mean 'medsam'?)"),
    (["--metric", "dise"], "--metric dise: not in the database (did you mean 'dice'?)"),
])
def test_bad_names_get_suggestions(planted, capsys, args, message):
    assert main(["stats", "--db", str(planted), "--no-write", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1


def test_database_without_tables_and_missing_file(tmp_path, capsys):
    assert main(["stats", "--db", str(empty_db(tmp_path / "other.duckdb"))]) == 2
    err = capsys.readouterr().err.strip()
    assert "not an mskbench results database (missing table cells, subject_metrics)" in err
    assert len(err.splitlines()) == 1
    assert main(["stats", "--db", str(tmp_path / "nope.duckdb")]) == 2
    assert "no such results database" in capsys.readouterr().err

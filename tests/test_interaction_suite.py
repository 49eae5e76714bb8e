"""Interactive suites end to end: plan errors naming both plugins, validation of clicks params,
per-round rows from a run, replay of the initial prompts, the shipped suite."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from mskbench.cli.main import main

SUITE = """
[suite]
name = "interactive_test"
seed = 3
device = "cpu"

[[datasets]]
name = "spine"
plugin = "phantom"
params = {{ anatomy = "spine", subjects = 1, seed = 1, pixel_spacing_min = 1.6, pixel_spacing_max = 1.7 }}
split = "all"
labels = ["L3", "disc_L3_L4"]

{models}

[[prompters]]
name = "clicks"
plugin = "clicks"
params = {{ {clicks} }}

[metrics]
names = ["dice", "nsd"]

[biomarkers]
{biomarkers}
"""
RW = '[[models]]\nname = "rw"\nplugin = "random_walker_clicks"\nper_slice = true\n'
RG = '[[models]]\nname = "rg"\nplugin = "region_growing_3d"\n'


def write(tmp_path: Path, models: str = RW + RG, clicks: str = "rounds = 2", biomarkers: str = "enabled = false") -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(textwrap.dedent(SUITE.format(models=models, clicks=clicks, biomarkers=biomarkers)))
    return path


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("models, clicks, expected", [
    ('[[models]]\nname = "otsu"\nplugin = "otsu_box"\n', "initial = \"box\"",
     "model 'otsu' cannot take prompter 'clicks': clicks need an interactive model that takes point prompts"),
    ('[[models]]\nname = "rw"\nplugin = "random_walker_clicks"\n', "initial = \"box3d\"",
     "model 'rw' cannot take prompter 'clicks': 'rw' is a slice model and 'clicks' makes box3d prompts; set per_slice = true"),
    (RG, "space = \"slice\"", "model 'rg' cannot take prompter 'clicks': a volume model takes clicks placed in the volume"),
    (RW, "rounds = 51", "rounds: 51 is above the maximum 50"),
    (RW, "placement = \"nearest\"", "placement: 'nearest' is not one of 'max_edt_largest_error', 'component_centroid', 'random_error'"),
])
def test_plan_errors_are_one_line_naming_model_and_prompter(tmp_path, capsys, models, clicks, expected):
    assert main(["validate", str(write(tmp_path, models, clicks))]) == 2
    assert expected in error_line(capsys)


def test_an_interactive_model_without_points_is_not_called_non_interactive():
    from mskbench.interaction.clicks import ClicksPrompter
    from mskbench.model_kinds import ModelKind, pair_problem

    clicks = ClicksPrompter(initial="box", space="slice")
    boxes_only = pair_problem("m", ModelKind("slice", True, frozenset({"logits"})), frozenset({"box"}), False, "c", clicks)
    assert boxes_only == ("model 'm' cannot take prompter 'c': clicks need an interactive model that takes point "
                          "prompts, and 'm' takes no point prompts; pair 'c' with an interactive model that takes points")
    automatic = pair_problem("m", ModelKind("slice"), frozenset({"box", "point"}), False, "c", clicks)
    assert "and 'm' is a non-interactive slice model;" in automatic


def rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_run_records_every_round_and_replays_the_initial_prompts(tmp_path, capsys):
    db = tmp_path / "r.duckdb"
    assert main(["run", str(write(tmp_path)), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "final_dsc" in out and "dsc_auc" in out
    rounds = rows(db, "SELECT DISTINCT c.model, m.round FROM subject_metrics m JOIN cells c USING (cell_id) "
                      "WHERE metric = 'dice' ORDER BY ALL")
    assert rounds == [("rg", 0), ("rg", 1), ("rg", 2), ("rw", 0), ("rw", 1), ("rw", 2)]
    derived = rows(db, "SELECT DISTINCT metric, round FROM subject_metrics WHERE metric NOT IN ('dice', 'nsd') ORDER BY 1")
    assert derived == [(m, 2) for m in ("dsc_auc", "final_dsc", "final_nsd", "noc_80", "noc_90", "nsd_auc")]
    assert rows(db, "SELECT count(*) FROM slice_metrics WHERE round = 2")[0][0] > 0
    assert rows(db, "SELECT DISTINCT kind FROM prompts WHERE round = 0") == [("box3d",)]
    assert rows(db, "SELECT count(*) FROM timings WHERE stage = 'refine' AND round = 2")[0][0] > 0
    # feedback = "logits" (the default) asked; what each model really got back is recorded with its cell
    used = rows(db, "SELECT model, params->>'$.feedback_used' FROM cells ORDER BY 1")
    assert used == [("rg", "none"), ("rw", "mask")]

    [(run_id,)] = rows(db, "SELECT run_id FROM runs")
    replay_db = tmp_path / "replay.duckdb"
    assert main(["run", str(write(tmp_path)), "--db", str(replay_db), "--replay-prompts", run_id]) == 2  # other db
    capsys.readouterr()
    assert main(["run", str(write(tmp_path)), "--db", str(db), "--replay-prompts", run_id]) == 0
    query = ("SELECT c.model, p.subject_id, p.round, p.slice_index, p.label, p.kind, p.x_min, p.y_min, p.x_max, "
             "p.y_max, p.points, p.point_labels, p.first_slice, p.last_slice FROM prompts p JOIN cells c "
             "USING (run_id, cell_id) WHERE p.run_id = ? ORDER BY ALL")
    con = duckdb.connect(str(db), read_only=True)
    runs = [r[0] for r in con.execute("SELECT run_id FROM runs ORDER BY started_at").fetchall()]
    first, second = (con.execute(query, [r]).fetchall() for r in runs)
    con.close()
    assert first == second  # same initial prompts, and (deterministic models) the same clicks


@pytest.mark.parametrize("setting, measured", [('rounds = "all"', [0, 1, 2]), ("", [2])])
def test_biomarkers_on_every_round_when_asked(tmp_path, capsys, setting, measured):
    db = tmp_path / "b.duckdb"
    assert main(["run", str(write(tmp_path, RG, biomarkers=setting)), "--db", str(db)]) == 0
    predictions = rows(db, "SELECT round, structure, biomarker, instance, count(*) FROM biomarkers "
                           "WHERE source = 'prediction' GROUP BY ALL ORDER BY ALL")
    assert sorted({r[0] for r in predictions}) == measured
    assert {r[4] for r in predictions} == {1}  # one row per (round, structure, biomarker, instance)
    per_round = {r: {p[1:4] for p in predictions if p[0] == r} for r in measured}
    assert all(keys == per_round[measured[-1]] and keys for keys in per_round.values())
    references = rows(db, "SELECT round, count(*), count(DISTINCT (structure, biomarker, instance)) FROM biomarkers "
                          "WHERE source = 'reference' GROUP BY ALL")
    assert len(references) == 1 and references[0][0] is None and references[0][1] == references[0][2]


def test_the_shipped_interactive_suite_validates(capsys):
    suite = Path(__file__).resolve().parents[1] / "suites" / "interactive.toml"
    assert main(["validate", str(suite)]) == 0

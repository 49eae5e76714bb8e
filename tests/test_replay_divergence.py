"""Replayed runs report how their clicks diverge from the replayed run's (``--replay-prompts``)."""

from __future__ import annotations

import duckdb

from mskbench.cli.main import main
from mskbench.replay_divergence import click_divergence, compare_subject
from mskbench.store import Store
from tests.test_interaction_suite import RG, write


def test_compare_subject_on_hand_made_clicks():
    a, b, c = (0, 1, "[[1, 2]]", "[1]"), (0, 1, "[[3, 4]]", "[0]"), (5, 2, "[[0, 0]]", "[1]")
    same = compare_subject("s", {1: [a], 2: [b, c]}, {1: [a], 2: [b, c]})
    assert (same.first_round, same.identical, same.total) == (None, 3, 3)
    # round 2 differs in its second click, round 3 exists in the new run only
    moved = compare_subject("s", {1: [a], 2: [b, a], 3: [c]}, {1: [a], 2: [b, c]})
    assert (moved.first_round, moved.identical, moved.total) == (2, 2, 4)
    # a round that lost its clicks (the label was already right) differs too
    lost = compare_subject("s", {1: [a]}, {1: [a], 2: [b]})
    assert (lost.first_round, lost.identical, lost.total) == (2, 1, 2)


def _run(tmp_path, db, clicks, replay=None, name="suite.toml", models=RG):
    suite = write(tmp_path, models=models, clicks=clicks)
    suite = suite.rename(tmp_path / name)
    args = ["run", str(suite), "--db", str(db)] + (["--replay-prompts", replay] if replay else [])
    assert main(args) == 0
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()[0]
    finally:
        con.close()


def _divergence(db, run_id, replayed):
    with Store.open_for_reading(db) as store:
        [cell] = click_divergence(store, run_id, replayed)
    [subject] = cell.subjects
    return cell, subject


def test_same_deterministic_model_replays_identical_clicks(tmp_path, capsys):
    db = tmp_path / "r.duckdb"
    first = _run(tmp_path, db, "rounds = 2")
    capsys.readouterr()
    second = _run(tmp_path, db, "rounds = 2", replay=first)
    assert "clicks × rg (spine, seed 3): clicks identical in 1/1 subjects" in capsys.readouterr().out
    cell, subject = _divergence(db, second, first)
    assert subject.first_round is None and subject.identical == subject.total > 0


def test_more_rounds_diverge_at_the_first_new_round(tmp_path):
    db = tmp_path / "r.duckdb"
    first = _run(tmp_path, db, "rounds = 2")
    second = _run(tmp_path, db, "rounds = 3", replay=first, name="three.toml")
    con = duckdb.connect(str(db), read_only=True)
    per_round = dict(con.execute("SELECT round, count(*) FROM prompts WHERE run_id = ? AND round > 0 GROUP BY round",
                                 [second]).fetchall())
    con.close()
    _, subject = _divergence(db, second, first)
    assert per_round[3] > 0  # the third round clicked, so rounds 1 and 2 match and round 3 is new
    assert (subject.first_round, subject.identical, subject.total) == (3, per_round[1] + per_round[2], sum(per_round.values()))


def test_a_different_model_parameter_is_reported_as_divergence(tmp_path, capsys):
    # point_radius only shapes how clicks are grown: round 0 (the replayed box3d) predicts the same, so the
    # round-1 clicks are the same; round 1's prediction differs, and so do the round-2 clicks placed from it
    db = tmp_path / "r.duckdb"
    first = _run(tmp_path, db, "rounds = 2")
    capsys.readouterr()
    wide = RG + "params = { point_radius = 5 }\n"
    second = _run(tmp_path, db, "rounds = 2", replay=first, name="wide.toml", models=wide)
    out = capsys.readouterr().out
    _, subject = _divergence(db, second, first)
    assert subject.first_round == 2 and 0 < subject.identical < subject.total
    assert "clicks × rg (spine, seed 3): clicks diverge from round 2 in 1/1 subjects" in out

"""End-to-end runs on the phantom with the weight-free baselines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pytest

from mskbench.cli.main import main

SUITE = """
[suite]
name = "runner_test"
seed = 11
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = {subjects}, seed = 5 }}
split = "all"

{models}

[[prompters]]
name = "gt_box"
plugin = "gt_box"

[[prompters]]
name = "jitter"
plugin = "jitter_box"
params = {{ mode = "symmetric", max_shift = {shift} }}

[metrics]
names = ["dice", "iou", "hd95"]
"""

BOX_FILL = '[[models]]\nname = "box_fill"\nplugin = "box_fill"\n'
OTSU = '[[models]]\nname = "otsu_box"\nplugin = "otsu_box"\n'


def write_suite(tmp_path: Path, name: str = "suite.toml", subjects: int = 2, models: str = BOX_FILL + OTSU, shift: int = 6) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(SUITE.format(subjects=subjects, models=models, shift=shift)))
    return path


def table(db: Path, sql: str) -> list[tuple]:
    """Rows of a query; NaN becomes 'nan' so rows compare equal (NaN != NaN)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    return [tuple("nan" if isinstance(v, float) and v != v else v for v in row) for row in rows]


def test_run_fills_every_table_and_prints_summary(tmp_path, capsys):
    db = tmp_path / "r.duckdb"
    assert main(["run", str(write_suite(tmp_path)), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "mean subject Dice" in out and "box_fill" in out
    for name in ("runs", "cells", "subjects", "prompts", "slice_metrics", "subject_metrics", "biomarkers", "timings", "subject_status"):
        assert table(db, f"SELECT count(*) FROM {name}")[0][0] > 0, name
    assert table(db, "SELECT status FROM runs") == [("finished",)]
    assert table(db, "SELECT count(*) FROM cells WHERE status = 'done'")[0][0] == 4
    assert {r[0] for r in table(db, "SELECT DISTINCT metric FROM slice_metrics")} == {"dice", "iou", "hd95"}
    sources = {row[0] for row in table(db, "SELECT DISTINCT source FROM biomarkers")}
    assert sources == {"reference", "prediction"}


def test_box_fill_dice_matches_independent_computation(tmp_path):
    """Dice of the filled tight box = 2|R| / (|R| + |box|), recomputed here from the phantom."""
    from mskbench.data.preprocess import PreprocessConfig, prepare_subject, take_slice
    from mskbench_builtins.datasets.phantom import PhantomDataset

    db = tmp_path / "r.duckdb"
    assert main(["run", str(write_suite(tmp_path, subjects=1, models=BOX_FILL)), "--db", str(db)]) == 0
    rows = table(db, """
        SELECT m.subject_id, m.slice_index, m.label, m.value FROM slice_metrics m JOIN cells c USING (cell_id)
        WHERE c.prompter = 'gt_box' AND m.metric = 'dice' AND m.case_state = 'hit'""")
    assert len(rows) > 20
    dataset = PhantomDataset(anatomy="knee", subjects=1, seed=5)
    subject = dataset.load(rows[0][0])
    prepared = prepare_subject(subject, dataset.slice_axis, PreprocessConfig())
    for _, k, label, value in rows:
        ref = take_slice(prepared.labels, prepared.axis, k) == label
        ys, xs = np.nonzero(ref)
        box_area = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        expected = 2 * ref.sum() / (ref.sum() + box_area)
        assert value == pytest.approx(expected, abs=1e-9)


def _run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mskbench", "-v", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs,
    )


COMPARE = {
    "prompts": "subject_id, slice_index, prompt_index, label, kind, x_min, y_min, x_max, y_max, t.seed AS prompt_seed",
    "slice_metrics": "subject_id, slice_index, label, case_state, metric, value, substituted",
    "subject_metrics": "subject_id, label, case_state, metric, value, slice_mean",
    "biomarkers": "subject_id, structure, biomarker, source, instance, value",
    "subject_status": "subject_id, t.status",
}


def snapshot(db: Path) -> dict[str, list[tuple]]:
    return {
        name: table(db, f"SELECT c.dataset, c.model, c.prompter, {columns} FROM {name} t JOIN cells c USING (run_id, cell_id) ORDER BY ALL")
        for name, columns in COMPARE.items()
    }


@pytest.mark.slow
def test_killed_run_resumes_to_identical_tables(tmp_path):
    suite = write_suite(tmp_path, subjects=4)
    reference_db, killed_db = tmp_path / "ref.duckdb", tmp_path / "killed.duckdb"
    assert main(["run", str(suite), "--db", str(reference_db)]) == 0

    proc = _run_cli(["run", str(suite), "--db", str(killed_db)])
    committed = 0
    for line in proc.stderr:
        committed += "committed subject" in line
        if committed == 3:  # kill in the middle of the second subject
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = table(killed_db, "SELECT count(*) FROM subject_status")[0][0]
    assert 3 <= partial < 16
    assert table(killed_db, "SELECT status FROM runs") == [("running",)]

    assert main(["run", str(suite), "--db", str(killed_db), "--resume"]) == 0
    assert table(killed_db, "SELECT count(DISTINCT run_id), min(status) FROM runs") == [(1, "finished")]
    assert snapshot(killed_db) == snapshot(reference_db)


def test_replay_prompts_reuses_recorded_prompts(tmp_path):
    db = tmp_path / "r.duckdb"
    assert main(["run", str(write_suite(tmp_path, subjects=1, models=BOX_FILL)), "--db", str(db)]) == 0
    run_id = table(db, "SELECT run_id FROM runs")[0][0]
    # A different jitter would change the boxes; replay must ignore the prompter and reuse the records.
    changed = write_suite(tmp_path, "changed.toml", subjects=1, models=BOX_FILL, shift=30)
    assert main(["run", str(changed), "--db", str(db), "--replay-prompts", run_id]) == 0
    runs = [r[0] for r in table(db, "SELECT run_id FROM runs ORDER BY started_at")]
    per_run = [
        table(db, f"""SELECT c.prompter, m.subject_id, m.slice_index, m.label, m.metric, m.value
                      FROM slice_metrics m JOIN cells c USING (run_id, cell_id) WHERE m.run_id = '{r}' ORDER BY ALL""")
        for r in runs
    ]
    assert per_run[0] == per_run[1]
    fresh = tmp_path / "fresh.duckdb"
    assert main(["run", str(changed), "--db", str(fresh)]) == 0
    jitter_fresh = table(fresh, "SELECT x_min FROM prompts WHERE prompter = 'jitter' ORDER BY ALL")
    jitter_replayed = table(db, f"SELECT x_min FROM prompts WHERE prompter = 'jitter' AND run_id = '{runs[1]}' ORDER BY ALL")
    assert jitter_fresh != jitter_replayed


def test_replay_refuses_subjects_the_recorded_run_did_not_evaluate(tmp_path, capsys):
    db = tmp_path / "r.duckdb"
    suite = write_suite(tmp_path, subjects=2, models=BOX_FILL)
    assert main(["run", str(suite), "--db", str(db), "--limit-subjects", "1"]) == 0
    run_id = table(db, "SELECT run_id FROM runs")[0][0]
    assert main(["run", str(suite), "--db", str(db), "--replay-prompts", run_id]) == 2
    assert "did not evaluate subject" in capsys.readouterr().err


def test_prompts_do_not_depend_on_model_order(tmp_path):
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    assert main(["run", str(write_suite(tmp_path, "a.toml", subjects=1, models=BOX_FILL + OTSU)), "--db", str(a)]) == 0
    assert main(["run", str(write_suite(tmp_path, "b.toml", subjects=1, models=OTSU + BOX_FILL)), "--db", str(b)]) == 0
    assert snapshot(a)["prompts"] == snapshot(b)["prompts"]


def test_dry_run_counts_without_writing(tmp_path, capsys):
    db = tmp_path / "never.duckdb"
    assert main(["run", str(write_suite(tmp_path)), "--db", str(db), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "knee: 2 subjects" in out and "slices" in out and "4 cells" in out
    assert not db.exists()


def test_unwritable_db_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["run", str(write_suite(tmp_path)), "--db", str(blocker / "x.duckdb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "writable --db" in err[0]


def test_locked_db_is_one_line(tmp_path):
    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(db)!r}); print('ok', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        proc = subprocess.run([sys.executable, "-m", "mskbench", "run", str(write_suite(tmp_path)), "--db", str(db)],
                              capture_output=True, text=True)
        assert proc.returncode == 2
        assert "locked by another process" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        holder.kill()


def test_export_parquet(tmp_path):
    import pyarrow.parquet as pq

    db = tmp_path / "r.duckdb"
    assert main(["run", str(write_suite(tmp_path, subjects=1, models=BOX_FILL)), "--db", str(db)]) == 0
    out = tmp_path / "sm.parquet"
    assert main(["export", "--db", str(db), "--table", "subject_metrics", "--format", "parquet", "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == table(db, "SELECT count(*) FROM subject_metrics")[0][0]
    assert main(["export", "--db", str(db), "--table", "subject_metric", "--out", str(out)]) == 2

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


# --- a cell's rows do not depend on the other cells of the suite (issue 12) ----------------------------

CROSS_CELL_SUITE = """
[suite]
name = "cross_cell"
seed = 3
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = 2, seed = 8, pixel_spacing_min = 1.2, pixel_spacing_max = 1.2 }}
split = "all"

[[models]]
name = "batch_sensitive"
plugin = "batch_sensitive_test_model"
{prompters}
[metrics]
names = ["dice", "iou"]
"""

CROSS_CELL_PROMPTERS = {
    "A": 'plugin = "jitter_box"\nparams = { mode = "symmetric", max_shift = 4 }',
    "B": 'plugin = "gt_box"',
    "C": 'plugin = "jitter_box"\nparams = { mode = "outward", max_shift = 9 }',
}


class BatchSensitiveModel:
    """A box model whose decode depends on which prompts share the call, as a batched floating-point decoder's
    does (issue 12 saw one pixel flip), made large and certain: each mask is its box less the last
    ``len(prompts) // 4`` columns."""

    supported_prompts = frozenset({"box"})

    def encode(self, images):
        return [{"shape": image.shape} for image in images]

    def decode(self, embedding, prompts):
        masks = np.zeros((len(prompts), *embedding["shape"]), dtype=bool)
        trim = len(prompts) // 4
        for mask, p in zip(masks, prompts):
            x0, y0, x1, y1 = (int(round(v)) for v in p.box)
            mask[y0 : y1 + 1, x0 : max(x0, x1 + 1 - trim)] = True
        return masks

    def describe(self):
        return {"name": "batch_sensitive"}


@pytest.fixture
def batch_sensitive_model(monkeypatch):
    from mskbench.plugin_manager import PluginInfo, get_registry

    def factory(device, checkpoint):
        return BatchSensitiveModel()

    factory.supported_prompts = BatchSensitiveModel.supported_prompts
    info = PluginInfo(name="batch_sensitive_test_model", kind="model", factory=factory,
                      description="test model", version="0", distribution="tests")
    monkeypatch.setitem(get_registry().plugins, ("model", info.name), info)


def cross_cell_suite(tmp_path: Path, prompters: str) -> Path:
    blocks = "".join(f'\n[[prompters]]\nname = "{p}"\n{CROSS_CELL_PROMPTERS[p]}\n' for p in prompters)
    path = tmp_path / f"cross_{prompters}.toml"
    path.write_text(CROSS_CELL_SUITE.format(prompters=blocks))
    return path


def rows_of(db: Path, prompter: str) -> dict[str, list[tuple]]:
    return {name: [row for row in rows if row[2] == prompter] for name, rows in snapshot(db).items()}


def simulate_kill(db: Path, keep_for_first_subject: set[str]) -> None:
    """The state a run killed part-way leaves: the first subject committed for some cells only, the second not at all."""
    con = duckdb.connect(str(db))
    try:
        first, second = (r[0] for r in con.execute("SELECT DISTINCT subject_id FROM subjects ORDER BY 1").fetchall())
        cells = dict(con.execute("SELECT prompter, cell_id FROM cells").fetchall())
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.columns WHERE column_name = 'cell_id' "
            "INTERSECT SELECT table_name FROM information_schema.columns WHERE column_name = 'subject_id'").fetchall()]
        dropped = [cells[p] for p in cells if p not in keep_for_first_subject]
        for table in tables:
            con.execute(f"DELETE FROM {table} WHERE subject_id = ?", [second])
            con.execute(f"DELETE FROM {table} WHERE subject_id = ? AND cell_id IN (SELECT unnest(?))", [first, dropped])
        con.execute("DELETE FROM subjects WHERE subject_id = ?", [second])
        con.execute("UPDATE runs SET status = 'running'")
    finally:
        con.close()


def test_a_cells_rows_do_not_depend_on_the_other_cells_or_on_what_resume_had_pending(tmp_path, batch_sensitive_model):
    alone, together, resumed = tmp_path / "a.duckdb", tmp_path / "abc.duckdb", tmp_path / "resumed.duckdb"
    assert main(["run", str(cross_cell_suite(tmp_path, "A")), "--db", str(alone)]) == 0
    full_suite = cross_cell_suite(tmp_path, "ABC")
    assert main(["run", str(full_suite), "--db", str(together)]) == 0
    assert main(["run", str(full_suite), "--db", str(resumed)]) == 0
    simulate_kill(resumed, keep_for_first_subject={"B", "C"})  # A of subject 1 and all of subject 2 pending
    assert table(resumed, "SELECT count(*) FROM subject_status WHERE subject_id = (SELECT min(subject_id) FROM subjects)") == [(2,)]
    assert main(["run", str(full_suite), "--db", str(resumed), "--resume"]) == 0
    assert table(resumed, "SELECT count(DISTINCT run_id), min(status) FROM runs") == [(1, "finished")]

    reference = rows_of(alone, "A")
    assert len(reference["slice_metrics"]) > 50 and len({r[3] for r in reference["subject_status"]}) == 2
    assert rows_of(together, "A") == reference
    assert rows_of(resumed, "A") == reference
    assert rows_of(resumed, "B") == rows_of(together, "B")  # and the other cells are whole after the resume


def small_suite(tmp_path: Path, metrics: str) -> Path:
    """One low-resolution spine subject, box_fill with gt_box and jitter, no biomarkers: a run of about a second."""
    suite = tmp_path / "small.toml"
    suite.write_text(textwrap.dedent(SUITE.format(subjects=1, models=BOX_FILL, shift=6)).replace(
        'anatomy = "knee"', 'anatomy = "spine", pixel_spacing_min = 1.6, pixel_spacing_max = 1.7'
    ).replace('names = ["dice", "iou", "hd95"]', f'names = [{metrics}]\n\n[biomarkers]\nenabled = false'))
    return suite


def test_summary_shows_the_first_metric_when_dice_is_not_selected(tmp_path, capsys):
    assert main(["run", str(small_suite(tmp_path, '"iou", "hd95"')), "--db", str(tmp_path / "r.duckdb")]) == 0
    out = capsys.readouterr().out
    assert "mean subject iou" in out
    [row] = [line for line in out.splitlines() if "gt_box" in line]
    assert float(row.split("│")[5]) > 0.5  # the filled tight box's IoU, not "—"


#: the four tables as a release before per-round scoring made them (`git show 3d30700~1:mskbench/store.py`)
OLD_COLUMNS = {
    "prompts": "run_id VARCHAR, cell_id VARCHAR, subject_id VARCHAR, slice_index INTEGER, prompt_index INTEGER, "
               "label INTEGER, instance INTEGER, kind VARCHAR, x_min DOUBLE, y_min DOUBLE, x_max DOUBLE, y_max DOUBLE, "
               "points JSON, point_labels JSON, prompter VARCHAR, seed BIGINT, score DOUBLE, detector_class INTEGER, "
               "clipped BOOLEAN",
    "slice_metrics": "run_id VARCHAR, cell_id VARCHAR, subject_id VARCHAR, slice_index INTEGER, label INTEGER, "
                     "label_name VARCHAR, case_state VARCHAR, area_fraction DOUBLE, size_bin VARCHAR, metric VARCHAR, "
                     "value DOUBLE, substituted BOOLEAN",
    "subject_metrics": "run_id VARCHAR, cell_id VARCHAR, subject_id VARCHAR, label INTEGER, label_name VARCHAR, "
                       "case_state VARCHAR, metric VARCHAR, value DOUBLE, substituted BOOLEAN, slice_mean DOUBLE, "
                       "n_slices INTEGER",
    "timings": "run_id VARCHAR, cell_id VARCHAR, subject_id VARCHAR, slice_index INTEGER, stage VARCHAR, "
               "seconds DOUBLE, peak_memory_mb DOUBLE",
}


def test_database_from_before_rounds_resumes_and_replays(tmp_path):
    """An old database (no `round`, `first_slice`, `last_slice`) holding a killed run: resume finishes it to the
    same rows as a fresh run, with its old rows read as round 0, and replay reads its prompts."""
    from mskbench.store import TABLES

    suite = small_suite(tmp_path, '"dice"')
    fresh, old = tmp_path / "fresh.duckdb", tmp_path / "old.duckdb"
    assert main(["run", str(suite), "--db", str(fresh)]) == 0
    con = duckdb.connect(str(old))
    con.execute(f"ATTACH '{fresh}' AS fresh (READ_ONLY)")
    done = con.execute("SELECT cell_id FROM fresh.cells WHERE prompter = 'gt_box'").fetchone()[0]
    for name, columns in TABLES.items():  # the gt_box cell finished, the jitter cell pending
        declared = OLD_COLUMNS.get(name, ", ".join(f"{c} {t}" for c, t in columns))
        con.execute(f"CREATE TABLE {name} ({declared})")
        names = ", ".join(part.split()[0] for part in declared.split(", "))
        where = f"WHERE cell_id = '{done}'" if "cell_id" in names and name != "cells" else ""
        con.execute(f"INSERT INTO {name} SELECT {names} FROM fresh.{name} {where}")
    con.execute("UPDATE runs SET status = 'running', finished_at = NULL")
    con.close()

    assert main(["run", str(suite), "--db", str(old), "--resume"]) == 0
    assert table(old, "SELECT count(DISTINCT run_id), min(status) FROM runs") == [(1, "finished")]
    assert snapshot(old) == snapshot(fresh)
    for name in ("prompts", "slice_metrics", "subject_metrics", "timings"):
        assert table(old, f"SELECT DISTINCT round FROM {name}") == [(0,)], name
    # added since (issue 15): old rows and this CPU run's rows read peak GPU memory as NULL
    assert table(old, "SELECT count(*) FROM timings WHERE peak_gpu_memory_mb IS NOT NULL") == [(0,)]
    run_id = table(old, "SELECT run_id FROM runs")[0][0]
    assert main(["run", str(suite), "--db", str(old), "--replay-prompts", run_id]) == 0
    per_run = table(old, f"SELECT run_id = '{run_id}', subject_id, slice_index, label, metric, value FROM slice_metrics")
    replayed = sorted(row[1:] for row in per_run if not row[0])
    assert replayed == sorted(row[1:] for row in per_run if row[0]) and replayed

"""The `processes` and `ray` executors give the local executor's tables, survive dead workers, refuse bad options."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from executor_models import unpicklable_box_fill, watched_box_fill
from mskbench.cli.main import main
from mskbench.execution.subject_task import SubjectTask, WorkerState, run_subject_task
from mskbench.params import Param
from mskbench.plan import build_plan
from mskbench.plugin_manager import PluginInfo, get_registry
from mskbench.runner import RunOptions, Runner, run_plan
from mskbench.store import Store
from mskbench.suite import load_suite
from test_core_runner import BOX_FILL, OTSU, _run_cli, snapshot, table, write_suite

WATCHED = '[[models]]\nname = "watched"\nplugin = "watched_box_fill"\nparams = {{ {params} }}\n'


@pytest.fixture(autouse=True)
def test_models(monkeypatch):
    """Register the picklable test models; workers import them from tests/ (spawn copies sys.path)."""
    params = {"marker_dir": Param("str", None), "die_while": Param("str", None), "pause": Param("float", 0.05)}
    for name, factory, schema in (("watched_box_fill", watched_box_fill, params),
                                  ("unpicklable_box_fill", unpicklable_box_fill, {})):
        info = PluginInfo(name=name, kind="model", factory=factory, description="test model", version="0",
                          distribution="tests", params=schema)
        monkeypatch.setitem(get_registry().plugins, ("model", name), info)


def with_execution(suite: Path, lines: str) -> Path:
    """The same suite with ``[suite]`` execution keys (which must not change its identity for --resume)."""
    text = suite.read_text().replace('device = "cpu"\n', f'device = "cpu"\n{lines}\n', 1)
    out = suite.with_name(f"exec_{suite.name}")
    out.write_text(text)
    return out


def run(suite: Path, db: Path, *args: str) -> int:
    return main(["run", str(suite), "--db", str(db), *args])


def run_in_process(suite: Path, db: Path, **options) -> object:
    return run_plan(build_plan(load_suite(suite), get_registry()), RunOptions(db=str(db), show_progress=False, **options))


def test_processes_from_the_suite_file_gives_the_local_tables(tmp_path):
    suite = write_suite(tmp_path, subjects=2)
    assert run(suite, tmp_path / "local.duckdb") == 0
    assert run(with_execution(suite, 'executor = "processes"\nworkers = 2'), tmp_path / "processes.duckdb") == 0
    expected = snapshot(tmp_path / "local.duckdb")
    assert snapshot(tmp_path / "processes.duckdb") == expected
    assert len(expected["slice_metrics"]) > 0
    subjects = "SELECT subject_id, n_slices, shape FROM subjects ORDER BY ALL"
    assert table(tmp_path / "processes.duckdb", subjects) == table(tmp_path / "local.duckdb", subjects)


def test_ray_gives_the_local_tables(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    suite = write_suite(tmp_path, subjects=2, models=BOX_FILL + OTSU)
    assert run(suite, tmp_path / "local.duckdb") == 0
    assert run(suite, tmp_path / "ray.duckdb", "--executor", "ray", "--workers", "2") == 0
    assert snapshot(tmp_path / "ray.duckdb") == snapshot(tmp_path / "local.duckdb")


def test_a_worker_killed_mid_unit_is_retried_and_nothing_is_written_twice(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    reference = write_suite(tmp_path, "ref.toml", subjects=2, models=WATCHED.format(params=""))
    watched = write_suite(tmp_path, "watched.toml", subjects=2, models=WATCHED.format(params=f'marker_dir = "{markers}"'))
    run_in_process(reference, tmp_path / "local.duckdb")

    killed: list[int] = []

    def kill_the_first_worker_that_starts_encoding() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            started = list(markers.iterdir())
            if started:
                pid = int(started[0].name)
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_first_worker_that_starts_encoding)
    killer.start()
    result = run_in_process(watched, tmp_path / "processes.duckdb", executor="processes", workers=2)
    killer.join()
    assert killed and os.getpid() not in killed
    assert sum(result.retried.values()) == 1
    assert snapshot(tmp_path / "processes.duckdb") == snapshot(tmp_path / "local.duckdb")


def test_a_subject_whose_workers_always_die_is_failed_with_the_reason_and_resume_finishes_it(tmp_path, capsys):
    poison = tmp_path / "poison"
    poison.touch()
    suite = write_suite(tmp_path, subjects=1, models=WATCHED.format(params=f'die_while = "{poison}", pause = 0.0'))
    db = tmp_path / "r.duckdb"
    result = run_in_process(suite, db, executor="processes", workers=1)
    assert result.retried and max(result.retried.values()) == 3  # tried 1 + 2 times
    rows = table(db, "SELECT DISTINCT status, reason FROM subject_status")
    assert len(rows) == 1 and rows[0][0] == "failed" and "SIGKILL" in rows[0][1] and "3 times" in rows[0][1]
    poison.unlink()
    assert run(suite, db, "--resume", "--executor", "processes", "--workers", "1") == 0
    assert table(db, "SELECT DISTINCT status FROM subject_status") == [("done",)]
    assert run(suite, tmp_path / "local.duckdb") == 0
    assert snapshot(db) == snapshot(tmp_path / "local.duckdb")


@pytest.mark.slow
def test_driver_killed_then_resumed_with_another_executor_gives_identical_tables(tmp_path):
    suite = write_suite(tmp_path, subjects=4, models=BOX_FILL)
    reference_db, killed_db = tmp_path / "ref.duckdb", tmp_path / "killed.duckdb"
    assert run(suite, reference_db) == 0
    proc = _run_cli(["run", str(suite), "--db", str(killed_db), "--executor", "processes", "--workers", "2"])
    committed = 0
    for line in proc.stderr:
        committed += "committed subject" in line
        if committed == 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert 3 <= table(killed_db, "SELECT count(*) FROM subject_status")[0][0] < 8
    assert run(suite, killed_db, "--resume", "--executor", "local") == 0
    assert table(killed_db, "SELECT count(DISTINCT run_id), min(status) FROM runs") == [(1, "finished")]
    assert snapshot(killed_db) == snapshot(reference_db)


def test_a_unit_of_a_model_the_worker_does_not_hold_comes_back_for_the_driver(tmp_path):
    """Device models stay in the driver: the worker loads, prompts and defers their unit; running it gives the same rows."""
    plan = build_plan(load_suite(write_suite(tmp_path, subjects=1, models=BOX_FILL)), get_registry())
    with Store.open_for_writing(str(tmp_path / "r.duckdb")) as store:
        runner = Runner(plan, store, RunOptions(db=str(tmp_path / "r.duckdb")))
        model = runner._model("box_fill", runner.start())
    subject_id = plan.datasets["knee"].dataset.subject_ids(None)[0]
    task = SubjectTask("knee", subject_id, tuple(plan.cells), qc=True)
    held = run_subject_task(WorkerState(plan, "r", {"box_fill": model}, runner.context, False), task)
    deferred = run_subject_task(WorkerState(plan, "r", {}, runner.context, False), task)
    assert held.records and not held.deferred and not deferred.records and len(deferred.deferred) == 1
    from mskbench.execution.unit import run_unit

    again = run_unit(deferred.deferred[0], runner.context, model)
    def rows(records):  # repr: NaN metric values compare equal; timings differ by nature
        return repr([{k: v for k, v in r.tables.items() if k != "timings"} for r in records])

    assert rows(again) == rows(held.records)


@pytest.mark.parametrize("args, expected", [
    (["--workers", "0"], "--workers 0: must be between 1 and"),
    (["--executor", "processes", "--workers", "100000"], "--workers 100000: must be between 1 and"),
    (["--executor", "threads"], "--executor"),
    (["--ray-address", "127.0.0.1:1"], "only --executor ray joins a Ray cluster"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "--ray-address 127.0.0.1:1: no Ray cluster answers there"),
])
def test_bad_executor_options_are_one_line(tmp_path, capsys, args, expected):
    if "ray" in args:
        pytest.importorskip("ray")
    assert run(write_suite(tmp_path, subjects=1, models=BOX_FILL), tmp_path / "r.duckdb", *args) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "r.duckdb").exists() or table(tmp_path / "r.duckdb", "SELECT count(*) FROM subject_status") == [(0,)]


def test_ray_not_installed_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    assert run(write_suite(tmp_path, subjects=1, models=BOX_FILL), tmp_path / "r.duckdb", "--executor", "ray") == 2
    err = capsys.readouterr().err.strip()
    assert 'pip install "mskbench[distributed]"' in err and len(err.splitlines()) == 1


def test_a_model_that_cannot_be_pickled_is_named_and_local_still_runs_it(tmp_path, capsys):
    suite = write_suite(tmp_path, subjects=1, models='[[models]]\nname = "locked"\nplugin = "unpicklable_box_fill"\n')
    assert run(suite, tmp_path / "p.duckdb", "--executor", "processes", "--workers", "1") == 2
    err = capsys.readouterr().err.strip()
    assert "models.locked" in err and "cannot be pickled" in err and "--executor local" in err and len(err.splitlines()) == 1
    assert run(suite, tmp_path / "l.duckdb") == 0


def test_bad_suite_executor_is_one_line(tmp_path, capsys):
    suite = with_execution(write_suite(tmp_path, subjects=1, models=BOX_FILL), 'executor = "threads"')
    assert run(suite, tmp_path / "r.duckdb") == 2
    err = capsys.readouterr().err.strip()
    assert "suite.executor" in err and len(err.splitlines()) == 1

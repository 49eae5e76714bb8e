"""The results database's one way in: Store.open_for_reading / open_for_writing.

A damaged file (truncated, text, random bytes, a bad block checksum, a
folder) is one StoreError naming it, and is never written to; a zero-byte file
is started as a new database when opened for writing; a full disk reports
"No space left on device" (not DuckDB's "cannot rollback") and keeps what was
committed before.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from mskbench.errors import StoreError
from mskbench.store import RowBuffer, Store, database_errors, utcnow

DAMAGED = "is damaged or not a DuckDB file"


def _buffer(subject: str, blob: bytes = b"") -> RowBuffer:
    buffer = RowBuffer()
    buffer.add("subject_metrics", run_id="r0", cell_id="c0", subject_id=subject, label=1, label_name="bone",
               case_state="hit", metric="dice", value=0.5, substituted=False)
    if blob:
        buffer.add("qc_slices", run_id="r0", cell_id="c0", subject_id=subject, slice_index=0, scale=1.0,
                   image=blob, reference=b"", prediction=b"")
    buffer.add("subject_status", run_id="r0", cell_id="c0", dataset="d", subject_id=subject, status="done",
               finished_at=utcnow())
    return buffer


def _database(path: Path, subjects: int = 3) -> Path:
    with Store.open_for_writing(path) as store:
        buffer = RowBuffer()
        buffer.add("runs", run_id="r0", suite_name="earlier", suite_hash="h", suite_path="s.toml", config="{}",
                   manifest="{}", started_at=utcnow(), finished_at=utcnow(), status="finished")
        store.write(buffer)
        for index in range(subjects):
            store.write(_buffer(f"s{index}"))
    return path


def _subjects(path: Path) -> list[str]:
    with Store.open_for_reading(path) as store:
        return [r[0] for r in store.execute("SELECT subject_id FROM subject_status ORDER BY 1").fetchall()]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return _database(tmp_path_factory.mktemp("good") / "good.duckdb")


def _truncated_header(good: Path, path: Path) -> None:
    path.write_bytes(good.read_bytes()[:5000])


def _truncated_blocks(good: Path, path: Path) -> None:
    """Cut inside the last block: DuckDB opens it, only the missing block's reads fail."""
    data = good.read_bytes()
    path.write_bytes(data[: len(data) - 1000])


def _text(good: Path, path: Path) -> None:
    path.write_text("run_id,subject\nr0,s1\n")


def _random(good: Path, path: Path) -> None:
    import numpy as np

    path.write_bytes(np.random.default_rng(0).bytes(20_000))


def _folder(good: Path, path: Path) -> None:
    path.mkdir()


DAMAGE = {
    "truncated-header": (_truncated_header, DAMAGED),
    "truncated-blocks": (_truncated_blocks, DAMAGED),
    "text-file": (_text, DAMAGED),
    "random-bytes": (_random, DAMAGED),
    "folder": (_folder, "is a folder, not a DuckDB file"),
}


def _snapshot(path: Path) -> bytes | list[str]:
    return sorted(os.listdir(path)) if path.is_dir() else path.read_bytes()


@pytest.mark.parametrize("kind", DAMAGE)
@pytest.mark.parametrize("mode", ["reading", "writing"])
def test_a_damaged_file_is_one_error_and_left_untouched(kind, mode, good, tmp_path):
    make, expected = DAMAGE[kind]
    path = tmp_path / "damaged.duckdb"
    make(good, path)
    before = _snapshot(path)
    opener = Store.open_for_reading if mode == "reading" else Store.open_for_writing
    with pytest.raises(StoreError) as raised:
        opener(path)
    message = str(raised.value)
    assert expected in message and str(path) in message and "\n" not in message
    assert _snapshot(path) == before
    assert not Path(f"{path}.wal").exists()


def _flip_block(good: Path, path: Path, table: str = "subject_metrics") -> None:
    """A copy of ``good`` with bytes zeroed inside the data block of ``table``: its checksum fails."""
    shutil.copyfile(good, path)
    with Store.open_for_reading(path) as store:
        blocks = [row[0] for row in store.execute(
            f"SELECT DISTINCT block_id FROM pragma_storage_info('{table}') WHERE block_id >= 0").fetchall()]
        block_size = store.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
    data = bytearray(path.read_bytes())
    offset = 3 * 4096 + blocks[0] * block_size + 100
    data[offset:offset + 64] = bytes(64)
    path.write_bytes(bytes(data))


def test_a_bad_block_is_refused_for_writing_before_anything_is_written(good, tmp_path):
    """`run` appends without reading old tables, so opening for writing reads every block first."""
    path = tmp_path / "flipped.duckdb"
    _flip_block(good, path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="Corrupt database file"):
        Store.open_for_writing(path)
    with pytest.raises(StoreError, match=DAMAGED):
        Store.check_writable(path)
    assert path.read_bytes() == before and not Path(f"{path}.wal").exists()


def test_damage_met_while_querying_is_the_same_one_line(good, tmp_path):
    """A bad block checksum is only seen when the block is read: `with Store` and database_errors translate it."""
    path = tmp_path / "flipped.duckdb"
    _flip_block(good, path)
    with pytest.raises(StoreError, match=DAMAGED):
        with Store.open_for_reading(path) as store:
            store.con.execute("SELECT * FROM subject_metrics").fetchall()  # the raw connection, as stats does
    with pytest.raises(StoreError, match="Corrupt database file"):
        with database_errors(path):
            con = duckdb.connect(str(path), read_only=True)
            try:
                con.execute("SELECT * FROM subject_metrics").fetchall()
            finally:
                con.close()


def test_sql_mistakes_keep_their_traceback(good):
    with pytest.raises(duckdb.CatalogException):
        with Store.open_for_reading(good) as store:
            store.execute("SELECT * FROM no_such_table")


def test_missing_and_empty_files_for_reading(tmp_path):
    with pytest.raises(StoreError, match="no such results database"):
        Store.open_for_reading(tmp_path / "missing.duckdb")
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    with pytest.raises(StoreError, match=r"is empty \(0 bytes"):
        Store.open_for_reading(empty)
    assert empty.read_bytes() == b""


def test_a_zero_byte_file_is_started_as_a_new_database_for_writing(tmp_path):
    """Chosen behaviour: `touch x.duckdb` or `mktemp` then `mskbench run --db x.duckdb` works."""
    path = tmp_path / "empty.duckdb"
    path.touch()
    with Store.open_for_writing(path) as store:
        store.write(_buffer("s1"))
    assert _subjects(path) == ["s1"]


def test_a_healthy_database_passes_every_check(good, tmp_path):
    """The size check must not refuse a whole file: after many writes, with and without a checkpoint."""
    path = tmp_path / "grown.duckdb"
    shutil.copyfile(good, path)
    with Store.open_for_writing(path) as store:
        for index in range(40):
            store.write(_buffer(f"t{index:02d}", blob=os.urandom(50_000)))
    assert len(_subjects(path)) == 43
    Store.check_writable(path)
    with Store.open_for_writing(path) as store:
        store.write(_buffer("u0"))
    assert len(_subjects(path)) == 44


def test_a_database_left_with_its_wal_by_a_killed_writer_opens(good, tmp_path):
    path = tmp_path / "killed.duckdb"
    shutil.copyfile(good, path)
    code = (
        "import os, sys\n"
        "from mskbench.store import Store, RowBuffer, utcnow\n"
        f"store = Store.open_for_writing({str(path)!r})\n"
        "store.con.execute('PRAGMA disable_checkpoint_on_shutdown')\n"
        "buffer = RowBuffer()\n"
        "buffer.add('subject_status', run_id='r0', cell_id='c0', dataset='d', subject_id='killed',"
        " status='done', finished_at=utcnow())\n"
        "store.write(buffer)\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert Path(f"{path}.wal").exists()
    assert "killed" in _subjects(path)
    with Store.open_for_writing(path) as store:
        store.write(_buffer("after"))
    assert {"killed", "after"} <= set(_subjects(path))


def test_locked_database_keeps_its_message(good, tmp_path):
    path = tmp_path / "locked.duckdb"
    shutil.copyfile(good, path)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,time; c=duckdb.connect({str(path)!r}); print('ok', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        for opener in (Store.open_for_reading, Store.open_for_writing):
            with pytest.raises(StoreError, match="locked by another process"):
                opener(path)
    finally:
        holder.kill()
        holder.wait()


class _DiskFullOnCommit:
    """A connection whose next COMMIT fails the way DuckDB's does on a full disk.

    DuckDB ends the transaction itself when COMMIT fails, so mskbench's ROLLBACK
    then raises "cannot rollback - no transaction is active": the error that
    used to hide the real one.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path):
        self._con = con
        self._path = path

    def execute(self, sql: str, *args):
        if sql.strip().upper() == "COMMIT":
            self._con.execute("ROLLBACK")
            raise duckdb.TransactionException(
                f'TransactionContext Error: Failed to commit: Could not write file "{self._path}.wal": '
                "No space left on device"
            )
        return self._con.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self._con, name)


def test_disk_full_reports_the_first_error_and_keeps_committed_work(good, tmp_path):
    path = tmp_path / "full.duckdb"
    shutil.copyfile(good, path)
    store = Store.open_for_writing(path)
    store.write(_buffer("before"))
    real = store.con
    store.con = _DiskFullOnCommit(real, path)
    with pytest.raises(StoreError) as raised:
        store.write(_buffer("lost"))
    store.con = real
    store.close()
    message = str(raised.value)
    assert "No space left on device" in message and "rollback" not in message and "\n" not in message
    assert "the results committed before are kept" in message
    assert _subjects(path) == ["before", "s0", "s1", "s2"]


def test_a_write_error_that_is_not_the_disk_keeps_its_traceback(good, tmp_path):
    path = tmp_path / "bug.duckdb"
    shutil.copyfile(good, path)
    import pyarrow as pa

    buffer = _buffer("half-written")
    buffer.columns["subject_metrics"]["value"] = ["not a number"]  # inserted after subject_status
    with Store.open_for_writing(path) as store:
        store.write(_buffer("kept"))
        with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
            store.write(buffer)  # a bug in mskbench, not a user's problem
        store.write(_buffer("after"))  # the failed transaction was rolled back
    assert _subjects(path) == ["after", "kept", "s0", "s1", "s2"]


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, timeout=30)
    return done.returncode == 0


def test_a_real_full_disk_is_one_line_and_keeps_committed_work(tmp_path):
    """On a 3 MiB tmpfs (root only; skipped where mount is not allowed)."""
    folder = tmp_path / "tiny"
    if not _mount_tmpfs(folder, "3m"):
        pytest.skip("needs root and `mount -t tmpfs` to make a small full disk")
    try:
        path = folder / "full.duckdb"
        committed = 0
        with pytest.raises(StoreError) as raised:
            with Store.open_for_writing(path) as store:
                for index in range(100):
                    store.write(_buffer(f"s{index:03d}", blob=os.urandom(200_000)))
                    committed += 1
        message = str(raised.value)
        assert "No space left on device" in message and "rollback" not in message and "\n" not in message
        assert 0 < committed < 100
        assert _subjects(path) == [f"s{index:03d}" for index in range(committed)]
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def test_stats_tables_on_a_full_disk_report_the_first_error(good, tmp_path, monkeypatch):
    """write_tables goes through the same transaction: its full disk is one line too."""
    from mskbench.stats import analysis

    path = tmp_path / "stats.duckdb"
    shutil.copyfile(good, path)
    real_open = Store.open_for_writing

    def failing_open(db, **kwargs):
        store = real_open(db, **kwargs)
        store.con = _DiskFullOnCommit(store.con, Path(db))
        return store

    class Results:
        settings = analysis.StatsSettings()

        @staticmethod
        def tables():
            import pandas as pd

            return {"summary": pd.DataFrame({"x": [1.0]})}

    monkeypatch.setattr(Store, "open_for_writing", staticmethod(failing_open))
    with pytest.raises(StoreError, match="No space left on device"):
        analysis.write_tables(path, Results())
    with Store.open_for_reading(path) as store:
        assert "stats_summary" not in store.tables()


TINY_SUITE = """
[suite]
name = "disk_full"
seed = 0
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = { anatomy = "knee", subjects = 3, seed = 5 }
split = "all"

[[models]]
name = "box_fill"
plugin = "box_fill"

[[prompters]]
name = "gt_box"
plugin = "gt_box"

[metrics]
names = ["dice"]
"""


def test_run_on_a_full_disk_is_one_line_keeps_the_committed_subjects_and_resumes(tmp_path, monkeypatch, capsys):
    """The commit of the second subject hits a full disk, through the real `run` command."""
    from mskbench.cli.main import main

    suite = tmp_path / "suite.toml"
    suite.write_text(TINY_SUITE)
    db = tmp_path / "results.duckdb"
    real_open = Store.open_for_writing
    finished = {"subjects": 0}

    class FullAfterTwo(_DiskFullOnCommit):
        def execute(self, sql: str, *args):
            if sql.startswith("INSERT INTO subject_status"):
                finished["subjects"] += 1
            if sql.strip().upper() == "COMMIT" and finished["subjects"] < 2:
                return self._con.execute(sql, *args)
            return super().execute(sql, *args)

    def failing_open(path, **kwargs):
        store = real_open(path, **kwargs)
        store.con = FullAfterTwo(store.con, Path(path))
        return store

    monkeypatch.setattr(Store, "open_for_writing", staticmethod(failing_open))
    assert main(["run", str(suite), "--db", str(db)]) == 2
    stderr = capsys.readouterr().err
    err = [line for line in stderr.splitlines() if line.startswith("error:")]  # progress lines may precede it
    assert len(err) == 1 and "Traceback" not in stderr, stderr
    assert "No space left on device" in err[0] and "rollback" not in err[0] and "--resume" in err[0]
    assert len(_subjects(db)) == 1  # subject 1 was committed before the disk filled
    with Store.open_for_reading(db) as store:
        assert store.execute("SELECT status FROM runs").fetchall() == [("running",)]

    monkeypatch.setattr(Store, "open_for_writing", staticmethod(real_open))
    assert main(["run", str(suite), "--db", str(db), "--resume"]) == 0
    assert len(_subjects(db)) == 3
    with Store.open_for_reading(db) as store:
        assert store.execute("SELECT status FROM runs").fetchall() == [("finished",)]

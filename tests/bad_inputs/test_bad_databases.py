"""Damaged, missing and odd results databases through the real CLI.

Every command that reads a results database (runs, stats, report,
leaderboard, gate, export) and `run`, which appends to one, goes through
Store.open_for_reading / open_for_writing: a truncated copy, a text file,
random bytes, a bad block checksum, a folder, a missing or empty file is one
line naming the database, exit code 2, and the damaged file is left exactly as
it was (``run`` never appends to it). The damaged file is made in each case's
folder from the case's copy of the template database, never from ``{db}``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from harness import BadInput, check

REPO = Path(__file__).resolve().parents[2]
DAMAGED = "{tmp}/damaged.duckdb"
IS_DAMAGED = "is damaged or not a DuckDB file"
BEFORE = "damaged.before"  # the damaged file's bytes as set up, compared after the command


def _good(tmp: Path) -> bytes:
    return (tmp / "results.duckdb").read_bytes()  # the case's own copy of the template


def _keep(tmp: Path, data: bytes) -> None:
    (tmp / "damaged.duckdb").write_bytes(data)
    (tmp / BEFORE).write_bytes(data)


def truncated_header(tmp: Path) -> None:
    """Cut inside DuckDB's headers: the open itself fails."""
    _keep(tmp, _good(tmp)[:5000])


def truncated_blocks(tmp: Path) -> None:
    """Cut inside the last data block: DuckDB opens it and fails only when a query reaches the block."""
    data = _good(tmp)
    _keep(tmp, data[: len(data) - 1000])


def text_file(tmp: Path) -> None:
    _keep(tmp, b"run_id,suite\nr0,earlier\n")


def random_bytes(tmp: Path) -> None:
    import numpy as np

    _keep(tmp, np.random.default_rng(11).bytes(50_000))


def zero_bytes(tmp: Path) -> None:
    _keep(tmp, b"")


def bad_checksum(tmp: Path) -> None:
    """Zero 64 bytes inside every data block: each block's checksum fails when it is read."""
    path = tmp / "damaged.duckdb"
    shutil.copyfile(tmp / "results.duckdb", path)
    with duckdb.connect(str(path), read_only=True) as con:
        block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
        blocks = set()
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            blocks |= {row[0] for row in con.execute(
                f"SELECT block_id FROM pragma_storage_info('{table}') WHERE block_id >= 0").fetchall()}
    data = bytearray(path.read_bytes())
    for block in blocks:
        offset = 3 * 4096 + block * block_size + 100
        data[offset:offset + 64] = bytes(64)
    _keep(tmp, bytes(data))


def folder(tmp: Path) -> None:
    (tmp / "damaged.duckdb").mkdir()


def smoke_suite(tmp: Path) -> None:
    shutil.copyfile(REPO / "suites" / "smoke.toml", tmp / "suite.toml")


def run_on(damage):
    def setup(tmp: Path) -> None:
        smoke_suite(tmp)
        damage(tmp)

    return setup


READERS = {
    "runs": ["runs", "--db", DAMAGED],
    "stats": ["stats", "--db", DAMAGED],
    "report": ["report", "--db", DAMAGED, "--out", "{tmp}/report.html"],
    "leaderboard": ["leaderboard", "--db", DAMAGED, "--out", "{tmp}/site"],
    "gate": ["gate", "--db", DAMAGED, "--baseline", "a", "--candidate", "b"],
    "export": ["export", "--db", DAMAGED, "--table", "subject_metrics", "--out", "{tmp}/rows.parquet"],
}
RUN = ["run", "{tmp}/suite.toml", "--db", DAMAGED, "--limit-subjects", "1"]

CASES = [
    # the truncation DuckDB only notices later used to be a traceback in every reader (export blamed --out)
    *(BadInput(f"{name}-truncated-blocks", args, truncated_blocks, IS_DAMAGED) for name, args in READERS.items()),
    BadInput("stats-truncated-header", READERS["stats"], truncated_header, IS_DAMAGED),
    BadInput("export-truncated-header", READERS["export"], truncated_header, IS_DAMAGED),
    BadInput("runs-text-file", READERS["runs"], text_file, IS_DAMAGED),
    BadInput("report-text-file", READERS["report"], text_file, IS_DAMAGED),
    BadInput("gate-random-bytes", READERS["gate"], random_bytes, IS_DAMAGED),
    BadInput("leaderboard-random-bytes", READERS["leaderboard"], random_bytes, IS_DAMAGED),
    # a bad checksum is only met while reading: the same line, not an IOException traceback
    BadInput("runs-bad-checksum", READERS["runs"], bad_checksum, "Corrupt database file"),
    BadInput("stats-bad-checksum", READERS["stats"], bad_checksum, "Corrupt database file"),
    BadInput("export-bad-checksum", READERS["export"], bad_checksum, IS_DAMAGED),
    BadInput("runs-folder", READERS["runs"], folder, "is a folder, not a DuckDB file"),
    BadInput("gate-folder", READERS["gate"], folder, "is a folder, not a DuckDB file"),
    BadInput("export-folder", READERS["export"], folder, "is a folder, not a DuckDB file"),
    BadInput("report-missing", READERS["report"], None, "no such results database"),
    BadInput("leaderboard-missing", READERS["leaderboard"], None, "no such results database"),
    BadInput("runs-zero-bytes", READERS["runs"], zero_bytes, "is empty (0 bytes"),
    BadInput("gate-zero-bytes", READERS["gate"], zero_bytes, "is empty (0 bytes"),
    # `run` refuses to append to a damaged file (it used to append and exit 0)
    BadInput("run-truncated-header", RUN, run_on(truncated_header), IS_DAMAGED),
    BadInput("run-truncated-blocks", RUN, run_on(truncated_blocks), IS_DAMAGED),
    BadInput("run-text-file", RUN, run_on(text_file), IS_DAMAGED),
    BadInput("run-random-bytes", RUN, run_on(random_bytes), IS_DAMAGED),
    BadInput("run-bad-checksum", RUN, run_on(bad_checksum), "Corrupt database file"),
    BadInput("run-folder", RUN, run_on(folder), "is a folder, not a DuckDB file"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_database(case: BadInput, tmp_path: Path, template_db: Path) -> None:
    check(case, tmp_path, template_db)
    damaged = tmp_path / "damaged.duckdb"
    if (tmp_path / BEFORE).exists():
        assert damaged.read_bytes() == (tmp_path / BEFORE).read_bytes(), "the damaged file was modified"
        assert not Path(f"{damaged}.wal").exists(), "a write-ahead log was started beside the damaged file"
    elif damaged.is_dir():
        assert os.listdir(damaged) == [], "something was written into the folder given as --db"
    else:
        assert not damaged.exists(), "a missing database was created by a command that only reads"

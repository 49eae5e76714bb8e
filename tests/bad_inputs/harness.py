"""The bad-input corpus: each case runs the real CLI in a subprocess.

A case is a CLI argument list plus a ``setup`` that writes the bad file(s)
into the case's folder. The promise checked for every case (README, DESIGN
§10): exit code 2, exactly one non-empty stderr line, no traceback, and a
results database that existed before the command is byte-identical after it.

Case modules (``test_bad_*.py`` beside this file) build a list of
:class:`BadInput` and call :func:`check` from one parametrised test. To inject
a misbehaving plugin without pip, ``setup`` writes ``{tmp}/site/mod.py`` and
``{tmp}/site/mod-0.1.dist-info/{METADATA,entry_points.txt}`` (group
``mskbench``) and the case passes ``env={"PYTHONPATH": "{tmp}/site"}``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

Setup = Callable[[Path], None]


@dataclass(frozen=True)
class BadInput:
    """One bad input: ``args`` may use ``{tmp}`` (the case folder) and ``{db}`` (the existing database)."""

    id: str
    args: list[str]
    setup: Setup | None = None
    expect: str = ""  # a substring the error line must contain (case-insensitive)
    env: dict[str, str] = field(default_factory=dict)


def existing_database(path: Path) -> Path:
    """A small finished results database, standing in for a user's earlier work."""
    from mskbench.store import RowBuffer, Store, utcnow

    with Store(path) as store:
        buffer = RowBuffer()
        buffer.add("runs", run_id="r0", suite_name="earlier", suite_hash="h", suite_path="s.toml",
                   config="{}", manifest="{}", started_at=utcnow(), finished_at=utcnow(), status="finished")
        for subject in ("s1", "s2", "s3"):
            buffer.add("subject_metrics", run_id="r0", cell_id="c0", subject_id=subject, label=1,
                       label_name="bone", case_state="hit", metric="dice", value=0.5, substituted=False)
        store.write(buffer)
    return path


def run_cli(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    environment = {**os.environ, "YOLO_OFFLINE": "1", "MPLBACKEND": "Agg", "NO_COLOR": "1", "COLUMNS": "200"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mskbench", *args], cwd=cwd, env=environment, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=timeout,
    )


def check(case: BadInput, tmp_path: Path, template_db: Path) -> None:
    """Run one case and assert the bad-input promise."""
    db = tmp_path / "results.duckdb"
    shutil.copyfile(template_db, db)
    before = db.read_bytes()
    if case.setup is not None:
        case.setup(tmp_path)
    args = [a.format(tmp=tmp_path, db=db) for a in case.args]
    env = {k: v.format(tmp=tmp_path, db=db) for k, v in case.env.items()}
    done = run_cli(args, tmp_path, env)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    shown = f"args={args}\nrc={done.returncode}\nstderr:\n{done.stderr}\nstdout:\n{done.stdout[-2000:]}"
    assert "Traceback" not in done.stderr, shown
    assert done.returncode == 2, shown
    assert len(lines) == 1, shown
    assert case.expect.lower() in lines[0].lower(), shown
    assert db.read_bytes() == before or _rows(db) == _rows(template_db), shown


def _rows(db: Path) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute("SELECT * FROM subject_metrics ORDER BY ALL").fetchall()

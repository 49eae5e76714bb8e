"""The DuckDB results store (DESIGN §5); docs/schema.md documents every column.

Rows arrive as column lists and are inserted through Arrow in bulk. One
(subject, cell) is one transaction, ended by its `subject_status` row, so a
killed run loses at most the subject in flight and `--resume` knows exactly
what is finished.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mskbench.errors import StoreError

log = logging.getLogger(__name__)

# (table, [(column, duckdb type)]); inserts match columns by name, so a database from an older release whose
# tables lack a later column (added by `add_missing_columns`) keeps working.
TABLES: dict[str, list[tuple[str, str]]] = {
    "runs": [
        ("run_id", "VARCHAR"), ("suite_name", "VARCHAR"), ("suite_hash", "VARCHAR"),
        ("suite_path", "VARCHAR"), ("config", "JSON"), ("manifest", "JSON"),
        ("started_at", "TIMESTAMP"), ("finished_at", "TIMESTAMP"), ("status", "VARCHAR"),
    ],
    "cells": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("dataset", "VARCHAR"), ("model", "VARCHAR"),
        ("prompter", "VARCHAR"), ("seed", "INTEGER"), ("dataset_plugin", "VARCHAR"),
        ("model_plugin", "VARCHAR"), ("prompter_plugin", "VARCHAR"), ("params", "JSON"),
        ("status", "VARCHAR"), ("skip_reason", "VARCHAR"), ("allow_training_subjects", "BOOLEAN"),
        # the model card's fields (mskbench.training.covariates); NULL for a model without a card
        ("finetune_base", "VARCHAR"), ("finetune_trains", "VARCHAR"), ("finetune_prompt", "VARCHAR"),
        ("finetune_max_shift", "DOUBLE"), ("finetune_shift_space", "VARCHAR"), ("finetune_subjects", "JSON"),
        ("finetune_train_subjects", "INTEGER"), ("finetune_mix", "JSON"),
    ],
    "subjects": [
        ("run_id", "VARCHAR"), ("dataset", "VARCHAR"), ("subject_id", "VARCHAR"), ("split", "VARCHAR"),
        ("anatomy", "VARCHAR"), ("field_strength_t", "DOUBLE"), ("vendor", "VARCHAR"),
        ("sequence", "VARCHAR"), ("te_ms", "DOUBLE"), ("tr_ms", "DOUBLE"), ("flip_angle_deg", "DOUBLE"),
        ("slice_thickness_mm", "DOUBLE"), ("pixel_spacing_mm", "DOUBLE"), ("acquisition_type", "VARCHAR"),
        ("sex", "VARCHAR"), ("age_years", "DOUBLE"), ("weight_kg", "DOUBLE"), ("spacing", "JSON"),
        ("shape", "JSON"), ("n_slices", "INTEGER"), ("source_sha256", "JSON"),
    ],
    "preprocessing": [
        ("run_id", "VARCHAR"), ("dataset", "VARCHAR"), ("subject_id", "VARCHAR"), ("label", "INTEGER"),
        ("label_name", "VARCHAR"), ("voxels_before", "BIGINT"), ("voxels_after", "BIGINT"),
        ("lost_fraction", "DOUBLE"), ("outcome", "VARCHAR"), ("min_object_pixels", "INTEGER"),
        ("min_object_voxels", "INTEGER"),
    ],
    "subject_status": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("dataset", "VARCHAR"), ("subject_id", "VARCHAR"),
        ("status", "VARCHAR"), ("reason", "VARCHAR"), ("finished_at", "TIMESTAMP"),
    ],
    "prompts": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("slice_index", "INTEGER"),
        ("round", "INTEGER"), ("prompt_index", "INTEGER"), ("label", "INTEGER"), ("instance", "INTEGER"), ("kind", "VARCHAR"),
        ("x_min", "DOUBLE"), ("y_min", "DOUBLE"), ("x_max", "DOUBLE"), ("y_max", "DOUBLE"),
        ("points", "JSON"), ("point_labels", "JSON"), ("prompter", "VARCHAR"), ("seed", "BIGINT"),
        ("score", "DOUBLE"), ("detector_class", "INTEGER"), ("clipped", "BOOLEAN"),
        ("first_slice", "INTEGER"), ("last_slice", "INTEGER"),
    ],
    "slice_metrics": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("round", "INTEGER"),
        ("slice_index", "INTEGER"),
        ("label", "INTEGER"), ("label_name", "VARCHAR"), ("case_state", "VARCHAR"),
        ("area_fraction", "DOUBLE"), ("size_bin", "VARCHAR"), ("metric", "VARCHAR"), ("value", "DOUBLE"),
        ("substituted", "BOOLEAN"), ("reference_extent_used", "BOOLEAN"),
    ],
    "subject_metrics": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("round", "INTEGER"),
        ("label", "INTEGER"),
        ("label_name", "VARCHAR"), ("case_state", "VARCHAR"), ("metric", "VARCHAR"), ("value", "DOUBLE"),
        ("substituted", "BOOLEAN"), ("slice_mean", "DOUBLE"), ("n_slices", "INTEGER"),
        ("reference_extent_used", "BOOLEAN"), ("tissue", "VARCHAR"),
    ],
    "biomarkers": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("structure", "VARCHAR"),
        ("biomarker", "VARCHAR"), ("method", "VARCHAR"), ("source", "VARCHAR"), ("instance", "INTEGER"),
        ("value", "DOUBLE"), ("unit", "VARCHAR"), ("round", "INTEGER"), ("reference_extent_used", "BOOLEAN"),
    ],
    "timings": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("round", "INTEGER"),
        ("slice_index", "INTEGER"),
        ("stage", "VARCHAR"), ("seconds", "DOUBLE"), ("peak_memory_mb", "DOUBLE"), ("peak_gpu_memory_mb", "DOUBLE"),
    ],
    "qc_slices": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("slice_index", "INTEGER"),
        ("scale", "DOUBLE"), ("image", "BLOB"), ("reference", "BLOB"), ("prediction", "BLOB"),
    ],
    "detections": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("slice_index", "INTEGER"),
        ("label", "INTEGER"), ("reference_present", "BOOLEAN"), ("detected", "BOOLEAN"),
        ("score", "DOUBLE"), ("box_iou", "DOUBLE"), ("hit", "BOOLEAN"),
    ],
}

SCHEMA_SQL = "\n".join(
    f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(f'{col} {typ}' for col, typ in cols)});"
    for name, cols in TABLES.items()
)

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
    "BLOB": pa.binary(),
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class RowBuffer:
    """Column lists for each table, filled while one (subject, cell) is computed."""

    columns: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def add(self, table: str, **row: Any) -> None:
        cols = self.columns.setdefault(table, {name: [] for name, _ in TABLES[table]})
        for name in cols:
            cols[name].append(row.get(name))

    def extend(self, table: str, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.add(table, **row)

    def arrow(self, table: str) -> pa.Table | None:
        cols = self.columns.get(table)
        if not cols or not next(iter(cols.values())):
            return None
        schema = pa.schema([(name, _ARROW_TYPES[typ]) for name, typ in TABLES[table]])
        return pa.table({name: pa.array(values, type=schema.field(name).type) for name, values in cols.items()}, schema=schema)


# A DuckDB file starts with its main header and two database headers (4 KiB each), then the blocks.
_HEADER_BYTES = 3 * 4096
_DISK_FULL = ("no space left on device", "disk quota exceeded", "file too large", "database has been invalidated")
_NOT_WRITABLE = ("permission denied", "read-only file system")
_DAMAGE = ("corrupt database file", "could not read enough bytes", "not a valid duckdb database",
           "is a directory", "could not read from file")
_RESUME_HINT = "rerun the same command (with --resume for `mskbench run`)"


class Store:
    """One DuckDB results file; open it with :meth:`open_for_reading` or :meth:`open_for_writing`.

    These two are the only way mskbench opens a results database (``run``,
    ``metrics compute --db`` and ``stats`` write; ``runs``, ``stats``,
    ``report``, ``leaderboard``, ``gate`` and ``export`` read), so every
    command says the same thing about a missing, locked, damaged or full
    database: one line, exit code 2. A damaged file is never written to.
    Errors met later, while querying or writing, are translated the same way
    by the ``with`` block (and :func:`database_errors`).
    """

    def __init__(self, path: str | Path, read_only: bool = False, *, schema: bool = True):
        self.path = Path(path)
        self.read_only = read_only
        self.con = _open_for_reading(self.path) if read_only else _open_for_writing(self.path, schema)

    @classmethod
    def open_for_reading(cls, path: str | Path) -> Store:
        """Open an existing results database read-only, after checking it is a whole DuckDB file."""
        return cls(path, read_only=True)

    @classmethod
    def open_for_writing(cls, path: str | Path, *, schema: bool = True) -> Store:
        """Open (or create) a results database for appending; ``schema`` creates mskbench's tables.

        An existing file is first checked read-only, so a damaged one is refused
        untouched; a zero-byte file holds nothing and is initialised as a new database.
        """
        return cls(path, read_only=False, schema=schema)

    @staticmethod
    def check_readable(path: str | Path) -> None:
        """Check that ``path`` opens for reading (milliseconds: commands call it before their heavy imports)."""
        _open_for_reading(Path(path)).close()

    @staticmethod
    def check_writable(path: str | Path) -> None:
        """Check up front, writing nothing, that ``path`` can be opened for writing later."""
        path = Path(path)
        if path.is_dir() or not path.exists() or path.stat().st_size == 0:
            _check_new_file(path)
        else:
            _check_before_appending(path)

    def close(self) -> None:
        try:
            self.con.close()
        except duckdb.Error as exc:  # after a fatal write error; the first error is what the user needs
            log.debug("closing %s: %s", self.path, exc)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self.close()
        translated = _translate(self.path, exc, writing=not self.read_only) if exc is not None else None
        if translated is not None:
            raise translated from None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction on ``self.con``: committed at the end of the block, rolled back on any error.

        The *first* error is raised: a full disk says "No space left on device"
        (one line, exit 2), not "cannot rollback - no transaction is active"
        (DuckDB ends the transaction itself when COMMIT fails).
        """
        try:
            self.con.execute("BEGIN TRANSACTION")
            yield self.con
            self.con.execute("COMMIT")
        except BaseException as exc:
            _rollback_quietly(self.con, self.path)
            translated = _translate(self.path, exc, writing=True)
            if translated is not None:
                raise translated from None
            raise

    def write(self, buffer: RowBuffer) -> None:
        """Insert every buffered table in one transaction (all or nothing)."""
        with self.transaction() as con:
            for table in TABLES:
                arrow_table = buffer.arrow(table)
                if arrow_table is None:
                    continue
                con.register("_incoming", arrow_table)
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming")
                con.unregister("_incoming")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> duckdb.DuckDBPyConnection:
        with database_errors(self.path, writing=not self.read_only):
            return self.con.execute(sql, list(params))

    def finished_pairs(self, run_id: str) -> set[tuple[str, str]]:
        """(cell_id, subject_id) pairs already written, for --resume."""
        rows = self.execute("SELECT cell_id, subject_id FROM subject_status WHERE run_id = ?", [run_id]).fetchall()
        return {(cell, subject) for cell, subject in rows}

    def set_run_status(self, run_id: str, status: str) -> None:
        self.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", [status, utcnow(), run_id])

    def export(self, table: str, out: Path, fmt: str) -> int:
        """Write one table to Parquet or CSV; returns the row count."""
        if table not in self.tables():
            from mskbench.params import suggest

            raise StoreError(f"--table {table}: no such table{suggest(table, self.tables())}; tables: {', '.join(self.tables())}")
        option = "(FORMAT PARQUET)" if fmt == "parquet" else "(FORMAT CSV, HEADER)"
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            self.con.execute(f"COPY {table} TO '{_sql_string(str(out))}' {option}")
        except (OSError, duckdb.Error) as exc:
            if _is_damage(self.path, exc):  # reading the database failed, not writing --out
                raise _damaged(self.path, exc) from None
            first = _first_line(exc, self.path)
            raise StoreError(f"--out {out}: cannot write there ({first}); choose a writable file path") from None
        return self.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def tables(self) -> list[str]:
        return [row[0] for row in self.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]


@contextmanager
def database_errors(path: str | Path, writing: bool = False) -> Iterator[None]:
    """Turn a damaged-file or disk error raised by DuckDB inside the block into the one-line StoreError.

    Other DuckDB errors (SQL mistakes) are bugs and keep their traceback.
    """
    try:
        yield
    except duckdb.Error as exc:
        translated = _translate(Path(path), exc, writing)
        if translated is None:
            raise
        raise translated from None


def _open_for_reading(path: Path) -> duckdb.DuckDBPyConnection:
    if path.is_dir():
        raise _folder(path)
    if not path.exists():
        raise StoreError(f"{path}: no such results database; run `mskbench run SUITE --db {path}` first")
    if path.stat().st_size == 0:
        raise StoreError(f"results database {path} is empty (0 bytes, nothing was ever written to it); "
                         f"run `mskbench run SUITE --db {path}` first")
    con = _connect(path, read_only=True)
    try:
        _check_whole(con, path)
    except BaseException:
        con.close()
        raise
    return con


def _open_for_writing(path: Path, schema: bool) -> duckdb.DuckDBPyConnection:
    if path.is_dir() or not path.exists():
        _check_new_file(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the folder ({exc.strerror}); choose a writable --db path") from None
    elif path.stat().st_size == 0:
        # A zero-byte file (`touch`, `mktemp`) holds no results: start a new database in its place.
        log.info("%s is empty; initialising it as a new results database", path)
        Path(os.path.realpath(path)).unlink()  # through a symlink: the file it names
    else:
        _check_before_appending(path)
    con = _connect(path, read_only=False)
    if schema:
        try:
            with database_errors(path, writing=True):
                # one transaction: all tables or none, and one commit instead of one per statement (half the time)
                con.execute("BEGIN TRANSACTION")
                con.execute(SCHEMA_SQL)
                add_missing_columns(con)
                con.execute("COMMIT")
        except BaseException:
            con.close()
            raise
    return con


def _check_before_appending(path: Path) -> None:
    """Open read-only (so nothing is written) and read every block: a damaged file is refused untouched.

    DuckDB checks a block's checksum only when the block is read, and a run
    appends without reading the earlier tables, so the whole file is hashed
    once here (about a second per 400 MB).
    """
    con = _open_for_reading(path)
    try:
        tables = _base_tables(con)
        for schema, table in tables:
            try:
                con.execute(f"SELECT bit_xor(hash(COLUMNS(*))) FROM {_quoted(schema)}.{_quoted(table)}").fetchall()
            except duckdb.Error as exc:
                translated = _translate(path, exc, writing=False)
                if translated is not None:
                    raise translated from None
                log.debug("%s: cannot read table %s.%s to check it (%s)", path, schema, table, exc)
    finally:
        con.close()


def _check_new_file(path: Path) -> None:
    if path.is_dir():
        raise _folder(path)
    from mskbench.output_paths import OutputPathError, writable_file

    try:
        writable_file(path, "--db")
    except OutputPathError as exc:
        raise StoreError(str(exc)) from None


def _connect(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        message = str(exc).lower()
        if "could not set lock" in message or "conflicting lock" in message:
            raise StoreError(
                f"{path}: the database is locked by another process (another `mskbench run`?); "
                "wait for it to finish or use another --db path"
            ) from None
        if "permission denied" in message and read_only:
            raise StoreError(f"results database {path}: cannot read it ({_first_line(exc, path)}); "
                             "check its permissions") from None
        translated = _translate(path, exc, writing=not read_only)
        raise (translated if translated is not None else _damaged(path, exc)) from None


def _check_whole(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Refuse a file that ends before the last block its tables use (a truncated copy, a disk that filled).

    DuckDB opens such a file and fails only when a query reaches the missing
    block; mskbench would then append to it. The check reads block numbers
    from the catalog, not the data, so it costs milliseconds. Free blocks at
    the end may legitimately be cut off, so only blocks in use count.
    """
    try:
        block_size = con.execute(
            "SELECT block_size FROM pragma_database_size() WHERE database_name = current_database()"
        ).fetchone()
        last = _last_block(con)
    except duckdb.Error as exc:
        translated = _translate(path, exc, writing=False)
        if translated is not None:
            raise translated from None
        log.debug("%s: cannot list the blocks in use (%s); size check skipped", path, exc)
        return
    if block_size is None or last is None:
        return
    expected = _HEADER_BYTES + (last + 1) * int(block_size[0])
    size = path.stat().st_size
    if size < expected:
        raise _damaged(path, f"the file ends after {size} bytes but its tables use block {last}, which ends at "
                             f"byte {expected}; it was cut short (an interrupted copy or a full disk?)")


def _last_block(con: duckdb.DuckDBPyConnection) -> int | None:
    """The highest block number used by a table's data or by the catalog, or None for a fresh file."""
    tables = _base_tables(con)
    last = con.execute("SELECT max(block_id) FROM pragma_metadata_info()").fetchone()[0]
    blocks = [] if last is None else [int(last)]
    for schema, table in tables:
        name = f"{_quoted(schema)}.{_quoted(table)}"
        row = con.execute(
            "SELECT max(block_id), max(list_max(additional_block_ids)) FROM pragma_storage_info(?) WHERE persistent",
            [name],
        ).fetchone()
        blocks += [int(value) for value in row if value is not None]
    return max(blocks, default=None)


def _base_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_catalog = current_database() AND table_type = 'BASE TABLE'"
    ).fetchall()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _translate(path: Path, exc: BaseException, writing: bool) -> StoreError | None:
    """The one-line StoreError for a damaged or unwritable database, or None for other errors."""
    if not isinstance(exc, duckdb.Error):
        return None
    message = str(exc).lower()
    if any(marker in message for marker in _DISK_FULL):
        return StoreError(
            f"results database {path}: cannot write ({_disk_line(exc, path)}); the results committed before "
            f"are kept: free some space (or choose another --db), then {_RESUME_HINT}"
        )
    if _is_damage(path, exc):
        return _damaged(path, exc)
    if writing and any(marker in message for marker in _NOT_WRITABLE):
        return StoreError(f"results database {path}: cannot write it ({_first_line(exc, path)}); "
                          "choose a writable --db path")
    return None


def _is_damage(path: Path, exc: BaseException) -> bool:
    message = str(exc).lower()
    if "corrupt database file" in message or "not a valid duckdb database" in message:
        return True
    names = {str(path).lower(), os.path.abspath(path).lower()}
    return any(marker in message for marker in _DAMAGE) and any(name in message for name in names)


def _damaged(path: Path, cause: BaseException | str) -> StoreError:
    return StoreError(
        f"results database {path} is damaged or not a DuckDB file: {_first_line(cause, path)}; "
        "restore it from a backup or give another --db path (mskbench does not write to a damaged file)"
    )


def _folder(path: Path) -> StoreError:
    return StoreError(f"results database {path} is a folder, not a DuckDB file; "
                      f"give a file path, e.g. --db {path / 'mskbench.duckdb'}")


def _first_line(cause: BaseException | str, path: Path) -> str:
    """The first line of an error, without DuckDB's category prefix and with the path as the user gave it."""
    text = str(cause).strip()
    line = text.splitlines()[0] if text else type(cause).__name__
    for prefix in ("IO Error: ", "TransactionContext Error: ", "FATAL Error: ", "Invalid Error: "):
        if line.startswith(prefix):
            line = line[len(prefix):]
    absolute = os.path.abspath(path)
    if absolute != str(path):
        line = line.replace(absolute, str(path))
    return line.rstrip(".!")


def _disk_line(exc: BaseException, path: Path) -> str:
    """The line naming the disk problem (DuckDB puts "Original error: ..." after "database has been invalidated")."""
    lines = str(exc).strip().splitlines()
    for line in lines:
        if any(marker in line.lower() for marker in _DISK_FULL[:-1]):
            return _first_line(line.strip().removeprefix("Original error: "), path)
    return _first_line(exc, path)


def _rollback_quietly(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Roll back if a transaction is still open; DuckDB ends it by itself when COMMIT fails."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:
        log.debug("%s: rollback after a failed write: %s", path, exc)


#: what the rows of an older database hold in a column added since (see :func:`add_missing_columns`)
_UPGRADE_DEFAULTS = {"round": "0", "reference_extent_used": "false", "allow_training_subjects": "false"}


def add_missing_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Bring tables made by an older release up to :data:`TABLES`, so resume and replay can read them.

    Rows from before `round` existed were all initial prompts, so they read as round 0; rows from before
    `reference_extent_used` read as false (no model of an older release used the reference's extent, and
    `WHERE NOT reference_extent_used` must keep them); cells from before `allow_training_subjects` read as false
    (no older release let a model score its training subjects knowingly); other new columns are NULL. Biomarkers' `round` is the
    exception: their predictions were measured on the final round, which a constant cannot say, so it stays
    NULL and readers take NULL as that (cell, subject)'s final round (:func:`mskbench.stats.data.biomarker_pairs`).
    """
    present = {(t, c) for t, c in con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()"
    ).fetchall()}
    for table, columns in TABLES.items():
        for column, typ in columns:
            if (table, column) not in present:
                upgrade = column in _UPGRADE_DEFAULTS and (table, column) != ("biomarkers", "round")
                default = f" DEFAULT {_UPGRADE_DEFAULTS[column]}" if upgrade else ""
                con.execute(f'ALTER TABLE {table} ADD COLUMN "{column}" {typ}{default}')
                log.info("added column %s.%s to an older database", table, column)


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)

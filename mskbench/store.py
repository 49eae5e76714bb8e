"""The DuckDB results store (DESIGN §5); docs/schema.md documents every column.

Rows arrive as column lists and are inserted through Arrow in bulk. One
(subject, cell) is one transaction, ended by its `subject_status` row, so a
killed run loses at most the subject in flight and `--resume` knows exactly
what is finished.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from mskbench.errors import StoreError

log = logging.getLogger(__name__)

# (table, [(column, duckdb type)]); order matters: bulk inserts are positional.
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
        ("status", "VARCHAR"), ("skip_reason", "VARCHAR"),
    ],
    "subjects": [
        ("run_id", "VARCHAR"), ("dataset", "VARCHAR"), ("subject_id", "VARCHAR"), ("split", "VARCHAR"),
        ("anatomy", "VARCHAR"), ("field_strength_t", "DOUBLE"), ("vendor", "VARCHAR"),
        ("sequence", "VARCHAR"), ("te_ms", "DOUBLE"), ("tr_ms", "DOUBLE"), ("flip_angle_deg", "DOUBLE"),
        ("slice_thickness_mm", "DOUBLE"), ("pixel_spacing_mm", "DOUBLE"), ("acquisition_type", "VARCHAR"),
        ("sex", "VARCHAR"), ("age_years", "DOUBLE"), ("weight_kg", "DOUBLE"), ("spacing", "JSON"),
        ("shape", "JSON"), ("n_slices", "INTEGER"), ("source_sha256", "JSON"),
    ],
    "subject_status": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("dataset", "VARCHAR"), ("subject_id", "VARCHAR"),
        ("status", "VARCHAR"), ("reason", "VARCHAR"), ("finished_at", "TIMESTAMP"),
    ],
    "prompts": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("slice_index", "INTEGER"),
        ("prompt_index", "INTEGER"), ("label", "INTEGER"), ("instance", "INTEGER"), ("kind", "VARCHAR"),
        ("x_min", "DOUBLE"), ("y_min", "DOUBLE"), ("x_max", "DOUBLE"), ("y_max", "DOUBLE"),
        ("points", "JSON"), ("point_labels", "JSON"), ("prompter", "VARCHAR"), ("seed", "BIGINT"),
        ("score", "DOUBLE"), ("detector_class", "INTEGER"), ("clipped", "BOOLEAN"),
    ],
    "slice_metrics": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("slice_index", "INTEGER"),
        ("label", "INTEGER"), ("label_name", "VARCHAR"), ("case_state", "VARCHAR"),
        ("area_fraction", "DOUBLE"), ("size_bin", "VARCHAR"), ("metric", "VARCHAR"), ("value", "DOUBLE"),
        ("substituted", "BOOLEAN"),
    ],
    "subject_metrics": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("label", "INTEGER"),
        ("label_name", "VARCHAR"), ("case_state", "VARCHAR"), ("metric", "VARCHAR"), ("value", "DOUBLE"),
        ("substituted", "BOOLEAN"), ("slice_mean", "DOUBLE"), ("n_slices", "INTEGER"),
    ],
    "biomarkers": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("structure", "VARCHAR"),
        ("biomarker", "VARCHAR"), ("method", "VARCHAR"), ("source", "VARCHAR"), ("instance", "INTEGER"),
        ("value", "DOUBLE"), ("unit", "VARCHAR"),
    ],
    "timings": [
        ("run_id", "VARCHAR"), ("cell_id", "VARCHAR"), ("subject_id", "VARCHAR"), ("slice_index", "INTEGER"),
        ("stage", "VARCHAR"), ("seconds", "DOUBLE"), ("peak_memory_mb", "DOUBLE"),
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


class Store:
    """One DuckDB file, opened for writing by one run at a time."""

    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{self.path}: cannot create the folder ({exc.strerror}); choose a writable --db path") from None
        elif not self.path.exists():
            raise StoreError(f"{self.path}: no such results database; run `mskbench run SUITE --db {self.path}` first")
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            message = str(exc)
            if "lock" in message.lower():
                raise StoreError(
                    f"{self.path}: the database is locked by another process (another `mskbench run`?); "
                    "wait for it to finish or use another --db path"
                ) from None
            raise StoreError(f"{self.path}: cannot open the database ({message.splitlines()[0]}); choose a writable --db path") from None
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: not a DuckDB database ({str(exc).splitlines()[0]}); choose another --db path") from None
        if not read_only:
            self.con.execute(SCHEMA_SQL)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, buffer: RowBuffer) -> None:
        """Insert every buffered table in one transaction (all or nothing)."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            for table in TABLES:
                arrow_table = buffer.arrow(table)
                if arrow_table is None:
                    continue
                self.con.register("_incoming", arrow_table)
                self.con.execute(f"INSERT INTO {table} SELECT * FROM _incoming")
                self.con.unregister("_incoming")
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> duckdb.DuckDBPyConnection:
        return self.con.execute(sql, list(params))

    def finished_pairs(self, run_id: str) -> set[tuple[str, str]]:
        """(cell_id, subject_id) pairs already written, for --resume."""
        rows = self.con.execute(
            "SELECT cell_id, subject_id FROM subject_status WHERE run_id = ?", [run_id]
        ).fetchall()
        return {(cell, subject) for cell, subject in rows}

    def set_run_status(self, run_id: str, status: str) -> None:
        self.con.execute(
            "UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", [status, utcnow(), run_id]
        )

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
            first = str(exc).splitlines()[0]
            raise StoreError(f"--out {out}: cannot write there ({first}); choose a writable file path") from None
        return self.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def tables(self) -> list[str]:
        return [row[0] for row in self.con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]


def _sql_string(text: str) -> str:
    return text.replace("'", "''")


def to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)

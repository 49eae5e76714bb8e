"""The `file_metrics` DuckDB table that `mskbench metrics compute --db` appends to.

Separate from the run tables (mskbench/store.py): these rows come from files
a user brought, not from a suite run, so they carry file paths and a batch id
instead of run and cell ids. Columns are documented in docs/metrics.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from mskbench.errors import StoreError

TABLE = "file_metrics"
COLUMNS: tuple[tuple[str, str], ...] = (
    ("batch_id", "VARCHAR"),
    ("scored_at", "TIMESTAMP"),
    ("case_id", "VARCHAR"),
    ("reference_path", "VARCHAR"),
    ("prediction_path", "VARCHAR"),
    ("prediction_missing", "BOOLEAN"),
    ("label", "INTEGER"),
    ("case_state", "VARCHAR"),
    ("metric", "VARCHAR"),
    ("value", "DOUBLE"),
    ("substituted", "BOOLEAN"),
    ("nsd_tolerance_mm", "DOUBLE"),
    ("spacing", "JSON"),
)
CREATE_SQL = f"CREATE TABLE IF NOT EXISTS {TABLE} (" + ", ".join(f"{n} {t}" for n, t in COLUMNS) + ")"


def write_file_metrics(
    db_path: str | Path, rows: pd.DataFrame, spacings: dict[str, Sequence[float]], nsd_tolerance_mm: float
) -> str:
    """Append ``rows`` (from :func:`mskbench.metrics.files.to_rows`) in one transaction; return the batch id.

    ``spacings`` maps reference_path to the reference spacing in mm.
    """
    import duckdb

    batch_id = uuid.uuid4().hex
    table = rows.copy()
    table.insert(0, "batch_id", batch_id)
    table.insert(1, "scored_at", datetime.now(timezone.utc).replace(tzinfo=None))
    table["nsd_tolerance_mm"] = float(nsd_tolerance_mm)
    table["spacing"] = table["reference_path"].map(lambda path: json.dumps([float(s) for s in spacings[path]]))
    table = table[[name for name, _ in COLUMNS]]
    from mskbench.store import Store

    try:
        with Store.open_for_writing(db_path, schema=False) as store, store.transaction() as con:
            con.execute(CREATE_SQL)
            existing = [r[0] for r in con.execute(f"DESCRIBE {TABLE}").fetchall()]
            if existing != [name for name, _ in COLUMNS]:
                raise StoreError(
                    f"{db_path}: table {TABLE} has columns {existing}, not the expected ones; use another --db file"
                )
            con.register("incoming", table)
            con.execute(f"INSERT INTO {TABLE} SELECT * FROM incoming")
    except duckdb.Error as exc:
        raise StoreError(f"{db_path}: cannot write table {TABLE} ({str(exc).splitlines()[0]})") from None
    return batch_id

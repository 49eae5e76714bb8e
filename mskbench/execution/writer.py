"""The single writer: one transaction per (subject, cell), ended by its `subject_status` row (DESIGN §5)."""

from __future__ import annotations

import logging

from mskbench.execution.records import CellRecords
from mskbench.store import RowBuffer, Store, utcnow

log = logging.getLogger(__name__)


def write_records(store: Store, run_id: str, records: CellRecords) -> None:
    """Commit the rows of one (subject, cell) with its `done` status, all or nothing."""
    buffer = RowBuffer()
    for table, rows in records.tables.items():
        for row in rows:
            buffer.add(table, run_id=run_id, **row)
    buffer.add(
        "subject_status", run_id=run_id, cell_id=records.cell_id, dataset=records.dataset,
        subject_id=records.subject_id, status="done", reason=None, finished_at=utcnow(),
    )
    store.write(buffer)
    log.info("committed subject %s cell %s", records.subject_id, records.cell_id)

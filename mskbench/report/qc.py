"""QC thumbnails: the few slices a report can show without re-loading a dataset.

The results database holds numbers, not images, and re-loading a dataset
(and re-running a model to get its mask) at report time would make the
report depend on files and checkpoints that may be gone. So the runner may
store, for a handful of sampled slices per cell, a small PNG of the slice and
of the reference and predicted label maps in the optional table `qc_slices`
(DDL in `mskbench.store.TABLES`). The report overlays the prompt boxes recorded in `prompts` for
the same slice. A database without that table gets a note saying so, never
a made-up picture.
"""

from __future__ import annotations

import cv2
import duckdb
import numpy as np
import pandas as pd

from mskbench.store import TABLES

QC_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS qc_slices ("
    + ", ".join(f"{name} {kind}" for name, kind in TABLES["qc_slices"])
    + ")"
)
MAX_SIDE = 256


def _png(array: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError("PNG encoding failed")
    return encoded.tobytes()


def window_uint8(image: np.ndarray) -> np.ndarray:
    """The slice as uint8 grey levels over its 1st-99th percentile window (what every QC picture shows)."""
    image = np.asarray(image, dtype=float)
    low, high = np.percentile(image, [1, 99])
    scaled = np.clip((image - low) / (high - low if high > low else 1.0), 0, 1)
    return (scaled * 255).astype(np.uint8)


def encode_qc_slice(image: np.ndarray, reference: np.ndarray, prediction: np.ndarray) -> dict[str, object]:
    """Values for one `qc_slices` row: the slice as uint8 PNG (1st-99th percentile window), label maps as PNG.

    Slices larger than MAX_SIDE are shrunk (nearest neighbour for labels);
    `scale` (thumbnail pixels per slice pixel) maps the prompt boxes onto it.
    """
    windowed = window_uint8(image)
    factor = min(1.0, MAX_SIDE / max(image.shape))
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    shrink = (lambda a, interp: cv2.resize(a, size, interpolation=interp)) if factor < 1 else (lambda a, _: a)
    return {
        "scale": factor,
        "image": _png(shrink(windowed, cv2.INTER_AREA)),
        "reference": _png(shrink(np.asarray(reference, dtype=np.uint8), cv2.INTER_NEAREST)),
        "prediction": _png(shrink(np.asarray(prediction, dtype=np.uint8), cv2.INTER_NEAREST)),
    }


def decode(blob: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(blob, dtype=np.uint8), cv2.IMREAD_UNCHANGED)


def qc_slices(con: duckdb.DuckDBPyConnection, per_cell: int = 2) -> pd.DataFrame:
    """The first `per_cell` stored QC slices of every cell with the cell's names."""
    return con.execute(
        """
        SELECT c.dataset, c.model, c.prompter, q.run_id, q.cell_id, q.subject_id, q.slice_index, q.scale,
               q.image, q.reference, q.prediction
        FROM qc_slices q JOIN cells c USING (run_id, cell_id)
        QUALIFY row_number() OVER (PARTITION BY q.run_id, q.cell_id ORDER BY q.subject_id, q.slice_index) <= ?
        ORDER BY c.dataset, c.model, c.prompter, q.subject_id, q.slice_index
        """,
        [per_cell],
    ).df()


def prompt_boxes(con: duckdb.DuckDBPyConnection, run_id: str, cell_id: str, subject_id: str,
                 slice_index: int) -> list[tuple[float, float, float, float]]:
    rows = con.execute(
        """SELECT x_min, y_min, x_max, y_max FROM prompts
           WHERE run_id = ? AND cell_id = ? AND subject_id = ? AND slice_index = ? AND x_min IS NOT NULL""",
        [run_id, cell_id, subject_id, slice_index],
    ).fetchall()
    return [tuple(map(float, row)) for row in rows]

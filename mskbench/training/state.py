"""What a training run keeps in OUT: the resumable state, the best weights, the per-epoch metrics table.

- ``OUT/resume.pt``: after every epoch, the model, optimizer, scheduler and
  torch RNG states, the best-so-far bookkeeping and the metrics rows, so
  ``--resume`` continues after the last completed epoch and ends with the
  checkpoint an uninterrupted run writes (every other random draw of an
  epoch is seeded by (recipe seed, epoch), so nothing else needs restoring).
- ``OUT/best.pt``: the state dict of the epoch with the best val Dice so far.
- ``OUT/model.pt`` + ``OUT/card.json``: written once, at the end (:mod:`.card`).
- ``OUT/metrics.parquet``: one row per epoch (epoch 0: the untrained model),
  written by DuckDB.

Every file is written to a temporary name and renamed into place, so a kill
leaves the previous complete file, never half of one. Everything is read back
with ``torch.load(weights_only=True)``: RNG states are tensors, the rest plain
numbers, strings, lists and dicts.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mskbench.errors import CheckpointError

RESUME_NAME = "resume.pt"
BEST_NAME = "best.pt"
METRICS_NAME = "metrics.parquet"
METRIC_COLUMNS = ("epoch", "train_loss", "val_dice", "lr", "seconds", "best")


def save_atomic(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename it into place."""
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as handle:
        torch.save(obj, handle)
    os.chmod(handle.name, 0o644)  # a temporary file is private; the outputs are ordinary files
    os.replace(handle.name, path)


def load_state(path: Path) -> dict[str, Any]:
    """A file this module wrote, loaded without running code; damage is one line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or foreign files
        raise CheckpointError(f"{path}: cannot be read as a training state ({type(exc).__name__}); delete it and "
                              "train without --resume") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a training state written by `mskbench train`; delete it")
    return state


def write_metrics(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """The per-epoch rows as a Parquet table, through DuckDB (replaced whole: a few rows per epoch)."""
    import duckdb
    import pandas as pd

    frame = pd.DataFrame(list(rows), columns=list(METRIC_COLUMNS))
    tmp = path.with_name(path.name + ".tmp")
    quoted = str(tmp).replace("'", "''")
    with duckdb.connect() as con:
        con.register("epochs", frame)
        con.execute(f"COPY (SELECT * FROM epochs ORDER BY epoch) TO '{quoted}' (FORMAT parquet)")
    os.replace(tmp, path)

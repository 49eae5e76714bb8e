"""Rich progress for `mskbench train`: a bar per phase (subjects, embeddings, each epoch's batches) with the
running loss, and one line per epoch with its loss and val Dice (TensorBoard-free; plain lines in pipes and CI)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    """Live bars on an interactive terminal; the per-epoch lines always (unless disabled)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._console = Console(stderr=True, highlight=False)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
            disable=not (enabled and sys.stderr.isatty()),
            transient=True,
        )
        self._task = None

    def __enter__(self) -> TrainProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def start(self, description: str, total: int) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
        self._task = self._progress.add_task(description, total=total, loss="")

    def advance(self, loss: float | None = None) -> None:
        if self._task is not None:
            self._progress.update(self._task, advance=1, loss="" if loss is None else f"loss {loss:.4f}")

    def epoch_done(self, epoch: int, loss: float, val_dice: float, best: float) -> None:
        if self.enabled:
            self._console.print(f"epoch {epoch}: train loss {loss:.4f}, val Dice {val_dice:.4f} (best {best:.4f})")

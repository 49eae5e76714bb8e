"""Rich progress bars for a run: subjects per dataset and slices per subject, with ETA."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RunProgress:
    """Shown on an interactive terminal; silent in pipes and CI logs."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not self.enabled,
            transient=False,
        )
        self._subjects = None
        self._slices = None

    def __enter__(self) -> RunProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(*exc)

    def start_dataset(self, name: str, n_subjects: int) -> None:
        if self._subjects is not None:
            self._progress.remove_task(self._subjects)
        self._subjects = self._progress.add_task(f"{name}: subjects", total=n_subjects)

    def advance_subject(self) -> None:
        if self._subjects is not None:
            self._progress.advance(self._subjects)

    def start_slices(self, subject_id: str, n_slices: int) -> None:
        if self._slices is not None:
            self._progress.remove_task(self._slices)
        self._slices = self._progress.add_task(f"  {subject_id}: slices", total=n_slices)

    def advance_slice(self) -> None:
        if self._slices is not None:
            self._progress.advance(self._slices)

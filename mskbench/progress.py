"""Rich progress bars for a run: subjects per dataset and slices per subject, with ETA."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class RunProgress:
    """Live bars on an interactive terminal; one line per finished subject in pipes and CI logs."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and sys.stderr.isatty()
        self.plain = enabled and not self.enabled
        self._dataset = ""
        self._total = 0
        self._done = 0
        self._console = Console(stderr=True, highlight=False)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._console,
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
        self._dataset, self._total, self._done = name, n_subjects, 0
        if self._subjects is not None:
            self._progress.remove_task(self._subjects)
        self._subjects = self._progress.add_task(f"{name}: subjects", total=n_subjects)

    def advance_subject(self) -> None:
        self._done += 1
        if self.plain:
            self._console.print(f"{self._dataset}: {self._done}/{self._total} subjects")
        if self._subjects is not None:
            self._progress.advance(self._subjects)

    def start_slices(self, subject_id: str, n_slices: int) -> None:
        if self._slices is not None:
            self._progress.remove_task(self._slices)
        self._slices = self._progress.add_task(f"  {subject_id}: slices", total=n_slices)

    def advance_slice(self) -> None:
        if self._slices is not None:
            self._progress.advance(self._slices)

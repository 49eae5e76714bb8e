"""The retrying loop every worker executor shares: one task per worker at a time, a dead worker's task again.

A worker that dies mid-task (killed, out of memory) never delivered its
outcome, so nothing of the task was written; the task goes back to the
front of the queue on a fresh worker, at most ``retries`` times, then comes
out as a :class:`TaskFailure` with the reason. An exception raised by the
task itself (bad data, a plugin bug) is no death: it stops the run, as it
would in-process.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from mskbench.execution.subject_task import SubjectOutcome, SubjectTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskFailure:
    """A task whose workers died every time it was tried."""

    task: SubjectTask
    reason: str


@dataclass(frozen=True)
class Finished:
    """A worker's answer: its outcome, or the reason it died (``outcome`` None)."""

    worker: Any
    outcome: SubjectOutcome | None = None
    died: str = ""


class Workers(Protocol):
    """What an executor provides: start a worker, give it a task, wait for answers, stop it."""

    def start(self) -> Any: ...

    def submit(self, worker: Any, task: SubjectTask) -> None: ...

    def wait(self, busy: list[Any]) -> list[Finished]: ...

    def stop(self, worker: Any, busy: bool = False) -> None: ...  # busy: it is mid-task; do not wait for it


class RetryingPool:
    """Up to ``size`` workers kept between calls of :meth:`run`; ``deaths`` counts each task's dead workers."""

    def __init__(self, workers: Workers, size: int, retries: int):
        self.workers, self.size, self.retries = workers, size, retries
        self.idle: list[Any] = []
        self.deaths: dict[tuple[str, str], int] = {}

    def run(self, tasks: Iterable[SubjectTask]) -> Iterator[SubjectOutcome | TaskFailure]:
        """Yield each task's outcome (or failure) exactly once, in the order workers finish."""
        queue = deque(tasks)
        while len(self.idle) < min(self.size, len(queue)):
            self.idle.append(self.workers.start())
        running: dict[Any, SubjectTask] = {}
        try:
            while queue or running:
                while queue and self.idle:
                    worker, task = self.idle.pop(), queue.popleft()
                    self.workers.submit(worker, task)
                    running[worker] = task
                for answer in self.workers.wait(list(running)):
                    task = running.pop(answer.worker)
                    if answer.outcome is not None:
                        self.idle.append(answer.worker)
                        yield answer.outcome
                        continue
                    self.workers.stop(answer.worker)
                    failure = self._died(task, answer.died)
                    if failure is not None:
                        yield failure
                    else:
                        queue.appendleft(task)
                    if queue:
                        self.idle.append(self.workers.start())
        finally:  # an error or Ctrl-C: a worker mid-task is stopped, its task stays pending for --resume
            for worker in running:
                self.workers.stop(worker, busy=True)

    def _died(self, task: SubjectTask, reason: str) -> TaskFailure | None:
        deaths = self.deaths[task.key] = self.deaths.get(task.key, 0) + 1
        if deaths > self.retries:
            log.warning("subject %s: its worker died %d times (%s); recorded as failed", task.subject_id, deaths, reason)
            return TaskFailure(task, f"its worker died {deaths} times; last: {reason}")
        log.warning("subject %s: its worker died (%s); retrying", task.subject_id, reason)
        return None

    def close(self) -> None:
        for worker in self.idle:
            self.workers.stop(worker)
        self.idle = []

    def __enter__(self) -> RetryingPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

"""The `processes` executor: N spawned worker processes, each holding the plan and the CPU models once.

Workers are started with ``spawn`` (a forked child of a process with torch
or BLAS threads can deadlock). Each worker has its own pipe, so the driver
knows which task a dead worker had; workers ignore Ctrl-C (the driver stops
them) and exit when the driver's end of the pipe closes, as it does when
the driver is killed.
"""

from __future__ import annotations

import multiprocessing
import pickle
import signal
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from mskbench.execution.executors import RETRIES
from mskbench.execution.executors.pool import Finished, RetryingPool
from mskbench.execution.subject_task import SubjectTask, run_subject_task

_STOP_SECONDS = 5.0


def _serve(conn: Connection, payload: bytes) -> None:
    """A worker's life: receive tasks until the driver closes the pipe; answer each with its outcome or error."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    state = pickle.loads(payload)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = ("ok", run_subject_task(state, task))
        except Exception as exc:  # the driver re-raises it: a task's error stops the run as it would in-process
            answer = ("error", exc, traceback.format_exc())
        try:
            conn.send(answer)
        except (BrokenPipeError, OSError):
            return
        except Exception:  # the exception itself does not pickle: send its text
            conn.send(("error", RuntimeError(answer[2]), answer[2]))


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: Connection

    @property
    def pid(self) -> int | None:
        return self.process.pid


class _ProcessWorkers:
    def __init__(self, payload: bytes):
        self.payload = payload
        self.context = multiprocessing.get_context("spawn")

    def start(self) -> _Worker:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_serve, args=(theirs, self.payload), name="mskbench-worker")
        process.start()
        theirs.close()
        return _Worker(process, ours)

    def submit(self, worker: _Worker, task: SubjectTask) -> None:
        worker.conn.send(task)

    def wait(self, busy: list[_Worker]) -> list[Finished]:
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
        out = []
        for worker in busy:
            if worker.conn in ready or worker.process.sentinel in ready:
                out.append(self._answer(worker))
        return out

    def _answer(self, worker: _Worker) -> Finished:
        try:
            if worker.conn.poll():  # an answer sent just before the worker ended still counts
                message = worker.conn.recv()
                if message[0] == "ok":
                    return Finished(worker, outcome=message[1])
                exc, text = message[1], message[2]
                exc.add_note(f"in worker process {worker.pid}:\n{text}")
                raise exc
        except EOFError:
            pass
        worker.process.join(_STOP_SECONDS)
        return Finished(worker, died=_exit_reason(worker.pid, worker.process.exitcode))

    def stop(self, worker: _Worker, busy: bool = False) -> None:
        worker.conn.close()
        worker.process.join(0 if busy else _STOP_SECONDS)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


def _exit_reason(pid: int | None, code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"worker process {pid} was killed by {name}{hint}"
    return f"worker process {pid} exited with code {code}"


class ProcessExecutor(RetryingPool):
    """``with ProcessExecutor(payload, n) as ex: for outcome in ex.run(tasks): ...``"""

    def __init__(self, payload: bytes, workers: int, retries: int = RETRIES):
        super().__init__(_ProcessWorkers(payload), workers, retries)

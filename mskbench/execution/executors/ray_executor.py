"""The `ray` executor: one Ray actor per worker CPU, each holding the plan and the CPU models once.

Without an address Ray starts locally with ``num_cpus`` = the worker count
(quiet: no dashboard, worker logs not forwarded); with one it joins that
cluster, where mskbench must be installed on every node, and starts one
actor per cluster CPU unless --workers says otherwise. Each actor asks Ray
for one CPU. A dead actor (killed node, out of memory) is replaced and its
task retried by :class:`~mskbench.execution.executors.pool.RetryingPool`.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from mskbench.errors import UserError
from mskbench.execution.executors import RETRIES, machine_cores
from mskbench.execution.executors.pool import Finished, RetryingPool
from mskbench.execution.subject_task import SubjectTask, run_subject_task

INSTALL = 'pip install "mskbench[distributed]"'
_CONNECT_SECONDS = 5.0


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError(f"--executor ray: Ray is not installed; install it with {INSTALL}, "
                        "or use --executor processes") from None
    return ray


def check_reachable(address: str) -> None:
    """Refuse an address nobody answers at within seconds, instead of Ray's minute of retries."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=_CONNECT_SECONDS):
            return
    except (OSError, ValueError) as exc:
        raise UserError(
            f"--ray-address {address}: no Ray cluster answers there ({exc}); start one with `ray start --head` "
            "and pass the address it prints (host:6379), or leave out --ray-address to start Ray on this machine"
        ) from None


def _start_ray(ray: Any, address: str | None, workers: int | None) -> None:
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING, "configure_logging": True}
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError) as exc:
            raise UserError(f"--ray-address {address}: cannot join the Ray cluster there ({exc})") from None
        return
    # local workers import the very mskbench the driver runs (a checkout, not only an installed copy)
    source = str(Path(__file__).resolve().parents[3])
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (source, *sys.path) if p)
    ray.init(num_cpus=workers or machine_cores(), include_dashboard=False, **quiet)


class _RayWorkers:
    def __init__(self, ray: Any, payload: bytes):
        self.ray = ray

        @ray.remote(num_cpus=1, max_restarts=0)
        class SubjectWorker:
            def __init__(self, payload: bytes):
                import pickle

                self.state = pickle.loads(payload)

            def run(self, task: SubjectTask):
                return run_subject_task(self.state, task)

        self.actor_class = SubjectWorker
        self.payload = ray.put(payload)
        self.pending: dict[Any, Any] = {}  # worker -> the ObjectRef of its task

    def start(self) -> Any:
        return self.actor_class.remote(self.payload)

    def submit(self, worker: Any, task: SubjectTask) -> None:
        self.pending[worker] = worker.run.remote(task)

    def wait(self, busy: list[Any]) -> list[Finished]:
        by_ref = {self.pending[w]: w for w in busy}
        ready, _ = self.ray.wait(list(by_ref), num_returns=1)
        out = []
        for ref in ready:
            worker = by_ref[ref]
            del self.pending[worker]
            try:
                out.append(Finished(worker, outcome=self.ray.get(ref)))
            except self.ray.exceptions.RayTaskError as exc:  # the task raised: stop the run with its own error
                raise exc.cause if isinstance(exc.cause, Exception) else exc from None
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError,
                    self.ray.exceptions.ObjectLostError) as exc:
                out.append(Finished(worker, died=f"Ray worker died: {type(exc).__name__}: {str(exc).splitlines()[0]}"))
        return out

    def stop(self, worker: Any, busy: bool = False) -> None:
        self.pending.pop(worker, None)
        self.ray.kill(worker, no_restart=True)


class RayExecutor(RetryingPool):
    """Ray started (or joined) on entry and shut down (or left) on exit."""

    def __init__(self, payload: bytes, workers: int | None, address: str | None, retries: int = RETRIES):
        self.ray = import_ray()
        _start_ray(self.ray, address, workers)
        size = workers or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        super().__init__(_RayWorkers(self.ray, payload), size, retries)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.ray.shutdown()

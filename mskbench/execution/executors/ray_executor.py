"""The `ray` executor: one Ray actor per worker CPU, each holding the plan and the CPU models once; one device
actor per GPU holding each device model once (:mod:`.device_actors`).

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
from mskbench.execution.executors.device_actors import DeviceActors, DeviceState, cluster_gpus
from mskbench.execution.executors.pool import Finished, RetryingPool
from mskbench.execution.subject_task import SubjectOutcome, SubjectTask, run_subject_task

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
    """CPU actors running subject tasks; with ``devices``, their deferred units go to the GPU actors before the
    task counts as finished, so the driver receives every record of the subject at once."""

    def __init__(self, ray: Any, payload: bytes, devices: DeviceActors | None = None):
        self.ray = ray
        self.devices = devices
        self.on_device: dict[Any, tuple[SubjectOutcome, dict[Any, tuple[int, int]], dict[int, list]]] = {}

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
        by_ref = {self.pending[w]: w for w in busy if w in self.pending}
        for worker, (_, refs, _) in self.on_device.items():
            by_ref.update(dict.fromkeys(refs, worker))
        ready, _ = self.ray.wait(list(by_ref), num_returns=1)
        out = []
        for ref in ready:
            worker = by_ref[ref]
            try:
                finished = self._device_done(worker, ref) if worker in self.on_device else self._task_done(worker, ref)
            except self.ray.exceptions.RayTaskError as exc:  # the task raised: stop the run with its own error
                raise exc.cause if isinstance(exc.cause, Exception) else exc from None
            except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError,
                    self.ray.exceptions.ObjectLostError) as exc:
                finished = Finished(worker, died=f"Ray worker died: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            if finished is not None:
                out.append(finished)
        return out

    def _task_done(self, worker: Any, ref: Any) -> Finished | None:
        """A CPU actor's outcome; its deferred units go to the device actors (None: not finished yet)."""
        del self.pending[worker]
        outcome = self.ray.get(ref)
        if self.devices is None or not outcome.deferred:
            return Finished(worker, outcome=outcome)
        refs = {}
        for position, unit in enumerate(outcome.deferred):
            unit_ref, index = self.devices.submit(unit)
            refs[unit_ref] = (position, index)
        outcome.deferred = []
        self.on_device[worker] = (outcome, refs, {})
        return None

    def _device_done(self, worker: Any, ref: Any) -> Finished | None:
        """One deferred unit's records; the task is finished when its last unit is (records in unit order)."""
        outcome, refs, done = self.on_device[worker]
        position, index = refs.pop(ref)
        self.devices.done(index)
        try:
            done[position] = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError):
            self.devices.replace(index)
            self._abandon(worker)
            raise
        if refs:
            return None
        del self.on_device[worker]
        for position in sorted(done):
            outcome.records.extend(done[position])
        return Finished(worker, outcome=outcome)

    def _abandon(self, worker: Any) -> None:
        """Forget a task's units still on the device (their results are not wanted: the task is retried)."""
        _, refs, _ = self.on_device.pop(worker, (None, {}, None))
        for _, index in refs.values():
            self.devices.done(index)

    def stop(self, worker: Any, busy: bool = False) -> None:
        self.pending.pop(worker, None)
        if worker in self.on_device:
            self._abandon(worker)
        self.ray.kill(worker, no_restart=True)


class RayExecutor(RetryingPool):
    """Ray started (or joined) on entry and shut down (or left) on exit; one device actor per cluster GPU when the
    run has device models (``device_state``), else their units run in the driver."""

    def __init__(self, payload: bytes, workers: int | None, address: str | None, retries: int = RETRIES,
                 device_state: DeviceState | None = None):
        self.ray = import_ray()
        _start_ray(self.ray, address, workers)
        size = workers or max(1, int(self.ray.cluster_resources().get("CPU", 1)))
        gpus = cluster_gpus(self.ray) if device_state is not None else 0
        self.devices = DeviceActors(self.ray, device_state, gpus) if gpus else None
        super().__init__(_RayWorkers(self.ray, payload, self.devices), size, retries)

    def close(self) -> None:
        try:
            super().close()
            if self.devices is not None:
                self.devices.close()
        finally:
            self.ray.shutdown()

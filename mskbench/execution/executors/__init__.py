"""Executors (DESIGN §12): where a run's subject tasks are computed; the driver always writes.

``local`` is the in-process loop of :mod:`mskbench.runner`. ``processes``
(:mod:`.processes`) and ``ray`` (:mod:`.ray_executor`) hand
:class:`~mskbench.execution.subject_task.SubjectTask`\\ s to workers through
the retrying loop of :mod:`.pool`.
"""

from __future__ import annotations

import os
import pickle
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from mskbench.errors import PluginError, UserError
from mskbench.execution.subject_task import WorkerState

if TYPE_CHECKING:
    from mskbench.execution.executors.device_actors import DeviceState

RETRIES = 2  # a unit whose worker dies is run at most 1 + RETRIES times, then recorded as failed


def machine_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_workers(workers: int | None, where: str) -> None:
    """Between 1 and the machine's cores × 4: more only thrash memory and the scheduler."""
    most = machine_cores() * 4
    if workers is not None and not 1 <= workers <= most:
        raise UserError(f"{where} {workers}: must be between 1 and {most} (this machine's {machine_cores()} cores × 4)")


def pickled_state(state: WorkerState) -> bytes:
    """The state every worker receives, pickled once; a model that cannot travel is named."""
    for name, model in state.models.items():
        try:
            pickle.dumps(model)
        except Exception as exc:  # any pickling failure: lambdas, locks, open files, C handles
            raise PluginError(
                f"models.{name}: its model ({type(model).__name__}) cannot be pickled for a worker process "
                f"({type(exc).__name__}: {exc}); run this suite with --executor local, which needs no pickling"
            ) from None
    try:
        return pickle.dumps(state)
    except Exception as exc:
        raise PluginError(
            f"the suite's plugins cannot be pickled for a worker process ({type(exc).__name__}: {exc}); "
            "run it with --executor local, which needs no pickling"
        ) from None


def open_executor(name: str, state: WorkerState, workers: int | None, ray_address: str | None,
                  device_state: DeviceState | None = None) -> AbstractContextManager:
    """A started executor whose ``run(tasks)`` yields outcomes and failures; leaving it stops every worker.

    ``device_state`` (ray only) names the models that need the device: one Ray actor per GPU runs them."""
    payload = pickled_state(state)
    if name == "processes":
        from mskbench.execution.executors.processes import ProcessExecutor

        return ProcessExecutor(payload, workers or machine_cores())
    from mskbench.execution.executors.ray_executor import RayExecutor

    return RayExecutor(payload, workers, ray_address, device_state=device_state)


def check_executor(name: str, workers: int | None, ray_address: str | None) -> None:
    """Bad executor options as one line each, before the run starts."""
    check_workers(workers, "--workers")
    if ray_address and name != "ray":
        raise UserError(f"--ray-address {ray_address}: only --executor ray joins a Ray cluster; add --executor ray")
    if name == "ray":
        from mskbench.execution.executors.ray_executor import check_reachable, import_ray

        import_ray()
        if ray_address:
            check_reachable(ray_address)

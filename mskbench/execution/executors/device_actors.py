"""Ray device actors: one actor per GPU (Ray resource ``{"GPU": 1}``), each holding every device model once.

With ``--executor ray --device cuda`` the CPU actors load, preprocess and
prompt each subject and run the CPU models; the units of torch models on the
device come back deferred (:class:`~mskbench.execution.subject_task.SubjectOutcome`),
and instead of running them in the driver the ray executor hands each to the
least busy device actor. Ray gives each actor one GPU and shows it only that
one (``CUDA_VISIBLE_DEVICES``), so inside an actor the run's ``cuda:N`` is
plain ``cuda``. Each actor builds its models once, through the same
:func:`~mskbench.execution.model_build.build_planned_model` the driver uses,
and runs the encode-ahead pipeline like any CUDA process.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

from mskbench.execution.unit import Unit, UnitContext
from mskbench.plan import Plan


@dataclass(frozen=True)
class DeviceState:
    """What every device actor holds: the plan, the unit context, the device models' names, its device."""

    plan: Plan
    context: UnitContext
    models: tuple[str, ...]
    device: str


def actor_device(run_device: str) -> str:
    """The device a model is built on inside an actor: ``cuda`` (its one visible GPU) for any ``cuda:N``."""
    return "cuda" if run_device.startswith("cuda") else run_device


def cluster_gpus(ray: Any) -> int:
    """Whole GPUs the Ray cluster offers (0 on a machine without any)."""
    return int(ray.cluster_resources().get("GPU", 0))


class DeviceActors:
    """``count`` actors, one GPU each; :meth:`submit` sends a unit to the one with the fewest in flight."""

    def __init__(self, ray: Any, state: DeviceState, count: int):
        self.ray = ray

        @ray.remote(num_gpus=1, num_cpus=0, max_restarts=0)  # no CPU slot: the CPU actors hold them all
        class DeviceWorker:
            def __init__(self, payload: bytes):
                from mskbench.execution.model_build import build_planned_model

                state = pickle.loads(payload)
                self.context = state.context
                self.models = {name: build_planned_model(state.plan, name, state.device) for name in state.models}
                self.units = 0

            def placement(self) -> dict[str, Any]:
                """Which GPU Ray gave this actor, which models it holds, how many units it ran (for tests)."""
                import os

                return {"gpu_ids": [str(i) for i in ray.get_gpu_ids()], "pid": os.getpid(),
                        "models": sorted(self.models), "units": self.units}

            def run(self, unit: Unit):
                from mskbench.execution.unit import run_unit

                self.units += 1
                return run_unit(unit, self.context, self.models[unit.model])

        self.actor_class = DeviceWorker
        self.payload = ray.put(pickle.dumps(state))
        self.actors = [DeviceWorker.remote(self.payload) for _ in range(count)]
        self.in_flight = [0] * count

    def submit(self, unit: Unit) -> tuple[Any, int]:
        """The ObjectRef of the unit's records, and the index of the actor running it."""
        index = min(range(len(self.actors)), key=self.in_flight.__getitem__)
        self.in_flight[index] += 1
        return self.actors[index].run.remote(unit), index

    def done(self, index: int) -> None:
        self.in_flight[index] -= 1

    def replace(self, index: int) -> None:
        """A dead actor's GPU gets a fresh actor (which builds the models again)."""
        self.ray.kill(self.actors[index], no_restart=True)
        self.actors[index] = self.actor_class.remote(self.payload)
        self.in_flight[index] = 0

    def placements(self) -> list[dict[str, Any]]:
        return self.ray.get([actor.placement.remote() for actor in self.actors])

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)
        self.actors = []

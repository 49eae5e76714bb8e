"""Ray device actors (issue 15, item 5): one actor per GPU, each holding each device model once, give the local
executor's tables. A CPU machine runs the same code path with Ray's logical GPUs (``ray.init(num_gpus=2)``)."""

from __future__ import annotations

import pytest

from mskbench.execution.executors import device_actors
from mskbench.execution.executors.device_actors import actor_device
from mskbench.runner import Runner
from test_core_runner import BOX_FILL, OTSU, snapshot, write_suite
from test_executors import run, test_models  # noqa: F401  (the executor test models, registered per test)


def test_inside_an_actor_any_cuda_device_is_its_one_visible_gpu():
    assert [actor_device(d) for d in ("cuda", "cuda:1", "cpu")] == ["cuda", "cuda", "cpu"]


@pytest.mark.slow  # two Ray starts on a shared 2-core machine
def test_one_actor_per_gpu_holds_each_device_model_once_and_the_tables_are_the_local_ones(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    suite = write_suite(tmp_path, subjects=3, models=BOX_FILL + OTSU)
    assert run(suite, tmp_path / "local.duckdb") == 0

    monkeypatch.setattr(Runner, "_needs_device", lambda self, name: name == "box_fill")  # as a CUDA model would
    init = ray.init
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: init(*args, **{**kwargs, "num_gpus": 2}))
    placements = []
    close = device_actors.DeviceActors.close

    def record_then_close(self):
        placements.extend(self.placements())
        close(self)

    monkeypatch.setattr(device_actors.DeviceActors, "close", record_then_close)
    assert run(suite, tmp_path / "ray.duckdb", "--executor", "ray", "--workers", "2") == 0

    assert sorted(p["gpu_ids"] for p in placements) == [["0"], ["1"]]  # one GPU each, none shared
    assert len({p["pid"] for p in placements}) == 2
    assert all(p["models"] == ["box_fill"] for p in placements)  # the device model only, built once per actor
    assert sum(p["units"] for p in placements) == 3  # every subject's box_fill unit ran on a device actor
    assert snapshot(tmp_path / "ray.duckdb") == snapshot(tmp_path / "local.duckdb")

"""Executor scaling: the same suite with `local`, `processes` (1, 2, ... workers) and `ray` (2 CPUs), side by side.

    python benchmarks/bench_executors.py [--subjects 6] [--size 256]

Every metric, `box_fill` + `gt_box` on knee phantoms that each executor
generates itself (synthesis is loading, which the workers share). Prints
slices/s and the speed-up over `local` for each (the scaling curve: 1 worker up to
the machine's cores, at least 2); targets: `processes` with
2 workers >= 1.7x `local` on a 2-core machine, `ray` with 2 CPUs within 15 %
of it. Worker start-up (spawn, import, Ray start) is inside the clock.

Two more figures say what the ratios can be. "cores busy" is the CPU time of
the driver and its worker processes over the wall time (`local` already uses
more than one core: the next subject is preprocessed on a thread while the
current one is scored), so on a 2-core machine no executor can beat `local`
by more than 2 / (local's cores busy). "ray x2, joined" joins a Ray head
started before the clock (`ray start --head`, as on a cluster) instead of
starting and stopping Ray inside the run: Ray's own start-up is then out of
the clock, and what remains is the executor's overhead per task.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

from mskbench.execution.executors import machine_cores
from mskbench.plan import build_plan
from mskbench.plugin_manager import get_registry
from mskbench.runner import RunOptions, run_plan
from mskbench.suite import load_suite

KNEE_FOV_MM = 88.0

SUITE = """
[suite]
name = "bench_executors"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = {subjects}, seed = 0, pixel_spacing_min = {spacing}, pixel_spacing_max = {spacing} }}
split = "all"

[[models]]
plugin = "box_fill"

[[prompters]]
plugin = "gt_box"
"""


def _cpu_seconds() -> float:
    """CPU time of this process and of its ended child processes (the `processes` workers once joined)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def measure(suite: Path, db: Path, executor: str, workers: int | None,
            address: str | None = None) -> tuple[float, int, float]:
    """Wall seconds, slices and CPU seconds (driver + joined workers) of one run."""
    plan = build_plan(load_suite(suite), get_registry())
    cpu, started = _cpu_seconds(), time.perf_counter()
    run_plan(plan, RunOptions(db=str(db), show_progress=False, executor=executor, workers=workers,
                              ray_address=address))
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    with duckdb.connect(str(db), read_only=True) as con:
        slices = con.execute("SELECT sum(n_slices) FROM subjects").fetchone()[0]
    return seconds, int(slices), cpu


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def measure_joined(suite: Path, db: Path, workers: int) -> tuple[float, int, float]:
    """``ray`` joining a head started (and stopped) outside the clock, as a user with a cluster runs it."""
    ray = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), *sys.path])}
    subprocess.run([ray, "start", "--head", f"--port={port}", f"--num-cpus={workers}", "--num-gpus=0",
                    "--include-dashboard=false", "--disable-usage-stats"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return measure(suite, db, "ray", workers, address=f"127.0.0.1:{port}")
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    get_registry()
    runs = [("local", None)] + [("processes", n) for n in range(1, max(2, machine_cores()) + 1)]
    if importlib.util.find_spec("ray") is not None:
        runs.append(("ray", 2))
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp, "suite.toml")
        suite.write_text(textwrap.dedent(SUITE.format(subjects=args.subjects, spacing=KNEE_FOV_MM / args.size)))
        results = {(ex, n): measure(suite, Path(tmp, f"{ex}{n}.duckdb"), ex, n) for ex, n in runs}
        if ("ray", 2) in results:
            results[("ray", "2, joined")] = measure_joined(suite, Path(tmp, "ray_joined.duckdb"), 2)
    local_s, slices, local_cpu = results[("local", None)]
    print(f"slices: {slices} ({args.subjects} knee phantom subjects, every metric)")
    for (executor, workers), (seconds, _, cpu) in results.items():
        label = executor if workers is None else f"{executor} x{workers}"
        busy = f"{cpu / seconds:.2f}" if executor != "ray" else " n/a"  # Ray's workers are not our children
        print(f"{label:17s}: {slices / seconds:7.1f} slices/s ({seconds:6.2f} s)  speed-up {local_s / seconds:.2f}x"
              f"  cores busy {busy}")
    print(f"ceiling on {machine_cores()} cores: {machine_cores() * local_s / local_cpu:.2f}x local "
          f"(local keeps {local_cpu / local_s:.2f} cores busy)")
    if ("ray", 2) in results:
        for key in (("ray", 2), ("ray", "2, joined")):
            ratio = results[key][0] / results[("processes", 2)][0]
            print(f"ray x{key[1]} / processes x2 wall time: {ratio:.2f} (target <= 1.15)")


if __name__ == "__main__":
    main()

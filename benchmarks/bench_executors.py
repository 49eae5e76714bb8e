"""Executor scaling: the same suite with `local`, `processes` (1, 2, ... workers) and `ray` (2 CPUs), side by side.

    python benchmarks/bench_executors.py [--subjects 6] [--size 256]

Every metric, `box_fill` + `gt_box` on knee phantoms that each executor
generates itself (synthesis is loading, which the workers share). Prints
slices/s and the speed-up over `local` for each (the scaling curve: 1 worker up to
the machine's cores, at least 2); targets: `processes` with
2 workers >= 1.7x `local` on a 2-core machine, `ray` with 2 CPUs within 15 %
of it. Worker start-up (spawn, import, Ray start) is inside the clock.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def measure(suite: Path, db: Path, executor: str, workers: int | None) -> tuple[float, int]:
    plan = build_plan(load_suite(suite), get_registry())
    started = time.perf_counter()
    run_plan(plan, RunOptions(db=str(db), show_progress=False, executor=executor, workers=workers))
    seconds = time.perf_counter() - started
    with duckdb.connect(str(db), read_only=True) as con:
        slices = con.execute("SELECT sum(n_slices) FROM subjects").fetchone()[0]
    return seconds, int(slices)


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
    local_s, slices = results[("local", None)]
    print(f"slices: {slices} ({args.subjects} knee phantom subjects, every metric)")
    for (executor, workers), (seconds, _) in results.items():
        label = executor if workers is None else f"{executor} x{workers}"
        print(f"{label:14s}: {slices / seconds:7.1f} slices/s ({seconds:6.2f} s)  speed-up {local_s / seconds:.2f}x")
    if ("ray", 2) in results:
        ratio = results[("ray", 2)][0] / results[("processes", 2)][0]
        print(f"ray x2 / processes x2 wall time: {ratio:.2f} (target <= 1.15)")


if __name__ == "__main__":
    main()

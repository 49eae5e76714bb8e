"""Runner overhead in slices/s with a trivial segmenter (the filled box).

    python benchmarks/bench_runner.py [--subjects 4] [--size 256]

Runs the phantom knee at SIZE×SIZE in-plane through `box_fill` + `gt_box`
twice, side by side: with Dice+IoU only and with every metric, and prints
slices per second for each and their ratio. The target for Dice+IoU is
≥ 500 slices/s on a 2-core machine. Biomarkers are off so the figure is the
harness's own overhead (load, preprocess, prompt, encode/decode, score, write).
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

from mskbench.plan import build_plan
from mskbench.plugin_manager import get_registry
from mskbench.runner import RunOptions, run_plan
from mskbench.suite import load_suite

SUITE = """
[suite]
name = "bench_runner"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = {subjects}, seed = 0, matrix = {size} }}
split = "all"

[[models]]
plugin = "box_fill"

[[prompters]]
plugin = "gt_box"

[metrics]
{metrics}

[biomarkers]
enabled = false
"""


def measure(tmp: Path, subjects: int, size: int, metrics: str, tag: str) -> tuple[float, int]:
    path = tmp / f"{tag}.toml"
    path.write_text(textwrap.dedent(SUITE.format(subjects=subjects, size=size, metrics=metrics)))
    suite = load_suite(path)
    plan = build_plan(suite, get_registry())
    db = tmp / f"{tag}.duckdb"
    started = time.perf_counter()
    run_plan(plan, get_registry(), RunOptions(db=str(db), show_progress=False))
    seconds = time.perf_counter() - started
    con = duckdb.connect(str(db), read_only=True)
    slices = con.execute("SELECT sum(n_slices) FROM subjects").fetchone()[0]
    con.close()
    return seconds, int(slices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    get_registry()  # plugin discovery is start-up, not per-slice overhead
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        measure(tmp_path, 1, args.size, 'names = ["dice"]', "warmup")
        fast_s, slices = measure(tmp_path, args.subjects, args.size, 'names = ["dice", "iou"]', "dice_iou")
        full_s, _ = measure(tmp_path, args.subjects, args.size, "", "all_metrics")
    fast, full = slices / fast_s, slices / full_s
    print(f"slices: {slices} ({args.subjects} knee phantom subjects, {args.size}x{args.size})")
    print(f"Dice+IoU only : {fast:8.1f} slices/s  ({fast_s:.2f} s)   target >= 500")
    print(f"all metrics   : {full:8.1f} slices/s  ({full_s:.2f} s)")
    print(f"ratio (Dice+IoU / all metrics): {fast / full:.2f}x")


if __name__ == "__main__":
    main()

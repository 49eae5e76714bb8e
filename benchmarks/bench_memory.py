"""Peak memory of a run as the subject count grows, for every executor: streaming keeps it flat.

    python benchmarks/bench_memory.py [--small 2] [--large 8] [--executors local,processes,ray] [--workers 2]

Runs the same knee-phantom suite (box_fill × gt_box, Dice+IoU) with SMALL and
LARGE subjects, each as a fresh ``mskbench run`` process, and prints for each
executor the peak resident memory of the whole process tree (the driver plus
its worker processes, or Ray's local processes), sampled every 50 ms with
psutil, the driver's own peak, and the LARGE / SMALL ratio (target ≈ 1.0: a
worker holds one subject at a time, the driver at most the one being written
and the one prefetched). psutil comes with Ray (the ``distributed`` extra).
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

SUITE = """
[suite]
name = "bench_memory"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = {subjects}, seed = 0 }}
split = "all"

[[models]]
plugin = "box_fill"

[[prompters]]
plugin = "gt_box"

[metrics]
names = ["dice", "iou"]
"""


def tree_rss_mb(root: psutil.Process) -> tuple[float, float]:
    """(RSS of ``root`` and all its descendants, RSS of ``root`` alone) in MB; vanished processes count 0."""
    total = driver = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            rss = proc.memory_info().rss / 2**20
        except psutil.Error:
            continue
        total += rss
        driver = rss if proc.pid == root.pid else driver
    return total, driver


def peak_mb(tmp: Path, subjects: int, executor: str, workers: int) -> tuple[float, float]:
    """Peak (tree, driver) RSS of one run."""
    suite = tmp / f"s{subjects}.toml"
    suite.write_text(textwrap.dedent(SUITE.format(subjects=subjects)))
    db = tmp / f"{executor}{subjects}.duckdb"
    command = [sys.executable, "-m", "mskbench", "run", str(suite), "--db", str(db), "--executor", executor]
    if executor != "local":
        command += ["--workers", str(workers)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root = psutil.Process(child.pid)
    peak_total = peak_driver = 0.0
    while child.poll() is None:
        try:
            total, driver = tree_rss_mb(root)
        except psutil.Error:
            break
        peak_total, peak_driver = max(peak_total, total), max(peak_driver, driver)
        time.sleep(0.05)
    if child.wait() != 0:
        sys.exit(f"{executor} run with {subjects} subjects failed: {child.stderr.read().strip()}")
    return peak_total, peak_driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2)
    parser.add_argument("--large", type=int, default=8)
    parser.add_argument("--executors", default="local,processes" + (",ray" if importlib.util.find_spec("ray") else ""))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"peak RSS (MB), {args.small} vs {args.large} knee phantom subjects; workers: {args.workers}")
    print(f"{'executor':10s} {'tree small':>11s} {'tree large':>11s} {'ratio':>6s} {'driver small':>13s} "
          f"{'driver large':>13s} {'ratio':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        for executor in args.executors.split(","):
            small = peak_mb(Path(tmp), args.small, executor, args.workers)
            large = peak_mb(Path(tmp), args.large, executor, args.workers)
            print(f"{executor:10s} {small[0]:11.1f} {large[0]:11.1f} {large[0] / small[0]:6.2f} {small[1]:13.1f} "
                  f"{large[1]:13.1f} {large[1] / small[1]:6.2f}", flush=True)
    print("flat = 1.00")


if __name__ == "__main__":
    main()

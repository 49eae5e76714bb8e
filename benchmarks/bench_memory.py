"""Peak memory of a run as the subject count grows: streaming keeps it flat.

    python benchmarks/bench_memory.py [--small 2] [--large 8]

Runs the same knee-phantom suite (box_fill × gt_box) with SMALL and LARGE
subjects, each in a fresh process, and prints the peak resident memory that
the runner recorded in its `timings` table, and their ratio (target ≈ 1.0:
at most two subjects, the one being scored and the one being prefetched,
are in memory at once).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb

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
"""


def peak_mb(tmp: Path, subjects: int) -> float:
    suite = tmp / f"s{subjects}.toml"
    suite.write_text(textwrap.dedent(SUITE.format(subjects=subjects)))
    db = tmp / f"s{subjects}.duckdb"
    subprocess.run([sys.executable, "-m", "mskbench", "run", str(suite), "--db", str(db)], check=True, capture_output=True)
    con = duckdb.connect(str(db), read_only=True)
    try:
        return float(con.execute("SELECT max(peak_memory_mb) FROM timings").fetchone()[0])
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2)
    parser.add_argument("--large", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        small = peak_mb(Path(tmp), args.small)
        large = peak_mb(Path(tmp), args.large)
    print(f"peak RSS with {args.small} subjects: {small:7.1f} MB")
    print(f"peak RSS with {args.large} subjects: {large:7.1f} MB")
    print(f"ratio: {large / small:.2f}x (flat = 1.0)")


if __name__ == "__main__":
    main()

"""A digest of every table a runner benchmark writes, to prove a speed change altered no stored value.

    python benchmarks/runner_tables_digest.py > before.txt   # on the old code
    python benchmarks/runner_tables_digest.py > after.txt    # on the new code; diff the two

Runs bench_runner's knee suite three ways (Dice+IoU; every metric; every
metric with biomarkers; the first subjects get QC thumbnails in all three) and prints one sha256 per table over
its rows sorted, with the columns that differ by nature left out: run ids,
timings, times of day, the manifest. Floats are printed with repr (exact).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_runner import KNEE_FOV_MM, SUITE  # noqa: E402

from mskbench.plan import build_plan  # noqa: E402
from mskbench.plugin_manager import get_registry  # noqa: E402
from mskbench.runner import RunOptions, run_plan  # noqa: E402
from mskbench.store import TABLES  # noqa: E402
from mskbench.suite import load_suite  # noqa: E402

#: columns that differ between two runs of the same suite by nature
VOLATILE = {"run_id", "started_at", "finished_at", "seconds", "peak_memory_mb", "peak_gpu_memory_mb", "manifest",
            "config", "created_at", "git_commit", "environment"}
VARIANTS = {
    "dice_iou": ('names = ["dice", "iou"]', False),
    "all_metrics": ("", False),
    "biomarkers_qc": ("", True),
}


def digests(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    out = {}
    for table in TABLES:
        if table in ("runs", "timings"):
            continue
        columns = [c for c, _ in TABLES[table] if c not in VOLATILE]
        quoted = ", ".join(f'"{c}"' for c in columns)
        rows = sorted(repr(row) for row in con.execute(f"SELECT {quoted} FROM {table}").fetchall())
        digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
        out[table] = f"{len(rows):6d} rows  {digest}"
    con.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (metrics, biomarkers) in VARIANTS.items():
            text = SUITE.format(subjects=args.subjects, spacing=KNEE_FOV_MM / args.size, metrics=metrics)
            if biomarkers:
                text = text.replace("[biomarkers]\nenabled = false", "[biomarkers]\nenabled = true")
            path = Path(tmp) / f"{name}.toml"
            path.write_text(textwrap.dedent(text))
            db = Path(tmp) / f"{name}.duckdb"
            run_plan(build_plan(load_suite(path), get_registry()), RunOptions(db=str(db), show_progress=False))
            for table, digest in digests(db).items():
                print(f"{name:14s} {table:18s} {digest}")


if __name__ == "__main__":
    main()

"""Runner overhead in slices/s with a trivial segmenter (the filled box).

    python benchmarks/bench_runner.py [--subjects 4] [--size 256] [--repeats 1]

Runs the phantom knee at SIZE×SIZE in-plane through `box_fill` + `gt_box`
twice, side by side: with Dice+IoU only and with every metric, and prints
slices per second for each and their ratio. The target for Dice+IoU is
≥ 500 slices/s on a 2-core machine. Biomarkers are off so the figure is the
harness's own overhead (preprocess, prompt, encode/decode, score, write):
the phantom subjects are generated before the clock starts, because their
synthesis (about 1 s each) is the data layer's cost, not the runner's.

The runner calls ``decode`` once per cell and slice (issue 12: a cell's
masks must not depend on the other cells sharing a decoder batch); with the
one prompter here that is one call per slice, so this figure does not show
what per-cell decoding costs a SAM-family decoder with several prompters:
``bench_segmenters.py`` measures that (both wirings side by side).

A run also pays fixed costs no slice count changes (creating the results
database, the manifest, closing the file, preprocessing the first subject
before anything can overlap it). "after start-up" is therefore printed too:
the marginal rate between a run of SUBJECTS and one of 3 × SUBJECTS subjects,
the rate a study of many subjects sees.
"""

from __future__ import annotations

import argparse
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

from mskbench.data.preprocess import PreprocessConfig, prepare_subject
from mskbench.plan import build_plan
from mskbench.plugin_manager import get_registry
from mskbench.runner import RunOptions, run_plan
from mskbench.suite import load_suite

KNEE_FOV_MM = 88.0  # in-plane field of view of the knee phantom: spacing = FOV / size

SUITE = """
[suite]
name = "bench_runner"
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

[metrics]
{metrics}

[biomarkers]
enabled = false
"""


class Preloaded:
    """A dataset whose subjects were loaded up front (so timing excludes synthesis).

    ``prepare_seconds`` is what dataset-level preprocessing (percentile
    normalisation, small-object removal, slice selection) costs for these
    subjects when done alone, so the report can separate it from the rest.
    """

    def __init__(self, dataset):
        self.label_map = dataset.label_map
        self.slice_axis = dataset.slice_axis
        self._ids = dataset.subject_ids(None)
        self._subjects = {sid: dataset.load(sid) for sid in self._ids}
        started = time.perf_counter()
        for subject in self._subjects.values():
            prepare_subject(subject, self.slice_axis, PreprocessConfig())
        self.prepare_seconds = time.perf_counter() - started

    def subject_ids(self, split=None):
        return list(self._ids)

    def load(self, subject_id):
        return self._subjects[subject_id]


def measure(tmp: Path, subjects: int, size: int, metrics: str, tag: str) -> tuple[float, int, str, float]:
    path = tmp / f"{tag}.toml"
    spacing = KNEE_FOV_MM / size
    path.write_text(textwrap.dedent(SUITE.format(subjects=subjects, spacing=spacing, metrics=metrics)))
    suite = load_suite(path)
    plan = build_plan(suite, get_registry())
    for planned in plan.datasets.values():
        planned.dataset = Preloaded(planned.dataset)
    prepare_seconds = sum(planned.dataset.prepare_seconds for planned in plan.datasets.values())
    db = tmp / f"{tag}.duckdb"
    started = time.perf_counter()
    run_plan(plan, RunOptions(db=str(db), show_progress=False))
    seconds = time.perf_counter() - started
    con = duckdb.connect(str(db), read_only=True)
    slices, shape = con.execute("SELECT sum(n_slices), any_value(shape) FROM subjects").fetchone()
    con.close()
    return seconds, int(slices), shape, prepare_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1,
                        help="alternated passes of both variants; the fastest of each is kept (load only slows a run)")
    args = parser.parse_args()
    get_registry()  # plugin discovery is start-up, not per-slice overhead
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        measure(tmp_path, 1, args.size, 'names = ["dice"]', "warmup")
        fast_s = full_s = long_s = float("inf")
        dice_iou = 'names = ["dice", "iou"]'
        for repeat in range(args.repeats):
            seconds, slices, shape, prep_s = measure(tmp_path, args.subjects, args.size, dice_iou, f"dice_iou{repeat}")
            fast_s = min(fast_s, seconds)
            full_s = min(full_s, measure(tmp_path, args.subjects, args.size, "", f"all_metrics{repeat}")[0])
            long_seconds, long_slices, _, _ = measure(tmp_path, 3 * args.subjects, args.size, dice_iou,
                                                      f"dice_iou_long{repeat}")
            long_s = min(long_s, long_seconds)
    fast, full = slices / fast_s, slices / full_s
    print(f"slices: {slices} ({args.subjects} knee phantom subjects, volume shape {shape}, sagittal slices)")
    print(f"Dice+IoU only : {fast:8.1f} slices/s  ({fast_s:.2f} s)   target >= 500")
    print(f"all metrics   : {full:8.1f} slices/s  ({full_s:.2f} s)")
    print(f"ratio (Dice+IoU / all metrics): {fast / full:.2f}x")
    steady = (long_slices - slices) / (long_s - fast_s) if long_s > fast_s else float("inf")
    print(f"Dice+IoU after start-up: {steady:8.1f} slices/s  (marginal rate, {args.subjects} vs "
          f"{3 * args.subjects} subjects: {fast_s:.2f} s vs {long_s:.2f} s)")
    rest = fast_s - prep_s
    print(f"of the Dice+IoU run, dataset preprocessing alone takes {prep_s:.2f} s ({prep_s / fast_s:.0%});")
    print(f"without it the runner does {slices / rest:8.1f} slices/s" if rest > 0 else "preprocessing overlaps it all")


if __name__ == "__main__":
    main()

"""Time every built-in biomarker on one 160-slice 384×384 knee subject.

Target (issue 7): all biomarkers of one subject in under 2 s on the project's
2-core machine. The subject is a synthetic sagittal knee built here so the
grid is exactly the size the target names: femoral condyles as a cylinder
with a 2.5 mm cartilage shell, a tibial plateau with 2.2 mm cartilage, a
patella, two meniscal wedges, and T2/T1rho maps with some failed-fit voxels.
Disc height has no disc in a knee; it is timed on the menisci (two
components each) so its cost is included.

    python benchmarks/bench_biomarkers.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mskbench.biomarkers.selection import select_structures
from mskbench.plugin_manager import load_registry
from mskbench.types import LabelInfo, Subject, TissueClass

SHAPE = (160, 384, 384)  # L-R slices, A-P rows, S-I columns
SPACING = (0.7, 0.4, 0.4)
TARGET_S = 2.0
LABELS = {
    1: LabelInfo(1, "femur", TissueClass.BONE),
    2: LabelInfo(2, "tibia", TissueClass.BONE),
    3: LabelInfo(3, "patella", TissueClass.BONE),
    4: LabelInfo(4, "femoral_cartilage", TissueClass.CARTILAGE),
    5: LabelInfo(5, "tibial_cartilage", TissueClass.CARTILAGE),
    6: LabelInfo(6, "patellar_cartilage", TissueClass.CARTILAGE),
    7: LabelInfo(7, "meniscus", TissueClass.MENISCUS),
}
RUNS = (  # (plugin, tissue classes measured)
    ("cartilage_thickness", ("cartilage",)),
    ("tissue_volume", ("bone", "cartilage", "meniscus")),
    ("relaxometry", ("cartilage",)),
    ("disc_height", ("meniscus",)),
)


def knee_subject(seed: int = 0) -> Subject:
    """The synthetic knee on the benchmark grid (mm coordinates from the array centre)."""
    rng = np.random.default_rng(seed)
    x = (np.arange(SHAPE[0]) - SHAPE[0] / 2) * SPACING[0]
    y = (np.arange(SHAPE[1]) - SHAPE[1] / 2) * SPACING[1]
    z = (np.arange(SHAPE[2]) - SHAPE[2] / 2) * SPACING[2]
    inside_lr = (np.abs(x) <= 40.0)[:, None, None]
    yy, zz = y[None, :, None], z[None, None, :]
    labels = np.zeros(SHAPE, np.uint8)
    condyle = np.hypot(yy, zz - 10.0)
    labels[np.broadcast_to(inside_lr & (condyle <= 27.5) & (zz < 10.0), SHAPE)] = 4
    labels[np.broadcast_to(inside_lr & ((condyle <= 25.0) | ((np.abs(yy) <= 18.0) & (zz >= 10.0))), SHAPE)] = 1
    plateau = inside_lr & (np.abs(yy) <= 30.0)
    labels[np.broadcast_to(plateau & (zz > -20.7) & (zz <= -18.5), SHAPE)] = 5
    labels[np.broadcast_to(plateau & (zz <= -20.7), SHAPE)] = 2
    patella = np.hypot((yy - 38.0) / 8.0, (zz - 15.0) / 16.0)
    labels[np.broadcast_to(inside_lr & (patella <= 1.0) & (yy < 35.0), SHAPE) & (labels == 0)] = 6
    labels[np.broadcast_to(inside_lr & (patella <= 1.0) & (yy >= 35.0), SHAPE)] = 3
    wedge = (np.abs(np.abs(yy) - 24.0) <= 6.0) & (zz > -18.5) & (zz <= -18.5 + (np.abs(yy) - 18.0) * 0.6)
    labels[np.broadcast_to(inside_lr & wedge, SHAPE) & (labels == 0)] = 7
    maps = {}
    for name, mean in (("t2", 38.0), ("t1rho", 45.0)):
        values = rng.normal(mean, 6.0, SHAPE).astype(np.float32)
        values[rng.random(SHAPE) < 0.01] = 0.0  # failed fits
        values[rng.random(SHAPE) < 0.002] = np.nan
        maps[name] = values
    affine = np.diag([*SPACING, 1.0])
    return Subject("bench_knee", np.zeros(SHAPE, np.float32), labels, SPACING, affine, LABELS, maps=maps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    subject = knee_subject()
    registry = load_registry()
    plugins = [
        (name, registry.create("biomarker", name, {}, name), select_structures(LABELS, tissues=list(tissues)))
        for name, tissues in RUNS
    ]
    best: dict[str, float] = {}
    values = []
    for _ in range(args.repeats):
        values = []
        for name, biomarker, structures in plugins:
            began = time.perf_counter()
            values += biomarker.compute(subject.labels, subject, structures, 0)
            best[name] = min(best.get(name, np.inf), time.perf_counter() - began)
    for name, biomarker, structures in plugins:
        print(f"{name:<22} {best[name]:6.3f} s  ({len(structures)} structures)")
    total = sum(best.values())
    print(f"all biomarkers, one {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} knee subject: {total:.3f} s "
          f"(target < {TARGET_S:.1f} s; ratio {total / TARGET_S:.2f}); best of {args.repeats}")
    for value in values:
        instance = "" if value.instance is None else f" #{value.instance}"
        print(f"  {value.biomarker} {value.structure}{instance} = {value.value:.2f} {value.unit}")


if __name__ == "__main__":
    main()

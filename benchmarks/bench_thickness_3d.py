"""Cartilage thickness against analytic truth: both methods, 3D- and 2D-sequence voxels.

Shapes of known thickness (tests/test_biomarkers_shapes.py): slabs 2 and 3 mm
thick tilted 0-60° out of the slice plane (true thickness t at every tilt), a
spherical and a cylindrical shell 2 mm thick (inner radius 10 mm; the
cylinder's axis lies in the slice plane so it curves through the slices).
Voxels: 0.7 × 0.36 × 0.36 mm (3D DESS/CUBE) and 3 × 0.3 × 0.45 mm (2D TSE),
axis 0 the slicing axis. Prints the relative error of each method (the
docs/biomarkers.md "Known bias" table) and the local_3d time on a knee-sized
femoral cartilage.

    python benchmarks/bench_thickness_3d.py [--no-timing]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_biomarkers_shapes import CARTILAGE, cylindrical_shell, spherical_shell, subject_for, tilted_slab  # noqa: E402

from mskbench.biomarkers.thickness import METHODS, CartilageThickness  # noqa: E402

RESOLUTIONS = {"3D 0.36×0.36×0.7": (0.7, 0.36, 0.36), "2D 0.3×0.45×3": (3.0, 0.3, 0.45)}
SLICE_AXIS = 0


def cases(spacing):
    """(name, mask, true thickness) of every validation shape on this grid."""
    for thickness in (2.0, 3.0):
        for tilt in (0, 30, 45, 60):
            yield f"slab {thickness:g} mm, tilt {tilt}°", tilted_slab(thickness, tilt, spacing), thickness
    yield "spherical shell r 10-12 mm", spherical_shell(10.0, 12.0, spacing), 2.0
    yield "cylindrical shell r 10-12 mm", cylindrical_shell(10.0, 12.0, spacing), 2.0


def measured(mask, spacing, method):
    labels = mask.astype(np.int16) * CARTILAGE.id
    [value] = CartilageThickness(method).compute(labels, subject_for(labels, spacing), [CARTILAGE], SLICE_AXIS)
    return value.value


def error_table() -> None:
    print("| shape | " + " | ".join(f"{m} @ {r}" for r in RESOLUTIONS for m in METHODS) + " |")
    print("|---|" + "---|" * (len(RESOLUTIONS) * len(METHODS)))
    rows: dict[str, list[str]] = {}
    for spacing in RESOLUTIONS.values():
        for name, mask, truth in cases(spacing):
            for method in METHODS:
                error = measured(mask, spacing, method) / truth - 1
                rows.setdefault(name, []).append(f"{100 * error:+.1f} %")
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


def knee_timing(repeats: int = 3) -> None:
    """local_3d on a femoral-cartilage-sized shell: 2.5 mm, radius 22 mm, 60 mm wide, 0.7 × 0.36 × 0.36 mm."""
    spacing = (0.7, 0.36, 0.36)
    shape = (160, 300, 300)
    z = (np.arange(shape[0]) - shape[0] / 2)[:, None, None] * spacing[0]
    y = (np.arange(shape[1]) - shape[1] / 2)[None, :, None] * spacing[1]
    x = (np.arange(shape[2]) - shape[2] / 2)[None, None, :] * spacing[2]
    radius = np.sqrt(y**2 + x**2) + 0.0 * z
    labels = ((radius >= 22.0) & (radius <= 24.5) & (np.abs(z) <= 30.0) & (y < 15.0)).astype(np.int16)
    subject = subject_for(labels, spacing)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        [value] = CartilageThickness("local_3d").compute(labels, subject, [CARTILAGE], SLICE_AXIS)
        best = min(best, time.perf_counter() - start)
    print(f"\nlocal_3d on a {shape} knee-sized cartilage ({int(labels.sum())} voxels): "
          f"{best:.2f} s (best of {repeats}), {value.value:.3f} mm (truth 2.5)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-timing", action="store_true", help="Only print the error table.")
    args = parser.parse_args()
    error_table()
    if not args.no_timing:
        knee_timing()

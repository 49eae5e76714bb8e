"""Time mskbench's HD95 + ASSD + NSD against MONAI's metrics on the same masks.

Two workloads (issue 4): 512x512 slices with 5 labels, and one 256x256x64
volume with 5 labels, anisotropic spacing. MONAI side: the functional forms
of HausdorffDistanceMetric (percentile 95), SurfaceDistanceMetric
(symmetric) and SurfaceDiceMetric, each called once on the whole one-hot
batch (their fastest use). mskbench side: SurfaceMetrics per (unit, label),
which also yields HD and MASD. Input preparation (one-hot tensors, bool
masks) is not timed for either. Values are compared where the conventions
coincide (every unit here is a hit); the script exits 1 if they differ.
A third figure is the runner's budget: slices per second through
``score_unit`` with Dice + IoU (and with every metric) on 256x256 slices
with 5 labels (target >= 500 slices/s for Dice + IoU).

    python benchmarks/bench_metrics.py [--slices 20] [--repeats 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import numpy as np

N_LABELS = 5
NSD_TOLERANCE_MM = 1.0


def ellipsoid(shape, centre, radii_mm, spacing):
    """Bool mask of an axis-aligned ellipsoid (radii in mm) on a voxel grid."""
    grids = np.meshgrid(*[(np.arange(n) - c) * s for n, c, s in zip(shape, centre, spacing)], indexing="ij")
    return sum((g / r) ** 2 for g, r in zip(grids, radii_mm)) <= 1.0


def make_case(shape, spacing, rng):
    """Reference and prediction label maps: 5 ellipsoids, the prediction shifted and resized."""
    reference = np.zeros(shape, dtype=np.uint8)
    prediction = np.zeros(shape, dtype=np.uint8)
    extent = np.asarray(shape) * np.asarray(spacing)
    for label in range(1, N_LABELS + 1):
        radii = rng.uniform(0.04, 0.12, size=len(shape)) * extent
        centre_mm = rng.uniform(0.2, 0.8, size=len(shape)) * extent
        centre = centre_mm / np.asarray(spacing)
        reference[ellipsoid(shape, centre, radii, spacing)] = label
        moved = centre + rng.normal(0, 2.0, size=len(shape))
        prediction[ellipsoid(shape, moved, radii * rng.uniform(0.85, 1.15, size=len(shape)), spacing)] = label
    return reference, prediction


def one_hot(batch):
    import torch

    return torch.from_numpy(np.stack([batch == label for label in range(N_LABELS + 1)], axis=1).astype(np.float32))


def monai_values(references, predictions, spacing):
    """HD95, ASSD and NSD per (unit, label) from MONAI, and the seconds it took."""
    import warnings

    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance, compute_surface_dice

    y, y_pred = one_hot(references), one_hot(predictions)
    warnings.filterwarnings("ignore", module="monai")
    start = time.perf_counter()
    hd95 = compute_hausdorff_distance(y_pred, y, percentile=95, spacing=spacing)
    assd = compute_average_surface_distance(y_pred, y, symmetric=True, spacing=spacing)
    nsd = compute_surface_dice(y_pred, y, class_thresholds=[NSD_TOLERANCE_MM] * N_LABELS, spacing=spacing)
    seconds = time.perf_counter() - start
    return {"hd95": hd95.numpy(), "assd": assd.numpy(), "nsd": nsd.numpy()}, seconds


def mskbench_values(references, predictions, spacing):
    from mskbench.metrics.engine import score_unit
    from mskbench.metrics.surface import SurfaceMetrics

    metrics = [SurfaceMetrics(nsd_tolerance_mm=NSD_TOLERANCE_MM)]
    masks = [[(r == label, p == label) for label in range(1, N_LABELS + 1)] for r, p in zip(references, predictions)]
    out = {name: np.zeros((len(masks), N_LABELS)) for name in ("hd95", "assd", "nsd")}
    start = time.perf_counter()
    for unit, labels in enumerate(masks):
        for index, (ref, pred) in enumerate(labels):
            _, values = score_unit(ref, pred, spacing, metrics)
            for name in out:
                out[name][unit, index] = values[name].value
    return out, time.perf_counter() - start


def compare(title, references, predictions, spacing, repeats):
    ours_best, theirs_best = np.inf, np.inf
    for _ in range(repeats):
        ours, ours_s = mskbench_values(references, predictions, spacing)
        theirs, theirs_s = monai_values(references, predictions, spacing)
        ours_best, theirs_best = min(ours_best, ours_s), min(theirs_best, theirs_s)
    worst = {name: float(np.max(np.abs(ours[name] - theirs[name]) / np.maximum(1.0, np.abs(theirs[name]))))
             for name in ours}
    equal = all(value < 1e-5 for value in worst.values())
    units = len(references)
    print(f"{title}: {units} unit(s) x {N_LABELS} labels, spacing {spacing}")
    print(f"  mskbench HD95+HD+ASSD+MASD+NSD : {ours_best * 1e3:9.1f} ms  ({ours_best / units * 1e3:.2f} ms/unit)")
    print(f"  MONAI HD95 + ASSD + NSD         : {theirs_best * 1e3:9.1f} ms  ({theirs_best / units * 1e3:.2f} ms/unit)")
    print(f"  speed-up {theirs_best / ours_best:5.2f}x   max relative difference "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()) + ("  (equal)" if equal else "  (DIFFERENT)"))
    return equal


def slice_throughput(rng, count=200):
    """Slices per second through score_unit, one call per label, 256x256 slices with 5 labels."""
    from mskbench.metrics.engine import score_unit
    from mskbench.metrics.overlap import OverlapMetrics
    from mskbench.metrics.surface import SurfaceMetrics

    spacing = (0.5, 0.5)
    cases = [make_case((256, 256), spacing, rng) for _ in range(count)]
    masks = [[(r == label, p == label) for label in range(1, N_LABELS + 1)] for r, p in cases]
    for title, metrics in (("Dice+IoU", [OverlapMetrics()]),
                           ("all metrics", [OverlapMetrics(), SurfaceMetrics(NSD_TOLERANCE_MM)])):
        start = time.perf_counter()
        for labels in masks:
            for ref, pred in labels:
                score_unit(ref, pred, spacing, metrics)
        seconds = time.perf_counter() - start
        print(f"256x256 slices, {N_LABELS} labels, {title:11s}: {count / seconds:8.0f} slices/s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    import monai
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    print(f"python {platform.python_version()}, monai {monai.__version__}, torch {torch.__version__}, "
          f"cpu {platform.processor() or platform.machine()}, torch threads 1")
    slice_spacing = (0.4, 0.5)
    slices = [make_case((512, 512), slice_spacing, rng) for _ in range(args.slices)]
    ok = compare("2D slices 512x512", np.stack([s[0] for s in slices]), np.stack([s[1] for s in slices]),
                 slice_spacing, args.repeats)
    volume_spacing = (0.5, 0.6, 2.0)
    reference, prediction = make_case((256, 256, 64), volume_spacing, rng)
    ok &= compare("3D volume 256x256x64", reference[None], prediction[None], volume_spacing, args.repeats)
    slice_throughput(rng)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

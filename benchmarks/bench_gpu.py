"""Does scoring starve the GPU? Encoder-only vs end-to-end slices/s with every metric, pipeline off and on.

For each model (SAM ViT-B, MedSAM, SAM2.1 base+ at full size with random
weights; ``--quick``: the reduced encoders of ``bench_segmenters.py``) on one
phantom volume of ``--slices`` distinct slices with ``--labels`` structures:

- encoder only: ``encode`` of every slice, in the runner's batches;
- end to end: the runner's unit (:func:`mskbench.execution.unit.run_unit`):
  ``gt_box`` prompts, encode, one decode per slice, paste, then every metric
  the registry provides, timed with the encode-ahead pipeline off (``ahead``
  0) and on (``--ahead``, default 2; :mod:`mskbench.execution.encode_pipeline`);
- the ratio end-to-end / encoder-only (1.0: the GPU never waits), the peak GPU
  memory the unit recorded (`timings.peak_gpu_memory_mb`), and the encoder's
  achieved fraction of the device's bf16 peak (FLOPs counted by
  torch.utils.flop_counter, peak from ``bench_segmenters.PEAK_BF16_TFLOPS``).

    python benchmarks/bench_gpu.py --device cuda              # the real thing (bf16)
    python benchmarks/bench_gpu.py --quick --device cpu       # reduced encoders, 4 slices: checks the script runs

The two end-to-end arms alternate (``--repeats``), so machine load hits both alike.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_segmenters import add_model_arguments, build, encoder_flops, peak_tflops, phantom, sync  # noqa: E402

from mskbench.data.preprocess import PreprocessConfig, prepare_subject  # noqa: E402
from mskbench.execution import encode_pipeline  # noqa: E402
from mskbench.execution.prompts import initial_prompts, slice_arrays  # noqa: E402
from mskbench.execution.unit import Unit, UnitContext, run_unit  # noqa: E402
from mskbench.model_kinds import ModelKind  # noqa: E402
from mskbench.plan import Cell  # noqa: E402
from mskbench.plugin_manager import get_registry  # noqa: E402
from mskbench.prompting.oracle import GtBoxPrompter  # noqa: E402
from mskbench.types import LabelInfo, Subject, TissueClass  # noqa: E402


def volume_subject(slices: int, size: int, labels: int, seed: int) -> Subject:
    """``slices`` distinct phantom slices; each ellipse of a slice is its label (1..labels)."""
    rng = np.random.default_rng(seed)
    images, masks = [], []
    for _ in range(slices):
        image, boxes = phantom(size, labels, rng)
        mask = np.zeros(image.shape, np.int32)
        for label, (x0, y0, x1, y1) in enumerate(boxes, start=1):  # the ellipse's bright pixels inside its box
            window = (slice(int(y0), int(y1) + 1), slice(int(x0), int(x1) + 1))
            mask[window][image[window] > 110] = label
        images.append(image.astype(np.float32))
        masks.append(mask)
    label_map = {i: LabelInfo(i, f"s{i}", TissueClass.BONE) for i in range(1, labels + 1)}
    return Subject("bench", np.stack(images), np.stack(masks), (3.0, 0.5, 0.5), np.eye(4), label_map)


def all_metrics() -> list:
    registry = get_registry()
    return [registry.create("metric", info.name, {}, "bench_gpu") for info in registry.of_kind("metric")]


def end_to_end(unit: Unit, context: UnitContext, segmenter, ahead: int) -> tuple[float, float | None]:
    """Seconds of one unit with ``ahead`` batches encoded ahead, and the peak GPU memory it recorded."""
    encode_pipeline.ENCODE_AHEAD[segmenter.device.type] = ahead
    sync(segmenter.device)
    began = time.perf_counter()
    [records] = run_unit(unit, context, segmenter)
    sync(segmenter.device)
    seconds = time.perf_counter() - began
    return seconds, records.tables["timings"][0]["peak_gpu_memory_mb"]


def bench(name: str, args: argparse.Namespace, context: UnitContext) -> dict[str, float | None]:
    segmenter = build(name, not args.quick, args.device, args.precision)
    prepared = prepare_subject(volume_subject(args.slices, args.size, args.labels, args.seed), "through_plane",
                               PreprocessConfig(min_object_pixels=0, min_object_voxels=0))
    images, references = slice_arrays(prepared)
    label_ids = sorted(prepared.subject.label_map)
    cell = Cell("bench", name, "gt_box", 0)
    initial = {cell.cell_id: initial_prompts(context.prompters["gt_box"], "gt_box", 0, "bench", prepared, label_ids,
                                             images, references)}
    unit = Unit("bench", prepared, name, ModelKind("slice", True, frozenset()), args.batch, (cell,), initial)
    ordered = [images[k] for k in prepared.slice_indices]

    segmenter.decode(segmenter.encode(ordered[:1])[0], initial[cell.cell_id][prepared.slice_indices[0]])  # warm-up
    encode_s, off_s, on_s, peak_mb = [], [], [], None
    for _ in range(args.repeats):
        sync(segmenter.device)
        began = time.perf_counter()
        for start in range(0, len(ordered), args.batch):
            segmenter.encode(ordered[start : start + args.batch])
        sync(segmenter.device)
        encode_s.append(time.perf_counter() - began)
        off_s.append(end_to_end(unit, context, segmenter, 0)[0])
        seconds, peak_mb = end_to_end(unit, context, segmenter, args.ahead)
        on_s.append(seconds)
    n = len(ordered)
    result: dict[str, float | None] = {
        "encoder_slices_per_s": n / min(encode_s),
        "off_slices_per_s": n / min(off_s),
        "on_slices_per_s": n / min(on_s),
        "peak_gpu_memory_mb": peak_mb,
        "fraction_of_bf16_peak": None,
    }
    peak = peak_tflops(segmenter.device, args.peak_tflops)
    if peak:
        result["fraction_of_bf16_peak"] = encoder_flops(segmenter, ordered[0]) * n / min(encode_s) / 1e12 / peak
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="reduced encoders and few slices (CPU smoke run)")
    parser.add_argument("--slices", type=int, default=None, help="default 4 with --quick, else 128")
    parser.add_argument("--size", type=int, default=None, help="slice side; default 96 with --quick, else 512")
    parser.add_argument("--batch", type=int, default=None, help="slices per encoder call (default 2 quick, 16)")
    parser.add_argument("--ahead", type=int, default=2, help="batches encoded ahead in the 'on' arm")
    parser.add_argument("--repeats", type=int, default=None, help="alternated passes, best kept (default 1 quick, 3)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    args.precision = args.precision or ("bf16" if cuda else "fp32")
    args.slices = args.slices or (4 if args.quick else 128)
    args.size = args.size or (96 if args.quick else 512)
    args.batch = args.batch or (2 if args.quick else 16)
    args.repeats = args.repeats or (1 if args.quick else 3)
    context = UnitContext({"gt_box": GtBoxPrompter()}, all_metrics(), None)
    device_name = torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine()
    print(f"device: {device_name} ({args.device}), torch {torch.__version__}, precision {args.precision}, "
          f"{'reduced' if args.quick else 'full-size'} models, random weights")
    print(f"workload: {args.slices} slices {args.size}x{args.size}, {args.labels} labels, batches of {args.batch}, "
          f"every metric ({', '.join(n for m in context.metrics for n in m.names)}); best of {args.repeats}")
    print(f"{'model':7s} {'encoder':>9s} {'e2e off':>9s} {'e2e on':>9s} {'on/enc':>7s} {'on/off':>7s} "
          f"{'peak GPU':>9s} {'bf16 peak':>9s}")
    for name in args.models.split(","):
        r = bench(name, args, context)
        peak = "n/a" if r["peak_gpu_memory_mb"] is None else f"{r['peak_gpu_memory_mb']:.0f} MiB"
        fraction = "n/a" if r["fraction_of_bf16_peak"] is None else f"{100 * r['fraction_of_bf16_peak']:.0f}%"
        print(f"{name:7s} {r['encoder_slices_per_s']:9.2f} {r['off_slices_per_s']:9.2f} {r['on_slices_per_s']:9.2f} "
              f"{r['on_slices_per_s'] / r['encoder_slices_per_s']:7.2f} {r['on_slices_per_s'] / r['off_slices_per_s']:7.2f} "
              f"{peak:>9s} {fraction:>9s}", flush=True)
    print("slices/s; on/enc: end-to-end (pipeline on) over encoder-only, 1.00 = the encoder never waits")


if __name__ == "__main__":
    main()

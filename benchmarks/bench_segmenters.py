"""Encode and decode timing of the SAM-family segmenters: the naive per-mask loop vs the harness.

Workload: ``--slices`` phantom slices, ``--labels`` structures each, boxes
from ``--prompters`` prompters (the tight box and jittered copies), so every
slice carries labels x prompters box prompts.

- naive: the source study's loop, one mask at a time: for every slice, every
  prompter, every label, ``set_image`` then ``predict(box=...)`` with the
  upstream predictor (SamPredictor, SAM2ImagePredictor; for MedSAM, which has
  no predictor, its published per-box steps: preprocess, encode, decode).
- harness: mskbench's segmenter as the runner drives it: one ``encode`` call
  for the slices (each slice encoded once), then per slice one ``decode`` per
  prompter (a cell's prompts; a cell's masks must not depend on the other
  cells' prompts sharing its decoder batch, issue 12).

Encode and decode are timed separately; the script prints slices/s of both
paths and their ratio, and on CUDA the encoder's achieved fraction of the
device's bf16 peak (FLOPs counted with torch.utils.flop_counter). It also
times the decode the runner did before, one call over all prompters' prompts
of a slice, and prints what one call per cell costs on top of it
(``--no-naive`` skips the slow per-mask loop when only that is wanted).

    python benchmarks/bench_segmenters.py                        # CPU, reduced encoders
    python benchmarks/bench_segmenters.py --device cuda --full   # SAM vit_b, MedSAM, SAM2 b+ in bf16

The reduced CPU models are the upstream architectures with a smaller image
encoder (full prompt encoder and mask decoder), random weights; weights do not
change the timing.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from mskbench.segmenters.medsam import MedSamSegmenter
from mskbench.segmenters.sam import SamSegmenter
from mskbench.segmenters.sam2_image import Sam2Segmenter
from mskbench.segmenters.sam_family import PromptableSegmenter
from mskbench.segmenters.torch_utils import inference_context
from mskbench.types import Prompt

#: dense bf16 tensor-core peak (TFLOPS) by device-name substring, from NVIDIA's datasheets.
PEAK_BF16_TFLOPS = {"H200": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "L4": 121.0}

REDUCED_SAM2 = [  # Hiera with 6 narrow blocks; neck and SAM heads at full width
    "++model.image_encoder.trunk.embed_dim=32",
    "++model.image_encoder.trunk.stages=[1,2,2,1]",
    "++model.image_encoder.trunk.global_att_blocks=[4]",
    "++model.image_encoder.neck.backbone_channel_list=[256,128,64,32]",
]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def phantom(size: int, labels: int, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    """A uint8 slice with ``labels`` bright ellipses and their tight boxes."""
    yy, xx = np.mgrid[0:size, 0:size]
    image = 40 + 40 * xx / size
    boxes = []
    for _ in range(labels):
        cy, cx = rng.uniform(0.25, 0.75, 2) * size
        ry, rx = rng.uniform(0.05, 0.2, 2) * size
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        image[inside] = rng.uniform(120, 250)
        rows, cols = np.flatnonzero(inside.any(1)), np.flatnonzero(inside.any(0))
        boxes.append((float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1])))
    image += rng.normal(0, 6, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8), boxes


def prompts_for(boxes, prompters: int, size: int, rng: np.random.Generator) -> list[Prompt]:
    """The tight box from prompter 0, jittered (clipped) boxes from the others."""
    prompts = []
    for prompter in range(prompters):
        for label, box in enumerate(boxes, start=1):
            if prompter:
                box = tuple(float(np.clip(v + rng.normal(0, 5), 0, size - 1)) for v in box)
                box = (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))
            prompts.append(Prompt(kind="box", label=label, prompter=f"p{prompter}", seed=0, box=box))
    return prompts


def build(name: str, full: bool, device: str, precision: str) -> PromptableSegmenter:
    """A segmenter on random weights: full-size upstream builders, or reduced encoders for CPU."""
    from sam2.build_sam import build_sam2
    from segment_anything import sam_model_registry
    from segment_anything.build_sam import _build_sam

    torch.manual_seed(0)
    if name in ("sam", "medsam"):
        model = (
            sam_model_registry["vit_b"]()
            if full
            else _build_sam(encoder_embed_dim=192, encoder_depth=4, encoder_num_heads=3, encoder_global_attn_indexes=[1, 3])
        )
        cls = SamSegmenter if name == "sam" else MedSamSegmenter
        return cls(model, device=device, precision=precision, variant="vit_b" if full else "reduced")
    config = "configs/sam2.1/sam2.1_hiera_b+.yaml"
    model = build_sam2(config, device="cpu", hydra_overrides_extra=[] if full else REDUCED_SAM2)
    return Sam2Segmenter(model, device=device, precision=precision, variant="base_plus" if full else "reduced")


def naive_loop(name: str, segmenter: PromptableSegmenter) -> Callable[[np.ndarray, list[Prompt]], None]:
    """One slice's worth of the per-mask loop: set_image + predict for every prompt."""
    if name == "medsam":
        def run(image, prompts):
            for p in prompts:
                segmenter.decode(segmenter.encode([image])[0], [p])
        return run
    if name == "sam":
        from segment_anything import SamPredictor
        predictor = SamPredictor(segmenter.model)
    else:
        from sam2.sam2_image_predictor import SAM2ImagePredictor
        predictor = SAM2ImagePredictor(segmenter.model)

    def run(image, prompts):
        rgb = np.repeat(image[:, :, None], 3, axis=2)
        with inference_context(segmenter.device, segmenter.precision):
            for p in prompts:
                predictor.set_image(rgb)
                predictor.predict(box=np.array(p.box), multimask_output=False)
    return run


def encoder_flops(segmenter: PromptableSegmenter, image: np.ndarray) -> float:
    """FLOPs of encoding one slice (the image encoder dominates; preprocessing is not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, inference_context(segmenter.device, segmenter.precision):
        segmenter._encode_batch([image])
    return float(counter.get_total_flops())


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def bench(name: str, args: argparse.Namespace) -> dict[str, float]:
    segmenter = build(name, args.full, args.device, args.precision)
    device = segmenter.device
    rng = np.random.default_rng(args.seed)
    slices = [phantom(args.size, args.labels, rng) for _ in range(args.slices)]
    images = [image for image, _ in slices]
    prompts = [prompts_for(boxes, args.prompters, args.size, rng) for _, boxes in slices]
    naive = naive_loop(name, segmenter)

    # warm-up: kernels, allocator, autotuning
    segmenter.decode(segmenter.encode(images[:1])[0], prompts[0])
    naive(images[0], prompts[0][:1])
    sync(device)

    began = time.perf_counter()
    embeddings = segmenter.encode(images)
    sync(device)
    encode_s = time.perf_counter() - began
    per_cell = [[[p for p in slice_prompts if p.prompter == f"p{k}"] for k in range(args.prompters)]
                for slice_prompts in prompts]
    decode_s = decode_all_s = decode_cpu_s = decode_all_cpu_s = 0.0
    for _ in range(args.repeats):  # alternated, so machine load hits both wirings alike
        began, began_cpu = time.perf_counter(), time.process_time()
        for embedding, cells in zip(embeddings, per_cell):
            for cell_prompts in cells:  # the runner: one decoder call per cell
                segmenter.decode(embedding, cell_prompts)
        sync(device)
        decode_s += (time.perf_counter() - began) / args.repeats
        decode_cpu_s += time.process_time() - began_cpu
        began, began_cpu = time.perf_counter(), time.process_time()
        for embedding, slice_prompts in zip(embeddings, prompts):  # before issue 12: one call for all cells
            segmenter.decode(embedding, slice_prompts)
        sync(device)
        decode_all_s += (time.perf_counter() - began) / args.repeats
        decode_all_cpu_s += time.process_time() - began_cpu

    result = {
        "encode_ms_per_slice": 1e3 * encode_s / args.slices,
        "decode_ms_per_slice": 1e3 * decode_s / args.slices,
        "decode_all_ms_per_slice": 1e3 * decode_all_s / args.slices,
        "harness_slices_per_s": args.slices / (encode_s + decode_s),
    }
    result["per_cell_decode_cost"] = decode_s / decode_all_s
    # process CPU time: on a shared CPU (and with --threads 1) steadier than wall time
    result["per_cell_decode_cpu_cost"] = decode_cpu_s / decode_all_cpu_s
    if args.no_naive:
        return result
    naive_slices = args.naive_slices or args.slices
    began = time.perf_counter()
    for image, slice_prompts in zip(images[:naive_slices], prompts[:naive_slices]):
        naive(image, slice_prompts)
    sync(device)
    naive_s = (time.perf_counter() - began) / naive_slices * args.slices
    result["naive_slices_per_s"] = args.slices / naive_s
    result["ratio"] = result["harness_slices_per_s"] / result["naive_slices_per_s"]
    peak = peak_tflops(device, args.peak_tflops)
    if peak:
        achieved = encoder_flops(segmenter, images[0]) * args.slices / encode_s / 1e12
        result["encoder_tflops"] = achieved
        result["encoder_fraction_of_peak"] = achieved / peak
    return result


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The options bench_segmenters and bench_gpu share: which models, how, on how many labels, against what peak."""
    parser.add_argument("--precision", default=None, help="fp32|bf16|fp16 (default: bf16 on CUDA, fp32 on CPU)")
    parser.add_argument("--models", default="sam,medsam,sam2")
    parser.add_argument("--labels", type=int, default=4)
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak; default from a table by GPU name")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true", help="full-size SAM vit_b, MedSAM vit_b, SAM2.1 base+")
    parser.add_argument("--slices", type=int, default=None, help="default 2 on CPU, 32 on CUDA")
    parser.add_argument("--naive-slices", type=int, default=None, help="time the naive loop on fewer slices")
    parser.add_argument("--size", type=int, default=384, help="slice side in pixels")
    parser.add_argument("--prompters", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="decode timings: mean over this many passes")
    parser.add_argument("--no-naive", action="store_true", help="skip the per-mask loop (time encode/decode only)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    args.precision = args.precision or ("bf16" if cuda else "fp32")
    args.slices = args.slices or (32 if cuda else 2)
    device_name = torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine()
    print(f"device: {device_name} ({args.device}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"precision {args.precision}, {'full-size' if args.full else 'reduced'} models")
    print(f"workload: {args.slices} slices {args.size}x{args.size}, {args.labels} labels x {args.prompters} prompters "
          f"= {args.labels * args.prompters} box prompts per slice")
    for name in args.models.split(","):
        r = bench(name, args)
        line = (f"{name:7s} encode {r['encode_ms_per_slice']:8.1f} ms/slice  decode {r['decode_ms_per_slice']:7.1f} ms/slice"
                f" ({args.prompters} calls; one call for all: {r['decode_all_ms_per_slice']:7.1f} ms; per-cell cost "
                f"x{r['per_cell_decode_cost']:.2f} wall, x{r['per_cell_decode_cpu_cost']:.2f} CPU time)"
                f"  harness {r['harness_slices_per_s']:7.2f} slices/s")
        if "ratio" in r:
            line += f"  naive {r['naive_slices_per_s']:7.3f} slices/s  ratio {r['ratio']:5.1f}x"
        if "encoder_fraction_of_peak" in r:
            line += f"  encoder {r['encoder_tflops']:.0f} TFLOPS = {100 * r['encoder_fraction_of_peak']:.0f}% of bf16 peak"
        print(line, flush=True)


if __name__ == "__main__":
    main()

"""Training time per epoch: decoder-only on cached embeddings (SAMRI) vs adapters vs full fine-tuning.

Both runs are `mskbench train` itself (:func:`mskbench.training.trainer.train`)
on the same phantom knee samples with the same recipe except ``train.mode``
(``adapters`` runs the encoder forward and backward like ``full`` but updates
only the adapters);
only the optimizer epochs are timed (``_Run.run_epoch``), not validation. The
decoder run's one-off embedding pass (every slice through the encoder once,
into the embedding cache) is reported separately. SAMRI reports that the image
encoder is about 88 % of SAM's training time, which decoder-only training on
cached embeddings removes; ``1 - decoder/full`` is that share here.

    python benchmarks/bench_train.py                            # CPU: SAM with a reduced encoder
    python benchmarks/bench_train.py --device cuda --encoder vit_b --precision bf16

``--encoder reduced`` is base.architecture = "reduced" (a 1-block, 64-wide
ViT; SAM's prompt encoder and mask decoder, full size), so on CPU the encoder's
share is far below ViT-B's; ``vit_b`` is segment_anything's ViT-B (random
weights: weights do not change the timing). The ratio is the figure to read;
absolute times move with the machine's load.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch

from mskbench.training import trainer
from mskbench.training.recipe import parse_recipe

PHANTOM = {"anatomy": "knee", "subjects": 10, "seed": 3, "pixel_spacing_min": 0.9, "pixel_spacing_max": 1.1,
           "supersample": 1}


def recipe(mode: str, args: argparse.Namespace):
    config = {
        "recipe": {"seed": 0, "device": args.device},
        "base": {"plugin": "sam", "init": "random", "architecture": "reduced" if args.encoder == "reduced" else "full"},
        "train": {"mode": mode, "epochs": args.epochs, "batch_size": args.batch_size, "precision": args.precision},
        "prompt": {"kind": "box", "max_shift": 20},
        "datasets": [{"name": "knee", "plugin": "phantom", "params": PHANTOM, "labels": ["femur", "tibia"],
                      "subjects": args.subjects, "slices_per_subject": args.slices}],
    }
    return parse_recipe(config, "bench_train", f"bench_{mode}")


def timed_run(mode: str, args: argparse.Namespace) -> tuple[list[float], float]:
    """(seconds of each training epoch, seconds of the decoder run's embedding pass)."""
    epochs: list[float] = []
    embed: list[float] = []
    run_epoch, embed_all = trainer._Run.run_epoch, trainer._Run.embed_all

    def timed_epoch(self, epoch, progress):
        began = time.perf_counter()
        loss = run_epoch(self, epoch, progress)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        epochs.append(time.perf_counter() - began)
        return loss

    def timed_embed(self, progress):
        began = time.perf_counter()
        embed_all(self, progress)
        embed.append(time.perf_counter() - began)

    trainer._Run.run_epoch, trainer._Run.embed_all = timed_epoch, timed_embed
    try:
        with tempfile.TemporaryDirectory() as out:
            trainer.train(recipe(mode, args), Path(out) / "run", show_progress=False)
    finally:
        trainer._Run.run_epoch, trainer._Run.embed_all = run_epoch, embed_all
    return epochs, (embed[0] if embed else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--encoder", choices=("reduced", "vit_b"), default="reduced")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--slices", type=int, default=3, help="slices per subject (2 labels each)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    results = {mode: timed_run(mode, args) for mode in ("decoder", "adapters", "full")}
    print(f"{platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, device {args.device}, "
          f"encoder {args.encoder}, {args.precision}, {args.threads} thread(s)")
    print(f"{args.subjects} training subjects x {args.slices} slices x 2 labels, batch {args.batch_size}; "
          f"epochs timed: {args.epochs} (first excluded from the mean when more than one)")
    means = {}
    for mode, (epochs, embed) in results.items():
        kept = epochs[1:] if len(epochs) > 1 else epochs
        means[mode] = sum(kept) / len(kept)
        extra = f"; one-off embedding pass {embed:.2f} s" if mode == "decoder" else ""
        print(f"  {mode:9s} {means[mode]:.3f} s/epoch (epochs: {', '.join(f'{e:.2f}' for e in epochs)}){extra}")
    ratio = means["full"] / means["decoder"]
    print(f"full / decoder = {ratio:.2f}x per epoch; decoder-only saves {1 - means['decoder'] / means['full']:.0%} "
          "of the epoch (SAMRI: the encoder is ~88 % of training time)")


if __name__ == "__main__":
    main()

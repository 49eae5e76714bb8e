"""The training loop of `mskbench train`: epochs of prompted samples, validation Dice, early stopping, resume.

Per epoch: the train samples in a seeded order (one dataset: a permutation;
several: :class:`torch.utils.data.WeightedRandomSampler` with each dataset's
``weight`` split over its samples, so weights are shares of the epoch),
each with a freshly shifted prompt (:mod:`.prompts`); batches of
``batch_size`` samples, an AdamW step every ``accumulate`` batches with the
gradient norm clipped, the learning rate warmed up linearly then annealed by
:class:`~torch.optim.lr_scheduler.CosineAnnealingWarmRestarts` per optimizer
step; then the val Dice of the model exactly as a suite runs it (the
segmenter's own ``encode`` / ``decode``, fixed prompts). An epoch whose val
Dice exceeds the best by more than ``min_delta`` becomes the best
(``best.pt``); ``patience`` epochs without one stop training. All
randomness of epoch e is drawn from generators seeded by (seed, e), so a
resumed run draws what an uninterrupted one would.

``decoder`` mode computes each slice's embedding once through the existing
embedding cache and trains the prompt encoder and mask decoder on it (the
SAMRI recipe); ``full`` and ``adapters`` run the image encoder with gradients
on every step (``adapters`` trains only SegmentAnyBone's encoder and decoder adapters).
Under ``torchrun`` (``WORLD_SIZE`` > 1) ``full`` / ``adapters`` training is data-parallel
with :class:`~torch.nn.parallel.DistributedDataParallel`: each rank takes
every world-th sample of the epoch's order and rank 0 writes the outputs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mskbench.errors import SuiteError, UserError
from mskbench.manifest import git_commit, package_versions
from mskbench.metrics.cases import case_state
from mskbench.metrics.overlap import OverlapMetrics
from mskbench.plugin_manager import Registry, get_registry
from mskbench.segmenters.adapters import attach_adapters
from mskbench.segmenters.cache import CachedSegmenter, EmbeddingCache, segmenter_key_prefix
from mskbench.segmenters.checkpoints import sha256_uncached
from mskbench.segmenters.sam_family import PromptableSegmenter
from mskbench.segmenters.torch_utils import torch_device
from mskbench.training.base import build_base, trainable_parameters
from mskbench.training.card import CARD_NAME, MODEL_NAME, ModelCard, PromptSetting, write_card
from mskbench.training.data import Sample, TrainingData, load_training_data, select_subjects
from mskbench.training.losses import LossFn, make_loss
from mskbench.training.progress import TrainProgress
from mskbench.training.prompts import mask_prompt
from mskbench.training.recipe import Recipe
from mskbench.training.state import (
    BEST_NAME,
    METRICS_NAME,
    RESUME_NAME,
    load_state,
    save_atomic,
    write_metrics,
)
from mskbench.types import Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOutcome:
    out_dir: Path
    card: ModelCard
    history: list[dict[str, Any]]


def _prompt_arrays(prompt: Prompt) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """(points (1, k, 2), labels (1, k), box (1, 4)) as the segmenters' decoders take them."""
    points = labels = box = None
    if prompt.points:
        points = np.asarray([prompt.points], dtype=np.float64)
        labels = np.asarray([prompt.point_labels])
    if prompt.box is not None:
        box = np.asarray([prompt.box], dtype=np.float64)
    return points, labels, box


class PromptedLoss(nn.Module):
    """The mean loss of a batch of (embedding or image, prompt, target); a module so DDP can wrap it."""

    def __init__(self, segmenter: PromptableSegmenter, loss: LossFn, encode: bool) -> None:
        super().__init__()
        self.model = segmenter.model
        self.segmenter = segmenter
        self.loss = loss
        self.encode = encode

    def forward(self, samples: list[Sample], prompts: list[Prompt], embeddings: list[dict] | None) -> torch.Tensor:
        segmenter = self.segmenter
        if self.encode:  # full mode: the image encoder runs with gradients, equally sized slices together
            embeddings = [None] * len(samples)  # type: ignore[list-item]
            by_shape: dict[tuple[int, int], list[int]] = {}
            for i, sample in enumerate(samples):
                by_shape.setdefault(sample.image.shape, []).append(i)
            for indices in by_shape.values():
                for i, embedding in zip(indices, segmenter.trainable_embeddings([samples[i].image for i in indices])):
                    embeddings[i] = embedding
        total = torch.zeros((), device=segmenter.device)
        for sample, prompt, embedding in zip(samples, prompts, embeddings):  # type: ignore[arg-type]
            low_res = segmenter.low_res_logits(embedding, *_prompt_arrays(prompt))
            logits = segmenter.full_size_logits(low_res, embedding).float()
            target = torch.as_tensor(sample.mask, dtype=torch.float32, device=segmenter.device)[None, None]
            total = total + self.loss(logits, target)
        return total / len(samples)


def epoch_order(samples: list[Sample], weights: dict[str, float], seed: int, epoch: int) -> list[int]:
    """The sample indices of one epoch (module docstring), seeded by (seed, epoch)."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]))
    usable = [i for i, s in enumerate(samples) if weights[s.dataset] > 0]
    datasets = {samples[i].dataset for i in usable}
    if len(datasets) == 1:
        return [usable[i] for i in torch.randperm(len(usable), generator=generator).tolist()]
    counts = {name: sum(1 for i in usable if samples[i].dataset == name) for name in datasets}
    per_sample = [weights[s.dataset] / counts[s.dataset] if weights[s.dataset] > 0 else 0.0 for s in samples]
    sampler = torch.utils.data.WeightedRandomSampler(per_sample, len(usable), replacement=True, generator=generator)
    return list(sampler)


def _scheduler(optimizer: torch.optim.Optimizer, train: dict[str, Any], steps_per_epoch: int):
    """Linear warm-up then cosine annealing with warm restarts, both stepped once per optimizer step."""
    cosine = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=train["restart_epochs"] * steps_per_epoch, T_mult=train["restart_mult"], eta_min=train["min_lr"]
    )
    if not train["warmup_steps"]:
        return cosine
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1e-3, total_iters=train["warmup_steps"])
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, cosine], milestones=[train["warmup_steps"]])


def dice(reference: np.ndarray, prediction: np.ndarray) -> float:
    """The suite's Dice (:class:`~mskbench.metrics.overlap.OverlapMetrics`) of one reference and prediction."""
    value = OverlapMetrics().compute(reference, prediction, (1.0, 1.0), case_state(reference, prediction))["dice"]
    return float(value.value)


def validation_dice(segmenter: Any, samples: list[Sample], kind: str) -> float:
    """Mean Dice over the val samples of the model as a suite runs it: ``encode`` each slice, ``decode`` its prompts."""
    by_slice: dict[tuple[str, str, int], list[Sample]] = {}
    for sample in samples:
        by_slice.setdefault((sample.dataset, sample.subject, sample.slice_index), []).append(sample)
    scores = []
    for group in by_slice.values():
        embedding = segmenter.encode([group[0].image])[0]
        prompts = [mask_prompt(s.mask, s.label, kind, 0.0, "original", None) for s in group]
        masks = segmenter.decode(embedding, prompts)
        scores.extend(dice(s.mask, m) for s, m in zip(group, masks))
    return float(np.mean(scores))


def _distributed(mode: str, device: torch.device) -> tuple[int, int]:
    """(rank, world size); under torchrun, the process group is started (``full`` mode only)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if mode == "decoder":
        raise SuiteError("train.mode = \"decoder\" trains on one device (its embeddings are cached); run it without "
                         "torchrun, or use mode = \"full\" or \"adapters\"")
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def _check_out(out_dir: Path, resume: bool) -> None:
    from mskbench.output_paths import writable_folder

    writable_folder(out_dir, "--out")
    if resume:
        if (out_dir / CARD_NAME).exists() and not (out_dir / RESUME_NAME).exists():
            raise UserError(f"--out {out_dir}: this training run is complete ({CARD_NAME} is written); nothing to "
                            "resume")
        return
    for name in (RESUME_NAME, CARD_NAME, MODEL_NAME):
        if (out_dir / name).exists():
            raise UserError(f"--out {out_dir}: already holds {name} from another training run; pass --resume to "
                            "continue it, or choose an empty folder")


def _device(recipe: Recipe) -> torch.device:
    device = torch_device(recipe.device)
    if recipe.train["precision"] == "bf16" and device.type != "cuda":
        raise UserError(f"train.precision = \"bf16\" is CUDA-only (autocast) and this run is on {device}; set "
                        "precision = \"fp32\" or run on a CUDA device")
    if local := os.environ.get("LOCAL_RANK"):
        if device.type == "cuda":
            device = torch.device("cuda", int(local))
            torch.cuda.set_device(device)
    return device


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


class _Run:
    """One training run's moving parts; :func:`train` drives it."""

    def __init__(self, recipe: Recipe, out_dir: Path, data: TrainingData, segmenter: PromptableSegmenter,
                 plugin: str, device: torch.device, rank: int, world: int) -> None:
        train = recipe.train
        self.recipe, self.out_dir, self.data, self.segmenter = recipe, out_dir, data, segmenter
        self.device, self.rank, self.world = device, rank, world
        self.mode = train["mode"]
        if self.mode == "adapters":
            torch.manual_seed(recipe.seed)  # the adapters' projections are drawn (upstream's default init)
            attach_adapters(segmenter.model, train["adapter_ratio"])
        self.params = trainable_parameters(segmenter.model, self.mode)
        self.module: nn.Module = PromptedLoss(segmenter, make_loss(train["loss"]), encode=self.mode != "decoder")
        if world > 1:
            # find_unused_parameters: heads the loss does not reach (IoU head, the other mask tokens) get no gradient
            self.module = nn.parallel.DistributedDataParallel(
                self.module, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
            )
        self.optimizer = torch.optim.AdamW(self.params, lr=train["lr"], weight_decay=train["weight_decay"])
        self.weights = {d.entry.name: d.weight for d in recipe.datasets}
        per_rank = sum(1 for s in data.train if self.weights[s.dataset] > 0) // world
        self.steps_per_epoch = max(1, math.ceil(math.ceil(per_rank / train["batch_size"]) / train["accumulate"]))
        self.scheduler = _scheduler(self.optimizer, train, self.steps_per_epoch)
        self.encoder = segmenter  # what validation and decoder-mode batches encode with
        if self.mode == "decoder":
            cache_dir = Path(train["embedding_cache"] or out_dir / "embeddings")
            cache = EmbeddingCache(cache_dir, int(train["embedding_cache_max_gb"] * 1e9))
            self.encoder = CachedSegmenter(segmenter, cache, segmenter_key_prefix(plugin, segmenter))

    def embed_all(self, progress: TrainProgress) -> None:
        """Decoder mode: every distinct slice through the embedding cache once, before the first epoch."""
        slices = {(s.dataset, s.subject, s.slice_index): s.image for s in self.data.train + self.data.val}
        progress.start("embeddings", len(slices))
        for image in slices.values():
            self.encoder.encode([image])
            progress.advance()

    def run_epoch(self, epoch: int, progress: TrainProgress) -> float:
        """One epoch of optimizer steps; the mean training loss of its batches."""
        train, recipe = self.recipe.train, self.recipe
        order = epoch_order(self.data.train, self.weights, recipe.seed, epoch)
        rng = np.random.default_rng([recipe.seed, epoch])
        prompt = recipe.prompt
        prompts = [mask_prompt(self.data.train[i].mask, self.data.train[i].label, prompt["kind"], prompt["max_shift"],
                               prompt["shift_space"], rng) for i in order]
        # under DDP each rank takes every world-th sample (and its prompt, drawn for the whole epoch as one process
        # draws it), the epoch cut to a multiple of the world size so every rank runs the same number of steps
        usable = len(order) // self.world * self.world
        order, prompts = order[self.rank : usable : self.world], prompts[self.rank : usable : self.world]
        batches = [list(range(k, min(k + train["batch_size"], len(order)))) for k in range(0, len(order), train["batch_size"])]
        self.module.train()
        losses = []
        progress.start(f"epoch {epoch}", len(batches))
        for b, batch in enumerate(batches):
            samples = [self.data.train[order[k]] for k in batch]
            embeddings = None
            if self.mode == "decoder":
                embeddings = self.encoder.encode([s.image for s in samples])
            with _autocast(self.device, train["precision"]):
                loss = self.module(samples, [prompts[k] for k in batch], embeddings)
            (loss / train["accumulate"]).backward()
            losses.append(float(loss.detach()))
            if (b + 1) % train["accumulate"] == 0 or b == len(batches) - 1:
                if train["grad_clip"] > 0:
                    torch.nn.utils.clip_grad_norm_(self.params, train["grad_clip"])
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            progress.advance(loss=losses[-1])
        return float(np.mean(losses))

    def validate(self) -> float:
        self.segmenter.model.eval()
        return validation_dice(self.encoder, self.data.val, self.recipe.prompt["kind"])

    def state(self, epoch: int, history: list[dict[str, Any]], best: dict[str, Any]) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "model": self.segmenter.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "history": history,
            "best": best,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.segmenter.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])


def _card(recipe: Recipe, base_card, data: TrainingData, best: dict[str, Any], epochs_run: int, device: torch.device,
          seconds: float, model_path: Path) -> ModelCard:
    prompt = recipe.prompt
    return ModelCard(
        recipe=recipe.config,
        recipe_sha256=recipe.sha256,
        base=base_card,
        trains=recipe.train["mode"],
        prompt=PromptSetting(prompt["kind"], prompt["max_shift"], prompt["shift_space"]),
        datasets=data.datasets,
        subjects={d.entry.name: d.subjects for d in recipe.datasets},
        mix={d.entry.name: d.weight for d in recipe.datasets},
        data=data.subjects,
        epochs_run=epochs_run,
        best_epoch=best["epoch"],
        best_val_dice=best["dice"],
        untrained_val_dice=best["untrained"],
        git_commit=git_commit(Path(__file__).parent),
        versions={k: v for k, v in package_versions().items() if v is not None},
        device=str(device),
        wall_seconds=seconds,
        checkpoint_file=model_path.name,
        checkpoint_sha256=sha256_uncached(model_path),
    )


def train(recipe: Recipe, out_dir: Path, resume: bool = False, registry: Registry | None = None,
          show_progress: bool = True) -> TrainOutcome:
    """Run ``recipe`` into ``out_dir``; every input is checked before the first epoch (one-line errors)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun rank 0 owns OUT (others start while it writes)
        _check_out(out_dir, resume)
    device = _device(recipe)
    rank, world = _distributed(recipe.train["mode"], device)
    registry = registry or get_registry()
    selections = select_subjects(recipe, registry)
    base = build_base(recipe.base, recipe.seed, str(device), registry)
    out_dir.mkdir(parents=True, exist_ok=True)
    with TrainProgress(show_progress and rank == 0) as progress:
        progress.start("subjects", sum(len(s.train_ids) + len(s.val_ids) for s in selections))
        data = load_training_data(selections, progress.advance)
        run = _Run(recipe, out_dir, data, base.segmenter, recipe.base["plugin"], device, rank, world)
        if run.mode == "decoder":
            run.embed_all(progress)
        history: list[dict[str, Any]] = []
        best: dict[str, Any] = {"epoch": 0, "dice": -1.0, "stale": 0, "untrained": None}
        first = 1
        resume_path = out_dir / RESUME_NAME
        if resume and resume_path.exists():
            state = load_state(resume_path)
            run.restore(state)
            history, best, first = state["history"], state["best"], state["epoch"] + 1
            log.info("resuming %s after epoch %d", out_dir, state["epoch"])
        else:
            untrained = run.validate()
            best["untrained"] = untrained
            history.append({"epoch": 0, "train_loss": None, "val_dice": untrained, "lr": None, "seconds": 0.0,
                            "best": False})
        stop = bool(recipe.train["patience"]) and best["stale"] >= recipe.train["patience"]
        for epoch in range(first, recipe.train["epochs"] + 1):
            if stop:
                break
            began = time.perf_counter()
            loss = run.run_epoch(epoch, progress)
            val = run.validate()
            improved = val > best["dice"] + recipe.train["min_delta"] or best["epoch"] == 0
            if improved:
                best.update(epoch=epoch, dice=val, stale=0)
                if rank == 0:
                    save_atomic(run.segmenter.model.state_dict(), out_dir / BEST_NAME)
            else:
                best["stale"] += 1
            history.append({"epoch": epoch, "train_loss": loss, "val_dice": val,
                            "lr": run.optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - began,
                            "best": improved})
            progress.epoch_done(epoch, loss, val, best["dice"])
            if rank == 0:
                write_metrics(history, out_dir / METRICS_NAME)
                save_atomic(run.state(epoch, history, best), resume_path)
            stop = bool(recipe.train["patience"]) and best["stale"] >= recipe.train["patience"]
    epochs_run = history[-1]["epoch"]
    model_path = out_dir / MODEL_NAME
    card = None
    if epochs_run == 0:  # epochs = 0: the base model itself, scored by its untrained val Dice
        best["dice"] = best["untrained"]
        if rank == 0:
            save_atomic(run.segmenter.model.state_dict(), out_dir / BEST_NAME)
    if rank == 0:
        os.replace(out_dir / BEST_NAME, model_path)
        card = _card(recipe, base.card, data, best, epochs_run, device, time.perf_counter() - started, model_path)
        write_card(card, out_dir / CARD_NAME)
        resume_path.unlink(missing_ok=True)  # epochs = 0 wrote none
    return TrainOutcome(out_dir, card, history)  # type: ignore[arg-type]

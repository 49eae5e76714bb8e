"""The round loop of an interactive cell (DESIGN §2, §11): predict, place clicks, refine, repeat.

Three shapes of the same loop:

- :func:`slice_rounds`: a slice model, clicks placed per slice; all rounds
  of one slice run while its embedding is at hand.
- :class:`VolumeRounds`: a slice model, clicks placed in the volume; round 0
  is decoded slice by slice as the embeddings are made, then each round
  places its clicks on the whole prediction and refines only the slices they
  land on (embeddings are kept for the subject, each computed once).
- :func:`volume_model_rounds`: a volume model, clicks placed in the volume.

Each returns the per-round label masks, the clicks as :class:`Prompt` rows
(``round`` k, the slice they lie on) and (round, slice, seconds) refine
timings. A label whose prediction equals the reference gets no click and no
model call in that round; its mask carries over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mskbench.data.preprocess import take_slice
from mskbench.interaction.placement import Click
from mskbench.model_kinds import check_volume_output, feedback_given
from mskbench.prompting.seeding import VOLUME
from mskbench.protocols import InteractivePrompter, Refinement, VolumeInput
from mskbench.types import Prompt

#: (slice index or VOLUME, round) -> the round's generator and its seed
RoundRng = Callable[[int, int], tuple[np.random.Generator, int]]
Timing = tuple[int, int, float]  # round, slice (-1: volume), seconds


@dataclass
class Target:
    """The state of one (slice, label): its prompt with every click so far and the last output."""

    prompt: Prompt | None
    mask: np.ndarray
    logits: np.ndarray | None = None

    def previous(self, feedback: str) -> np.ndarray | None:
        if feedback == "logits":
            return self.logits
        if feedback == "mask":
            return self.mask
        return None


@dataclass
class Rounds:
    """What a session produced; ``masks[r][label]`` is a bool array (slice or volume)."""

    masks: list[dict[int, np.ndarray]]
    clicks: list[Prompt] = field(default_factory=list)
    timings: list[Timing] = field(default_factory=list)


def with_clicks(
    prompt: Prompt | None, label: int, points: Sequence[tuple[float, float]], labels: Sequence[int]
) -> Prompt:
    """The prompt plus new clicks: a box becomes box+point, points accumulate."""
    if prompt is None:
        return Prompt(kind="point", label=label, prompter="", seed=0, points=tuple(points), point_labels=tuple(labels))
    kind = "box+point" if prompt.box is not None else "point"
    return Prompt(
        kind=kind, label=prompt.label, prompter=prompt.prompter, seed=prompt.seed, instance=prompt.instance,
        box=prompt.box, points=prompt.points + tuple(points), point_labels=prompt.point_labels + tuple(labels),
        clipped=prompt.clipped,
    )


def xy(click: Click) -> tuple[float, float]:
    """An in-plane click (row, col) as a prompt point (x = column, y = row)."""
    return float(click.position[1]), float(click.position[0])


def in_plane(click: Click, axis: int) -> tuple[int, Click]:
    """A 3D click as (its slice along ``axis``, the click on that slice)."""
    return click.position[axis], Click(tuple(v for a, v in enumerate(click.position) if a != axis), click.positive)


def click_prompt(click: Click, label: int, name: str, seed: int, round_: int, k: int) -> Prompt:
    """How one in-plane click is recorded: a one-point prompt of its round on its slice ``k``."""
    return Prompt(
        kind="point", label=label, prompter=name, seed=seed, points=(xy(click),), point_labels=(int(click.positive),),
        round=round_, slice_index=k,
    )


def _timed_refine(refine: Callable[[], Refinement]) -> tuple[Refinement, float]:
    began = time.perf_counter()
    result = refine()
    return result, time.perf_counter() - began


def _start(model: Any, embedding: Any, prompt: Prompt | None, shape: tuple[int, int]) -> tuple[Target, float]:
    if prompt is None:
        return Target(None, np.zeros(shape, dtype=bool)), 0.0
    result, seconds = _timed_refine(lambda: model.refine(embedding, prompt, None))
    return Target(prompt, np.asarray(result.mask, dtype=bool), result.logits), seconds


def _refine(model: Any, embedding: Any, target: Target, clicks: Sequence[Click], label: int, feedback: str) -> float:
    prompt = with_clicks(target.prompt, label, [xy(c) for c in clicks], [int(c.positive) for c in clicks])
    result, seconds = _timed_refine(lambda: model.refine(embedding, prompt, target.previous(feedback)))
    target.prompt, target.mask, target.logits = prompt, np.asarray(result.mask, dtype=bool), result.logits
    return seconds


def slice_rounds(
    model: Any, embedding: Any, k: int, reference: np.ndarray, initial: dict[int, Prompt],
    labels: Sequence[int], prompter: InteractivePrompter, name: str, rng: RoundRng,
) -> Rounds:
    """Every round of one slice, clicks placed on the slice (``space = "slice"``)."""
    out = Rounds([{} for _ in range(prompter.rounds + 1)])
    feedback = feedback_given(prompter.feedback, frozenset(getattr(model, "feedback", ())))
    targets: dict[int, Target] = {}
    truth = {label: reference == label for label in labels}  # the reference never changes between rounds
    for label in labels:
        if label not in initial and not truth[label].any():
            continue
        targets[label], seconds = _start(model, embedding, initial.get(label), reference.shape)
        out.timings.append((0, k, seconds))
        out.masks[0][label] = targets[label].mask
    for r in range(1, prompter.rounds + 1):
        generator, seed = rng(k, r)
        for label, target in targets.items():
            clicks = prompter.place(truth[label], target.mask, generator)
            if clicks:
                out.timings.append((r, k, _refine(model, embedding, target, clicks, label, feedback)))
                out.clicks.extend(click_prompt(c, label, name, seed, r, k) for c in clicks)
            out.masks[r][label] = target.mask
    return out


class VolumeRounds:
    """A slice model with clicks placed in the volume (``space = "volume"``); see the module docstring."""

    def __init__(self, model: Any, reference: np.ndarray, axis: int, labels: Sequence[int],
                 prompter: InteractivePrompter, name: str, rng: RoundRng) -> None:
        self.model, self.reference, self.axis, self.labels = model, reference, axis, list(labels)
        self.truth = {label: reference == label for label in self.labels}  # fixed for every round
        self.prompter, self.name, self.rng = prompter, name, rng
        self.feedback = feedback_given(prompter.feedback, frozenset(getattr(model, "feedback", ())))
        self.embeddings: dict[int, Any] = {}
        self.targets: dict[tuple[int, int], Target] = {}
        self.round0 = {label: np.zeros(reference.shape, dtype=bool) for label in self.labels}
        self.out = Rounds([])

    def start_slice(self, k: int, embedding: Any, initial: dict[int, Prompt]) -> None:
        """Round 0 of slice ``k``; the embedding is kept for the later rounds."""
        self.embeddings[k] = embedding
        shape = take_slice(self.reference, self.axis, k).shape
        for label, prompt in initial.items():
            target, seconds = _start(self.model, embedding, prompt, shape)
            self.targets[(k, label)] = target
            self.out.timings.append((0, k, seconds))
            take_slice(self.round0[label], self.axis, k)[...] = target.mask

    def finish(self) -> Rounds:
        """Rounds 1..K over the whole volume."""
        self.out.masks = [self.round0]
        current = self.round0
        for r in range(1, self.prompter.rounds + 1):
            generator, seed = self.rng(VOLUME, r)
            current = {label: mask.copy() for label, mask in current.items()}
            for label in self.labels:
                clicks = self.prompter.place(self.truth[label], current[label], generator, self.axis)
                by_slice: dict[int, list[Click]] = {}
                for click in clicks:
                    k, flat = in_plane(click, self.axis)
                    by_slice.setdefault(k, []).append(flat)
                for k, slice_clicks in sorted(by_slice.items()):
                    target = self.targets.get((k, label))
                    if target is None:
                        shape = take_slice(self.reference, self.axis, k).shape
                        target = self.targets[(k, label)] = Target(None, np.zeros(shape, dtype=bool))
                    seconds = _refine(self.model, self.embeddings[k], target, slice_clicks, label, self.feedback)
                    self.out.timings.append((r, k, seconds))
                    take_slice(current[label], self.axis, k)[...] = target.mask
                    self.out.clicks.extend(click_prompt(c, label, self.name, seed, r, k) for c in slice_clicks)
            self.out.masks.append(current)
        return self.out


def volume_model_rounds(
    model: Any, model_name: str, volume: VolumeInput, reference: np.ndarray, initial: dict[int, list[Prompt]],
    prompter: InteractivePrompter, name: str, rng: RoundRng,
) -> Rounds:
    """An interactive volume model, clicks placed in the volume; each label is refined on its own.

    ``initial`` holds every round-0 prompt of a label (a box3d, or one per slice from a 2D prompter),
    so the model sees exactly the prompts recorded.
    """
    out = Rounds([{} for _ in range(prompter.rounds + 1)])
    axis = volume.axis
    feedback = feedback_given(prompter.feedback, frozenset(getattr(model, "feedback", ())))
    targets: dict[int, tuple[list[Prompt], Target]] = {}
    for label in volume.labels:
        prompts = list(initial.get(label, []))
        if prompts:
            result, seconds = _timed_refine(lambda: model.refine(volume, prompts, None))
            target = Target(None, _mask(result, reference.shape, model_name), result.logits)
            out.timings.append((0, VOLUME, seconds))
        else:
            target = Target(None, np.zeros(reference.shape, dtype=bool))
        targets[label] = (prompts, target)
        out.masks[0][label] = target.mask
    truth = {label: reference == label for label in targets}  # fixed for every round
    for r in range(1, prompter.rounds + 1):
        generator, seed = rng(VOLUME, r)
        for label, (prompts, target) in targets.items():
            clicks = prompter.place(truth[label], target.mask, generator, axis)
            if clicks:
                for c in clicks:
                    k, flat = in_plane(c, axis)
                    prompts.append(click_prompt(flat, label, name, seed, r, k))
                out.clicks.extend(prompts[-len(clicks):])
                previous = target.previous(feedback)
                result, seconds = _timed_refine(lambda: model.refine(volume, list(prompts), previous))
                target.mask, target.logits = _mask(result, reference.shape, model_name), result.logits
                out.timings.append((r, VOLUME, seconds))
            out.masks[r][label] = target.mask
    return out


def _mask(result: Refinement, shape: tuple[int, ...], model_name: str) -> np.ndarray:
    return check_volume_output(result.mask, shape, model_name, "mask").astype(bool, copy=False)

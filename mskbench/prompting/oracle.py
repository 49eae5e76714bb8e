"""Prompters that read the reference labels (oracle prompts) and the `none` prompter.

Each returns prompts with ``prompter=""`` and ``seed=0``; the runner stamps
the suite's prompter name and the slice's derived seed (see
:mod:`mskbench.prompting.seeding`). A label absent from the reference slice
gets no prompt from an oracle prompter, so the harness scores it as
``both_empty`` or ``false_positive`` from the model's output alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mskbench.errors import PluginError
from mskbench.prompting.boxes import clip_box
from mskbench.prompting.jitter import JITTER_MODES, RESOLUTIONS, check_max_shift, jitter_box, shift_in_pixels
from mskbench.prompting.points import POINT_STRATEGIES, negative_points, positive_points
from mskbench.prompting.targets import Target, find_targets
from mskbench.types import Prompt, SliceRef


class NonePrompter:
    """Automatic mode: one ``none`` prompt for every requested label, present or not.

    It never looks at the reference, so an automatic or semantic model is
    asked for every label and its false positives on slices without the
    structure are scored like any other prediction.
    """

    produces = frozenset({"none"})
    reference_free = True

    def prompts(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        labels: Sequence[int],
        rng: np.random.Generator,
        where: SliceRef,
    ) -> list[Prompt]:
        return [Prompt(kind="none", label=int(label), prompter="", seed=0) for label in labels]


class _TargetPrompter:
    """Shared part: find the targets (per label or per instance), prompt each one."""

    def __init__(self, instances: bool = False, min_component_pixels: int = 1) -> None:
        if min_component_pixels < 1:
            raise PluginError(f"min_component_pixels: {min_component_pixels!r} must be >= 1")
        self.instances = instances
        self.min_component_pixels = min_component_pixels

    def prompts(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        labels: Sequence[int],
        rng: np.random.Generator,
        where: SliceRef,
    ) -> list[Prompt]:
        targets = find_targets(
            reference, labels, instances=self.instances, min_component_pixels=self.min_component_pixels
        )
        return [self._prompt(target, reference.shape, rng) for target in targets]

    def _prompt(self, target: Target, shape: tuple[int, int], rng: np.random.Generator) -> Prompt:
        raise NotImplementedError


class GtBoxPrompter(_TargetPrompter):
    """The tight box of the reference target: the upper bound of box prompting."""

    produces = frozenset({"box"})

    def _prompt(self, target: Target, shape: tuple[int, int], rng: np.random.Generator) -> Prompt:
        return Prompt(kind="box", label=target.label, instance=target.instance, prompter="", seed=0, box=target.box)


class JitterBoxPrompter(_TargetPrompter):
    """The tight box with each side moved by the mode's rule, clipped to the image."""

    produces = frozenset({"box"})

    def __init__(
        self,
        mode: str = "outward",
        max_shift: float = 10.0,
        resolution: str = "original",
        instances: bool = False,
        min_component_pixels: int = 1,
    ) -> None:
        super().__init__(instances, min_component_pixels)
        if mode not in JITTER_MODES:
            raise PluginError(f"mode: {mode!r} is not one of {', '.join(JITTER_MODES)}")
        self.mode = mode
        if resolution not in RESOLUTIONS:
            raise PluginError(f"resolution: {resolution!r} is not one of {', '.join(RESOLUTIONS)}")
        self.max_shift = check_max_shift(max_shift)
        self.resolution = resolution

    def _prompt(self, target: Target, shape: tuple[int, int], rng: np.random.Generator) -> Prompt:
        shift = shift_in_pixels(self.max_shift, self.resolution, shape)
        box, clipped = clip_box(jitter_box(target.box, self.mode, shift, rng), shape)
        return Prompt(
            kind="box", label=target.label, instance=target.instance, prompter="", seed=0, box=box, clipped=clipped
        )


def _check_strategy(strategy: str, where: str) -> str:
    if strategy not in POINT_STRATEGIES:
        raise PluginError(f"{where}: {strategy!r} is not one of {', '.join(POINT_STRATEGIES)}")
    return strategy


class PointsPrompter(_TargetPrompter):
    """``positive`` points inside the target, then ``negative`` points around it (labels 1 then 0)."""

    produces = frozenset({"point"})

    def __init__(
        self,
        positive: int = 1,
        strategy: str = "centroid_snapped",
        negative: int = 0,
        negative_margin: int = 10,
        instances: bool = False,
        min_component_pixels: int = 1,
    ) -> None:
        super().__init__(instances, min_component_pixels)
        if positive < 1:
            raise PluginError(f"positive: {positive!r} must be >= 1; a point prompt needs a foreground point")
        self.positive = positive
        self.strategy = _check_strategy(strategy, "strategy")
        self.negative = negative
        self.negative_margin = negative_margin

    def _prompt(self, target: Target, shape: tuple[int, int], rng: np.random.Generator) -> Prompt:
        pos = positive_points(target.mask, self.positive, self.strategy, rng)
        neg = negative_points(target.mask, target.box, self.negative, self.negative_margin, rng)
        return Prompt(
            kind="point",
            label=target.label,
            instance=target.instance,
            prompter="",
            seed=0,
            points=tuple(pos + neg),
            point_labels=(1,) * len(pos) + (0,) * len(neg),
        )


class BoxPointPrompter(_TargetPrompter):
    """SAMRI-style: the tight box plus one foreground point inside the target."""

    produces = frozenset({"box+point"})

    def __init__(
        self, strategy: str = "centroid_snapped", instances: bool = False, min_component_pixels: int = 1
    ) -> None:
        super().__init__(instances, min_component_pixels)
        self.strategy = _check_strategy(strategy, "strategy")

    def _prompt(self, target: Target, shape: tuple[int, int], rng: np.random.Generator) -> Prompt:
        point = positive_points(target.mask, 1, self.strategy, rng)
        return Prompt(
            kind="box+point",
            label=target.label,
            instance=target.instance,
            prompter="",
            seed=0,
            box=target.box,
            points=tuple(point),
            point_labels=(1,),
        )

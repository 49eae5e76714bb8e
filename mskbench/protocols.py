"""What each kind of plugin object must provide (DESIGN.md §2–§4).

Factories registered through the hooks in :mod:`mskbench.hookspecs` return
objects satisfying these protocols. They are structural (``typing.Protocol``):
a plugin never imports a base class, it only has to have these members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mskbench.types import LabelInfo, Prompt, SliceAxis, SliceRef, Subject


@runtime_checkable
class Dataset(Protocol):
    """A source of subjects, loaded one at a time so runs stream."""

    label_map: dict[int, LabelInfo]
    slice_axis: SliceAxis

    def subject_ids(self, split: str | None = None) -> list[str]:
        """Subject ids in a stable order; ``split=None`` means all."""
        ...

    def load(self, subject_id: str) -> Subject:
        """Read one subject; raise :class:`mskbench.errors.DataError` on bad input."""
        ...


@runtime_checkable
class Segmenter(Protocol):
    """A promptable 2D model: encode each slice once, decode many prompts.

    Images are uint8 H×W slices after dataset-level normalisation; the
    segmenter converts them to its own convention internally. ``decode``
    returns a bool array (len(prompts), H, W) in the original slice's pixels.
    """

    supported_prompts: frozenset[str]

    def encode(self, images: Sequence[np.ndarray]) -> list[Any]: ...

    def decode(self, embedding: Any, prompts: Sequence[Prompt]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]:
        """Manifest entry: architecture, checkpoint path and sha256, dtype."""
        ...


@runtime_checkable
class Prompter(Protocol):
    """Makes the prompts for one slice from its image and reference labels.

    ``produces`` is the set of prompt kinds it emits, checked against a
    model's ``supported_prompts`` when the plan is built. The runner stamps
    the prompter's suite name and seed onto every returned prompt.
    """

    produces: frozenset[str]

    def prompts(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        labels: Sequence[int],
        rng: np.random.Generator,
        where: SliceRef,
    ) -> list[Prompt]: ...


@dataclass(frozen=True)
class MetricValue:
    """One metric value; ``substituted`` marks a worst-case stand-in."""

    value: float
    substituted: bool = False


@runtime_checkable
class Metric(Protocol):
    """Scores one (unit, label): a 2D slice or a 3D volume.

    ``names`` lists the values it returns. ``case_state`` is one of hit,
    miss, false_positive, both_empty, decided by the harness (DESIGN §7).
    """

    names: tuple[str, ...]

    def compute(
        self,
        reference: np.ndarray,
        prediction: np.ndarray,
        spacing: Sequence[float],
        case_state: str,
    ) -> dict[str, MetricValue]: ...


@dataclass(frozen=True)
class BiomarkerValue:
    """One biomarker value of one structure from one mask (reference or prediction).

    ``value`` is NaN when the structure is missing from the mask (recorded as
    missing, never as zero). ``instance`` numbers disc levels and the like.
    """

    structure: str
    biomarker: str
    value: float
    unit: str
    method: str
    instance: int | None = None


@runtime_checkable
class Biomarker(Protocol):
    """Computes a clinical biomarker from a label volume of one subject.

    ``labels`` is the reference or the predicted label volume on the
    subject's grid; ``structures`` are the labels the suite selected for it;
    ``slice_axis`` is the array axis the dataset is sliced along.
    """

    def compute(
        self,
        labels: np.ndarray,
        subject: Subject,
        structures: Sequence[LabelInfo],
        slice_axis: int,
    ) -> list[BiomarkerValue]: ...

"""What each kind of plugin object must provide (DESIGN.md §2–§4).

Factories registered through the hooks in :mod:`mskbench.hookspecs` return
objects satisfying these protocols. They are structural (``typing.Protocol``):
a plugin never imports a base class, it only has to have these members.

Models come in two kinds, each its own small protocol: ``slice``
(:class:`Segmenter`, encode/decode) and ``volume`` (:class:`VolumeModel`).
Being ``interactive`` is a capability added to either kind
(:class:`InteractiveSegmenter`, :class:`InteractiveVolumeModel`). The factory
declares both (attributes ``kind`` and ``interactive``, see
:mod:`mskbench.model_kinds`) so the plan checks them before a model is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Refinement:
    """One interactive step's output: the mask, and what the model wants back next round.

    ``logits`` are the model's own low-resolution scores (SAM: 1×256×256,
    fed back as ``mask_input``); None when the model has none.
    """

    mask: np.ndarray
    logits: np.ndarray | None = None


@runtime_checkable
class InteractiveSegmenter(Protocol):
    """A slice model that refines: one prompt with all clicks so far, plus its previous output.

    ``previous`` is what the suite's ``feedback`` names: the previous
    :attr:`Refinement.logits`, the previous bool mask, or None (first round,
    or ``feedback = "none"``). ``feedback`` lists which of ``logits`` and
    ``mask`` the model can take.
    """

    feedback: frozenset[str]

    def refine(self, embedding: Any, prompt: Prompt, previous: np.ndarray | None) -> Refinement: ...


@dataclass(frozen=True)
class VolumeInput:
    """What a volume model sees of a prepared subject; never the reference labels.

    ``image`` is the uint8 normalised volume, ``spacing`` in mm per array
    axis, ``axis`` the slicing axis, ``labels`` the label ids evaluated.
    A model trained on the original intensities and file layout (nnU-Net)
    reads ``raw`` (the loaded intensities, same RAS+ grid, float32),
    ``stored_orientation`` (:attr:`Subject.stored_orientation`) and
    ``label_names`` (id -> name of the evaluated labels). A model that knows
    one tissue (SegmentAnyBone: bone) reads ``label_tissues`` (id -> tissue class).
    """

    image: np.ndarray
    spacing: tuple[float, float, float]
    axis: int
    labels: tuple[int, ...]
    raw: np.ndarray | None = None
    stored_orientation: tuple[str, str, str] = ("R", "A", "S")
    label_names: dict[int, str] = field(default_factory=dict)
    label_tissues: dict[int, str] = field(default_factory=dict)


@runtime_checkable
class VolumeModel(Protocol):
    """A 3D (or 2.5D, or propagating) model: a whole prepared subject in, a label volume out.

    ``prompts`` are of the kinds in ``supported_prompts``, each with the
    ``slice_index`` it lies on; a label may have several (a 2D prompter makes
    one per slice), and none at all means an automatic call. The result is an
    integer array of ``volume.image``'s shape.

    Optional: ``uses_reference_extent = True`` declares that the model
    confines its output to a ``box3d``'s ``extent`` (the reference's own first
    and last slice, ground truth beyond the prompt); the harness then flags the
    metric and biomarker rows of every cell whose prompts carried an extent
    (``reference_extent_used``).
    """

    supported_prompts: frozenset[str]

    def predict(self, volume: VolumeInput, prompts: Sequence[Prompt]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


@runtime_checkable
class InteractiveVolumeModel(Protocol):
    """A volume model that refines one label from its initial prompt plus 3D clicks.

    ``prompts`` hold every initial prompt of that label (a ``box3d``, or one
    per slice from a 2D initial prompter) and one ``point`` prompt per click,
    each with the ``slice_index`` it lies on; the mask is a bool volume.
    ``previous`` as for :class:`InteractiveSegmenter`.
    """

    feedback: frozenset[str]

    def refine(self, volume: VolumeInput, prompts: Sequence[Prompt], previous: np.ndarray | None) -> Refinement: ...


@runtime_checkable
class Prompter(Protocol):
    """Makes the prompts for one slice from its image and reference labels.

    ``produces`` is the set of prompt kinds it emits, checked against a
    model's ``supported_prompts`` when the plan is built. The runner stamps
    the prompter's suite name and seed onto every returned prompt. A
    prompter that never reads ``reference`` declares ``reference_free = True``
    (``none``, the ``yolo`` detector); only those can prompt `mskbench
    predict`, which has no reference (it passes an all-zero one).
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


@runtime_checkable
class VolumePrompter(Protocol):
    """Makes 3D prompts (e.g. ``box3d``) for a whole subject; each records its ``slice_index``."""

    produces: frozenset[str]

    def volume_prompts(
        self, image: np.ndarray, reference: np.ndarray, labels: Sequence[int], axis: int, rng: np.random.Generator
    ) -> list[Prompt]: ...


@runtime_checkable
class SubjectPrompter(Protocol):
    """Makes 3D prompts from what is known about the subject, not its pixels: its id, RAS+ ``affine``, grid and
    label names (``box3d-from-file`` places boxes a person drew in world coordinates); each records its
    ``slice_index``. It must not read ``subject.labels``."""

    produces: frozenset[str]

    def subject_prompts(self, subject: Subject, labels: Sequence[int], axis: int) -> list[Prompt]: ...


@runtime_checkable
class InteractivePrompter(Protocol):
    """Drives an interactive model (DESIGN §11); :class:`mskbench.interaction.clicks.ClicksPrompter`."""

    produces: frozenset[str]
    initial_prompter: Any  # a Prompter, a VolumePrompter, or None
    rounds: int
    space: str  # slice | volume
    feedback: str  # logits | mask | none

    def place(
        self, reference: np.ndarray, prediction: np.ndarray, rng: np.random.Generator, axis: int = 0
    ) -> list[Any]: ...


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

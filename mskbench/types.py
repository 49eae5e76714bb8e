"""Typed values that flow through the harness (DESIGN.md §2, §4).

Every arrow of the data flow carries one of these, never a loose dict, so a
plugin author can see exactly what they receive and must return.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np


class TissueClass(StrEnum):
    """Tissue class of a label; biomarkers and suites select labels by it."""

    BONE = "bone"
    CARTILAGE = "cartilage"
    MUSCLE = "muscle"
    FAT = "fat"
    DISC = "disc"
    MENISCUS = "meniscus"
    NERVE = "nerve"
    OTHER = "other"


@dataclass(frozen=True)
class LabelInfo:
    """One entry of a dataset's label map."""

    id: int
    name: str
    tissue: TissueClass


@dataclass(frozen=True)
class Acquisition:
    """MRI acquisition parameters; any field may be unknown (None)."""

    field_strength_t: float | None = None
    vendor: str | None = None
    sequence: str | None = None
    te_ms: float | None = None
    tr_ms: float | None = None
    flip_angle_deg: float | None = None
    slice_thickness_mm: float | None = None
    pixel_spacing_mm: float | None = None
    acquisition_type: Literal["2D", "3D"] | None = None


@dataclass(frozen=True)
class Demographics:
    """Subject demographics; any field may be unknown (None)."""

    sex: Literal["F", "M"] | None = None
    age_years: float | None = None
    weight_kg: float | None = None


SliceAxis = Literal["axial", "sagittal", "coronal", "through_plane"]
SPLITS = ("train", "val", "test")


@dataclass
class Subject:
    """One imaged subject in canonical (RAS+) orientation.

    ``spacing`` is in mm in array-axis order. ``maps`` holds optional
    quantitative maps in ms on the same grid (keys ``t2``, ``t1rho``).
    ``truth`` holds analytic ground-truth biomarkers when the data source knows
    them (the phantom does), keyed by ``(biomarker, structure)``.
    ``stored_orientation`` is the axis codes of the source file's voxel axes
    before reorientation to RAS+ (a model trained on files, such as an
    nnU-Net, must see the array in that order); RAS for generated subjects.
    """

    id: str
    volume: np.ndarray
    labels: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    label_map: dict[int, LabelInfo]
    acquisition: Acquisition = field(default_factory=Acquisition)
    demographics: Demographics = field(default_factory=Demographics)
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    split: str | None = None
    anatomy: str | None = None
    source_files: tuple[str, ...] = ()
    truth: dict[tuple[str, str], float] = field(default_factory=dict)
    stored_orientation: tuple[str, str, str] = ("R", "A", "S")


PromptKind = Literal["box", "point", "box+point", "box3d", "none"]
PROMPT_KINDS: tuple[str, ...] = ("box", "point", "box+point", "box3d", "none")


@dataclass(frozen=True)
class Prompt:
    """One prompt for one target on one slice, in the original slice's pixels.

    ``box`` is (x_min, y_min, x_max, y_max), inclusive, x = column. ``points``
    are (x, y) pairs with ``point_labels`` 1 (foreground) or 0 (background).
    ``round`` is 0 for an initial prompt and k for the k-th correction.
    A 3D prompt (``box3d``, or a click placed in the volume) records the slice
    it lives on in ``slice_index``; a ``box3d`` also spans the slices
    ``extent`` = (first, last), inclusive, along the slicing axis.
    """

    kind: PromptKind
    label: int
    prompter: str
    seed: int
    instance: int = 0
    box: tuple[float, float, float, float] | None = None
    points: tuple[tuple[float, float], ...] = ()
    point_labels: tuple[int, ...] = ()
    score: float | None = None
    detector_class: int | None = None
    clipped: bool = False
    round: int = 0
    slice_index: int | None = None
    extent: tuple[int, int] | None = None


@dataclass(frozen=True)
class SliceRef:
    """Where a 2D slice came from, handed to prompters that need context."""

    dataset: str
    subject_id: str
    slice_index: int
    pixel_spacing: tuple[float, float]

"""Checks and small lookups shared by every biomarker's ``compute``.

Bad inputs (a 2D mask, a float label volume, absent spacing, a map on another
grid) become one-line :class:`DataError`s here, so no biomarker crashes deep
inside scipy or OpenCV with a message the user cannot act on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from mskbench.errors import DataError
from mskbench.types import LabelInfo, Subject

MISSING = float("nan")


def checked_spacing(labels: np.ndarray, subject: Subject) -> tuple[float, float, float]:
    """Validate the label volume against the subject and return its spacing in mm."""
    if labels.ndim != 3:
        raise DataError(f"subject {subject.id}: label volume is {labels.ndim}D, expected 3D")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise DataError(
            f"subject {subject.id}: label volume has dtype {labels.dtype}; labels must be integers"
        )
    spacing = tuple(float(s) for s in (subject.spacing or ()))
    if len(spacing) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing):
        raise DataError(
            f"subject {subject.id}: voxel spacing {subject.spacing!r} is missing or invalid; "
            "set the spacing in the image header"
        )
    return spacing


def checked_map(labels: np.ndarray, subject: Subject, name: str) -> np.ndarray:
    """The subject's quantitative map ``name``, required to be on the label grid."""
    values = np.asarray(subject.maps[name])
    if values.shape != labels.shape:
        raise DataError(
            f"subject {subject.id}: {name} map has shape {values.shape} but the mask has "
            f"{labels.shape}; resample the map onto the mask grid"
        )
    if not np.issubdtype(values.dtype, np.number):
        raise DataError(f"subject {subject.id}: {name} map has non-numeric dtype {values.dtype}")
    return values


def label_boxes(labels: np.ndarray, structures: Sequence[LabelInfo]) -> dict[int, tuple[slice, ...] | None]:
    """Bounding box of each structure's label in one pass; None when it is absent."""
    ids = [s.id for s in structures if s.id > 0]
    if not ids:
        return {s.id: None for s in structures}
    integer_labels = labels.view(np.uint8) if labels.dtype == bool else labels
    boxes = ndimage.find_objects(integer_labels, max_label=max(ids))
    return {s.id: (boxes[s.id - 1] if s.id > 0 else None) for s in structures}

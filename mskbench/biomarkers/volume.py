"""Tissue volume: voxel count × voxel volume, in cm³ (DESIGN §8).

Counting voxels is the method every volumetry tool shares; with an exact
mask it is unbiased for smooth shapes, and its error is the mask's error.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mskbench.biomarkers.inputs import MISSING, checked_spacing
from mskbench.protocols import BiomarkerValue
from mskbench.types import LabelInfo, Subject

METHOD = "voxel_count"
TOTAL = "total"
_MM3_PER_CM3 = 1000.0


def voxel_counts(labels: np.ndarray, ids: Sequence[int]) -> dict[int, int]:
    """Number of voxels of each label id, in one pass over the volume."""
    wanted = [i for i in ids if i > 0]
    if not wanted:
        return {i: 0 for i in ids}
    top = max(wanted)
    flat = labels.ravel()
    if flat.dtype == bool:
        flat = flat.view(np.uint8)
    inside = flat[(flat > 0) & (flat <= top)]  # drops background, negatives and ids not asked for
    counts = np.bincount(inside.astype(np.intp), minlength=top + 1)
    return {i: int(counts[i]) if i > 0 else 0 for i in ids}


class TissueVolume:
    """Volume per label and of all selected labels together (``total``), in cm³."""

    name = "tissue_volume"
    unit = "cm3"

    def __init__(self, total: bool = True):
        self.total = total

    def compute(
        self,
        labels: np.ndarray,
        subject: Subject,
        structures: Sequence[LabelInfo],
        slice_axis: int,
    ) -> list[BiomarkerValue]:
        spacing = checked_spacing(labels, subject)
        voxel_cm3 = float(np.prod(spacing)) / _MM3_PER_CM3
        counts = voxel_counts(labels, [s.id for s in structures])
        values = [
            BiomarkerValue(s.name, self.name, counts[s.id] * voxel_cm3 if counts[s.id] else MISSING,
                           self.unit, METHOD)
            for s in structures
        ]
        if self.total and structures:
            voxels = sum(counts[i] for i in {s.id for s in structures})
            values.append(
                BiomarkerValue(TOTAL, self.name, voxels * voxel_cm3 if voxels else MISSING, self.unit, METHOD)
            )
        return values

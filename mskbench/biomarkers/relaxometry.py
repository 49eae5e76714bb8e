"""T2 and T1rho inside masks: clipped, voxel-weighted means (DESIGN §8).

Values are clipped to [0, 100] ms and voxels whose value is then 0 or NaN are
excluded: a zero (or negative) relaxation time is a failed fit or background,
not tissue, and one such voxel would pull a compartment mean down by more than
the inter-model differences this benchmark looks for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from mskbench.biomarkers.inputs import MISSING, checked_map, checked_spacing
from mskbench.errors import PluginError
from mskbench.params import suggest
from mskbench.protocols import BiomarkerValue
from mskbench.types import LabelInfo, Subject

log = logging.getLogger(__name__)

METHOD = "clip_0_100_voxel_mean"
OVERALL = "overall"
MAP_NAMES = ("t2", "t1rho")
CLIP_MS = (0.0, 100.0)


def compartment_sums(labels: np.ndarray, values: np.ndarray, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per label id: sum of valid clipped map values and number of valid voxels."""
    top = max(ids)
    flat = labels.ravel()
    if flat.dtype == bool:
        flat = flat.view(np.uint8)
    chosen = (flat > 0) & (flat <= top)
    clipped = np.clip(values.ravel()[chosen].astype(np.float64), *CLIP_MS)
    valid = clipped > 0  # False for NaN, for zeros and for clipped negatives
    idx = flat[chosen][valid].astype(np.intp)
    sums = np.bincount(idx, weights=clipped[valid], minlength=top + 1)
    counts = np.bincount(idx, minlength=top + 1)
    return sums, counts


class Relaxometry:
    """Mean T2 and/or T1rho per compartment and over all selected compartments, in ms.

    A subject without a given map yields no values for it (nothing to measure);
    a compartment absent from the mask, or with no valid map voxel, is NaN.
    """

    name = "relaxometry"
    unit = "ms"

    def __init__(self, maps: Sequence[str] = MAP_NAMES):
        for map_name in maps:
            if map_name not in MAP_NAMES:
                raise PluginError(
                    f"relaxometry.maps: unknown map {map_name!r}{suggest(str(map_name), MAP_NAMES)}; "
                    f"use any of {', '.join(MAP_NAMES)}"
                )
        self.maps = tuple(maps)

    def compute(
        self,
        labels: np.ndarray,
        subject: Subject,
        structures: Sequence[LabelInfo],
        slice_axis: int,
    ) -> list[BiomarkerValue]:
        checked_spacing(labels, subject)
        ids = [s.id for s in structures if s.id > 0]
        out: list[BiomarkerValue] = []
        for map_name in self.maps:
            if map_name not in subject.maps:
                log.debug("subject %s has no %s map; skipped", subject.id, map_name)
                continue
            if not ids:
                continue
            sums, counts = compartment_sums(labels, checked_map(labels, subject, map_name), ids)
            for s in structures:
                n = counts[s.id] if s.id > 0 else 0
                out.append(BiomarkerValue(s.name, map_name, float(sums[s.id] / n) if n else MISSING,
                                          self.unit, METHOD))
            unique = sorted(set(ids))
            total_n = counts[unique].sum()
            out.append(BiomarkerValue(OVERALL, map_name,
                                      float(sums[unique].sum() / total_n) if total_n else MISSING,
                                      self.unit, METHOD))
        return out

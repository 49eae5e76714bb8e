"""Where a simulated user clicks next, from the previous prediction and the reference (DESIGN §11).

Pure functions on boolean arrays of any dimension (a slice or a volume), so
the same rule serves ``space = "slice"`` and ``space = "volume"``. Each
returns the clicks of one round as :class:`Click` values in array index
order; a click is positive (foreground) where the reference is foreground.
An empty error (the prediction equals the reference) gives no click.

- ``max_edt_largest_error`` (CVPR 2025 "Foundation models for interactive 3D
  biomedical image segmentation", ``CVPR25_iter_eval.py``): the largest
  connected component of the error (full connectivity: 26 in 3D, 8 in 2D),
  then the voxel of maximum Euclidean distance transform inside it, in voxel
  units, with the array border counting as outside the component (upstream
  pads the crop with zeros); ties are broken uniformly at random.
- ``component_centroid`` (RadioActive/IntRaBench, ``get_fg_point_from_cc_center``):
  false negatives with probability |FN| / (|FN| + |FP|), else false
  positives; the largest component of that error, its centroid rounded,
  snapped to the nearest voxel of the component.
- ``random_error`` (micro-sam ``IterativePromptGenerator``): one positive
  click uniformly from the false negatives and one negative click uniformly
  from the false positives, each when that error is non-empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

PLACEMENTS: tuple[str, ...] = ("max_edt_largest_error", "component_centroid", "random_error")


@dataclass(frozen=True)
class Click:
    """One click: array indices (row, col) in 2D or (i, j, k) in 3D, and its sign."""

    position: tuple[int, ...]
    positive: bool


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest fully connected component of ``mask``; ties go to the first in scan order, as upstream's argmax."""
    components, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    if count == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    return components == int(np.argmax(sizes))


def _click_at(position: np.ndarray, reference: np.ndarray) -> Click:
    where = tuple(int(v) for v in position)
    return Click(where, bool(reference[where]))


def max_edt_largest_error(reference: np.ndarray, prediction: np.ndarray, rng: np.random.Generator) -> list[Click]:
    """CVPR 2025: the centre (EDT maximum) of the largest error component."""
    component = largest_component(reference != prediction)
    if not component.any():
        return []
    # EDT on the component's bounding box padded by one zero voxel: exact (every voxel outside the box is
    # farther than the pad), and the pad makes the array border count as outside, as upstream's padding does.
    corner = np.argwhere(component).min(axis=0)
    box = tuple(slice(lo, hi + 1) for lo, hi in zip(corner, np.argwhere(component).max(axis=0)))
    distance = ndimage.distance_transform_edt(np.pad(component[box], 1))[(slice(1, -1),) * component.ndim]
    candidates = np.argwhere(distance == distance.max()) + corner
    return [_click_at(candidates[rng.integers(len(candidates))], reference)]


def component_centroid(reference: np.ndarray, prediction: np.ndarray, rng: np.random.Generator) -> list[Click]:
    """RadioActive: the centroid, snapped into the component, of the largest FN or FP component."""
    false_negative = reference & ~prediction
    false_positive = prediction & ~reference
    n_fn, n_fp = int(false_negative.sum()), int(false_positive.sum())
    if n_fn + n_fp == 0:
        return []
    negative = n_fn == 0 or (n_fp > 0 and bool(rng.binomial(1, n_fp / (n_fn + n_fp))))
    component = largest_component(false_positive if negative else false_negative)
    voxels = np.argwhere(component)
    centroid = np.round(voxels.mean(axis=0))
    nearest = voxels[np.argmin(((voxels - centroid) ** 2).sum(axis=1))]
    return [_click_at(nearest, reference)]


def random_error(reference: np.ndarray, prediction: np.ndarray, rng: np.random.Generator) -> list[Click]:
    """micro-sam: a uniform false-negative voxel (positive), then a uniform false-positive voxel (negative)."""
    clicks = []
    for region in (reference & ~prediction, prediction & ~reference):
        voxels = np.argwhere(region)
        if len(voxels):
            clicks.append(_click_at(voxels[rng.integers(len(voxels))], reference))
    return clicks


RULES: dict[str, Callable[[np.ndarray, np.ndarray, np.random.Generator], list[Click]]] = {
    "max_edt_largest_error": max_edt_largest_error,
    "component_centroid": component_centroid,
    "random_error": random_error,
}

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
- ``component_centroid`` (RadioActive, MIC-DKFZ/radioactive
  ``src/radioa/prompts/interactive_prompter.py``, ``twoDInteractivePrompter``:
  ``get_generate_negative_prompts_flag`` and ``generate_positive_promptstep``,
  with ``get_n_largest_CCs`` and ``get_fg_point_from_cc_center`` of
  ``prompt_utils.py``): false negatives with probability |FN| / (|FN| + |FP|)
  (always when there are no false positives), else false positives; the
  largest fully connected component of that error, ties to the *last* in
  scan order (upstream's ``np.argsort(sizes)[-1]``). In 2D, one click: the
  component's centroid, rounded half to even, moved to the nearest
  component pixel when it falls outside (a C shape). In 3D, one click on
  every slice (along the model's slice axis) that the component touches: the
  same rule applied to the largest 2D component of the component's
  cross-section there. Upstream places negative prompts as a scribble on one
  sagittal slice; we place them by the positive rule on the false positives
  (docs/interactive.md). Nearest-voxel ties go to the first in scan order
  (upstream's ``cKDTree`` leaves them unspecified).
- ``random_error`` (micro-sam ``IterativePromptGenerator``): one positive
  click uniformly from the false negatives and one negative click uniformly
  from the false positives, each when that error is non-empty.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mskbench.data.preprocess import take_slice

PLACEMENTS: tuple[str, ...] = ("max_edt_largest_error", "component_centroid", "random_error")

#: where a rule's arrays start in the whole image (None: they are the whole image)
Origin = tuple[int, ...] | None


@dataclass(frozen=True)
class Click:
    """One click: array indices (row, col) in 2D or (i, j, k) in 3D, and its sign."""

    position: tuple[int, ...]
    positive: bool


def largest_component(mask: np.ndarray, ties: str = "first") -> tuple[np.ndarray, np.ndarray] | None:
    """The largest fully connected component of ``mask``, cropped to its bounding box, and the box's corner
    (None when ``mask`` is empty); ties go to the ``first`` in scan order (CVPR 2025's argmax) or the ``last``
    (RadioActive's argsort). The crop comes from the labelling itself, so later steps never scan the array."""
    components, count = ndimage.label(mask, structure=np.ones((3,) * mask.ndim, dtype=bool))
    if count == 0:
        return None
    sizes = np.bincount(components.ravel())[1:]
    index = int(np.argmax(sizes)) if ties == "first" else count - 1 - int(np.argmax(sizes[::-1]))
    box = ndimage.find_objects(components, max_label=index + 1)[index]
    return components[box] == index + 1, np.array([s.start for s in box])


def _click_at(position: np.ndarray, reference: np.ndarray) -> Click:
    where = tuple(int(v) for v in position)
    return Click(where, bool(reference[where]))


def max_edt_largest_error(
    reference: np.ndarray, prediction: np.ndarray, rng: np.random.Generator, axis: int = 0, origin: Origin = None,
) -> list[Click]:
    """CVPR 2025: the centre (EDT maximum) of the largest error component (``axis`` and ``origin`` play no part)."""
    found = largest_component(reference != prediction)
    if found is None:
        return []
    # EDT on the component's bounding box padded by one zero voxel: exact (every voxel outside the box is
    # farther than the pad), and the pad makes the array border count as outside, as upstream's padding does.
    component, corner = found
    distance = ndimage.distance_transform_edt(np.pad(component, 1))[(slice(1, -1),) * component.ndim]
    candidates = np.argwhere(distance == distance.max()) + corner
    return [_click_at(candidates[rng.integers(len(candidates))], reference)]


def _snapped_centroid(component: np.ndarray, corner: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """The rounded centroid of a 2D component (cropped at ``corner``), or its nearest pixel when the centroid
    lies outside it. Rounding half to even is not shift-invariant (2.5 -> 2 but 3.5 -> 4), so it happens in
    the coordinates of the whole image, ``origin`` being where this array starts in it."""
    pixels = np.argwhere(component) + corner
    centroid = np.round(pixels.mean(axis=0) + origin) - origin
    return pixels[np.argmin(((pixels - centroid) ** 2).sum(axis=1))]


def component_centroid(
    reference: np.ndarray, prediction: np.ndarray, rng: np.random.Generator, axis: int = 0, origin: Origin = None,
) -> list[Click]:
    """RadioActive: the snapped centroid of the largest FN or FP component, per slice along ``axis`` in 3D."""
    false_negative = reference & ~prediction
    false_positive = prediction & ~reference
    n_fn, n_fp = int(false_negative.sum()), int(false_positive.sum())
    if n_fn + n_fp == 0:
        return []
    negative = n_fn == 0 or (n_fp > 0 and bool(rng.binomial(1, n_fp / (n_fn + n_fp))))
    component, corner = largest_component(false_positive if negative else false_negative, ties="last")
    start = np.zeros(reference.ndim, dtype=int) if origin is None else np.asarray(origin)
    if component.ndim == 2:
        return [_click_at(_snapped_centroid(component, corner, start), reference)]
    clicks = []
    in_plane_start = np.delete(start, axis)
    for k in np.flatnonzero(component.any(axis=tuple(a for a in range(component.ndim) if a != axis))):
        piece, piece_corner = largest_component(take_slice(component, axis, k), ties="last")
        in_plane = _snapped_centroid(piece, piece_corner + np.delete(corner, axis), in_plane_start)
        clicks.append(_click_at(np.insert(in_plane, axis, k + corner[axis]), reference))
    return clicks


def random_error(
    reference: np.ndarray, prediction: np.ndarray, rng: np.random.Generator, axis: int = 0, origin: Origin = None,
) -> list[Click]:
    """micro-sam: a uniform false-negative voxel (positive), then a uniform false-positive voxel (negative)."""
    clicks = []
    for region in (reference & ~prediction, prediction & ~reference):
        voxels = np.argwhere(region)
        if len(voxels):
            clicks.append(_click_at(voxels[rng.integers(len(voxels))], reference))
    return clicks


#: (reference, prediction, generator, slice axis, origin) -> the round's clicks; the axis matters to per-slice
#: rules in 3D, the origin (where the arrays start in the whole image) to rounding
RULES: dict[str, Callable[..., list[Click]]] = {
    "max_edt_largest_error": max_edt_largest_error,
    "component_centroid": component_centroid,
    "random_error": random_error,
}


def place_in_box(
    rule: str, reference: np.ndarray, prediction: np.ndarray, rng: np.random.Generator, axis: int = 0
) -> list[Click]:
    """``RULES[rule]`` run on the bounding box of reference | prediction, clicks moved back to full-array indices.

    Same clicks and the same draws from ``rng`` as on the whole array (every rule reads only the error, which
    lies in that box; cropping keeps scan order; the EDT pads its own component box), for a fraction of the
    time: a label fills a small part of a volume, and labelling components of a whole volume per label and
    round cost far more than scoring the round (benchmarks/bench_interactive.py).
    """
    union = reference | prediction
    if not union.any():
        return []
    corner, box = [], []
    for a in range(union.ndim):
        extent = np.flatnonzero(union.any(axis=tuple(b for b in range(union.ndim) if b != a)))
        corner.append(int(extent[0]))
        box.append(slice(int(extent[0]), int(extent[-1]) + 1))
    clicks = RULES[rule](reference[tuple(box)], prediction[tuple(box)], rng, axis, tuple(corner))
    return [Click(tuple(v + lo for v, lo in zip(c.position, corner)), c.positive) for c in clicks]

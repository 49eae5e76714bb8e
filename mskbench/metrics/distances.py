"""Boundary voxels and boundary-to-boundary distances in mm.

Boundary (surface) voxels of a mask: its foreground voxels with at least one
face-adjacent neighbour (4-connectivity in 2D, 6-connectivity in 3D) in the
background, where voxels outside the image count as background. So the
boundary is ``mask & ~erosion(mask)`` with the cross-shaped structuring
element and ``border_value=0``; an object touching the image edge has
boundary voxels along that edge; a one-voxel object is its own boundary.
This is the boundary of MONAI's ``get_mask_edges`` (without sub-voxels) and
of MetricsReloaded's border map; DeepMind surface-distance instead places
area-weighted surfels on the half-voxel-shifted grid (docs/metrics.md).

Distances are Euclidean between voxel centres in physical units: the
distance transform of the other mask's non-boundary voxels with
``sampling=spacing`` (exact for anisotropic spacing), read at this mask's
boundary voxels. All work happens inside the bounding box of the union of the
two masks: every boundary voxel of either mask lies in it, so the nearest
boundary voxel is always inside the box too, and the erosion's
``border_value=0`` plays the part of a one-voxel zero margin (outside the box
both masks are empty, outside the image is background by definition).

Written on top of scipy rather than calling MONAI's ``get_surface_distance``
because the harness needs float64 distances, both directions from one crop
and one boundary pass, and a per-call overhead small enough for thousands of
slices per second; MONAI is used in the tests and the benchmark as the
reference it must agree with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

_FACE_NEIGHBOURS = {ndim: ndimage.generate_binary_structure(ndim, 1) for ndim in (2, 3)}


@dataclass(frozen=True)
class BoundaryDistances:
    """Directed boundary distances in mm, one value per boundary voxel of the source mask."""

    reference_to_prediction: np.ndarray
    prediction_to_reference: np.ndarray


def boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground voxels with a face neighbour in the background (outside the image counts)."""
    eroded = ndimage.binary_erosion(mask, structure=_FACE_NEIGHBOURS[mask.ndim], border_value=0)
    return mask & ~eroded


def union_box(reference: np.ndarray, prediction: np.ndarray) -> tuple[slice, ...] | None:
    """Smallest box holding every foreground voxel of either mask; None when both are empty."""
    union = reference | prediction
    box = []
    for axis in range(union.ndim):
        other_axes = tuple(a for a in range(union.ndim) if a != axis)
        present = np.flatnonzero(union.any(axis=other_axes))
        if present.size == 0:
            return None
        box.append(slice(int(present[0]), int(present[-1]) + 1))
    return tuple(box)


def boundary_distances(
    reference: np.ndarray, prediction: np.ndarray, spacing: Sequence[float]
) -> BoundaryDistances:
    """Distances from each boundary voxel of one mask to the nearest boundary voxel of the other.

    Both masks must be non-empty bool arrays of one shape; ``spacing`` in mm
    per array axis.
    """
    box = union_box(reference, prediction)
    if box is None or not reference.any() or not prediction.any():
        raise ValueError("boundary distances need two non-empty masks (case state 'hit')")
    reference_edge = boundary(reference[box])
    prediction_edge = boundary(prediction[box])
    sampling = tuple(float(s) for s in spacing)
    to_prediction = ndimage.distance_transform_edt(~prediction_edge, sampling=sampling)
    to_reference = ndimage.distance_transform_edt(~reference_edge, sampling=sampling)
    return BoundaryDistances(
        reference_to_prediction=to_prediction[reference_edge],
        prediction_to_reference=to_reference[prediction_edge],
    )


def unit_diagonal_mm(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """Diagonal of the unit's field of view, sqrt(sum((n_i * s_i)^2)) in mm.

    Strictly larger than any distance between two voxel centres of the unit,
    so a substituted worst case is always worse than any measured value.
    """
    extent = np.asarray(shape, dtype=float) * np.asarray(spacing, dtype=float)
    return float(np.sqrt(np.sum(extent * extent)))

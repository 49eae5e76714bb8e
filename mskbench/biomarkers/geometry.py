"""Array axes versus anatomical directions, read from the affine.

Biomarkers work on 2D slices of a 3D label volume. Which array axis is
sagittal, which in-plane direction is cranio-caudal, and which axis is the
through-plane one all follow from the subject's affine and spacing; these
helpers keep that reasoning in one place so every biomarker agrees on it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mskbench.errors import DataError

# World axis (RAS+) whose normal defines each slicing plane.
PLANE_WORLD_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}
SLICE_AXIS_CHOICES = ("auto", "through_plane", *PLANE_WORLD_AXIS)

# Below this |cos| the in-plane cranio-caudal direction is too short to tell
# height from width: the slice plane is within 30 degrees of axial.
_MIN_IN_PLANE_SI = 0.5


def in_plane_axes(slice_axis: int) -> tuple[int, int]:
    """The two array axes of a slice taken along ``slice_axis`` (rows, columns)."""
    if slice_axis not in (0, 1, 2):
        raise ValueError(f"slice_axis must be 0, 1 or 2, got {slice_axis!r}")
    rows, cols = (axis for axis in range(3) if axis != slice_axis)
    return rows, cols


def axis_directions(affine: np.ndarray) -> np.ndarray:
    """Unit world (RAS+) direction of each array axis, as the columns of a 3×3 array."""
    columns = np.asarray(affine, dtype=float)[:3, :3]
    norms = np.linalg.norm(columns, axis=0)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise DataError(f"affine {columns.tolist()} has a zero or invalid axis; fix the image header")
    return columns / norms


def plane_axis(affine: np.ndarray, plane: str) -> int:
    """Array axis closest to the normal of ``plane`` (sagittal, coronal or axial)."""
    world = PLANE_WORLD_AXIS[plane]
    return int(np.argmax(np.abs(axis_directions(affine)[world, :])))


def through_plane_axis(spacing: Sequence[float]) -> int | None:
    """The array axis with the clearly largest spacing, or None when two tie (within 1 %)."""
    order = np.argsort(spacing)[::-1]
    largest, second = spacing[order[0]], spacing[order[1]]
    return int(order[0]) if largest > second * 1.01 else None


def resolve_slice_axis(name: str, affine: np.ndarray, spacing: Sequence[float]) -> int:
    """Array axis for a slice-axis name.

    ``auto`` and ``through_plane`` take the axis with the largest spacing; when
    the volume is (near) isotropic there is none, and the sagittal axis is used,
    the plane MSK knee and spine studies measure on.
    """
    if name in PLANE_WORLD_AXIS:
        return plane_axis(affine, name)
    if name in ("auto", "through_plane"):
        axis = through_plane_axis(spacing)
        return plane_axis(affine, "sagittal") if axis is None else axis
    raise ValueError(f"unknown slice axis {name!r}; use one of {', '.join(SLICE_AXIS_CHOICES)}")


def cranio_caudal_in_plane(affine: np.ndarray, slice_axis: int) -> np.ndarray | None:
    """Unit (x = column, y = row) vector of the S–I direction within a slice, in mm space.

    None when the slice is too close to axial for S–I to lie in its plane.
    """
    rows, cols = in_plane_axes(slice_axis)
    directions = axis_directions(affine)
    vector = np.array([directions[2, cols], directions[2, rows]])
    length = float(np.linalg.norm(vector))
    return vector / length if length >= _MIN_IN_PLANE_SI else None


def voxel_centres_world(affine: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """World (RAS+) mm coordinates of voxel indices given as an (N, 3) array."""
    affine = np.asarray(affine, dtype=float)
    return indices @ affine[:3, :3].T + affine[:3, 3]

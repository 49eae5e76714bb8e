"""Between the RAS+ grid mskbench computes on and a file's own voxel axes.

Every reader hands out volumes reoriented with ``nibabel.as_closest_canonical``
(pure flips and axis permutations, so exact) and keeps the file's axis codes
(``Volume.original_orientation`` / ``Subject.stored_orientation``). Whatever
must line up with the file again (a mask written beside the input, the array
an nnU-Net was trained on) goes back through these two functions, so the way
out is always the inverse of the way in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RAS = ("R", "A", "S")


def _to_file(axes: Sequence[str]) -> np.ndarray:
    from nibabel.orientations import axcodes2ornt, ornt_transform

    return ornt_transform(axcodes2ornt(RAS), axcodes2ornt(tuple(axes)))


def ras_to_file_axes(array: np.ndarray, axes: Sequence[str]) -> np.ndarray:
    """A RAS+ array laid out on the voxel axes whose codes are ``axes`` (the inverse of the canonical reorientation)."""
    from nibabel.orientations import apply_orientation

    return np.ascontiguousarray(apply_orientation(np.asarray(array), _to_file(axes)))


def file_axes_to_ras(array: np.ndarray, axes: Sequence[str]) -> np.ndarray:
    """An array on voxel axes with codes ``axes`` reoriented to RAS+ (what every reader does)."""
    from nibabel.orientations import apply_orientation, axcodes2ornt

    return np.ascontiguousarray(apply_orientation(np.asarray(array), axcodes2ornt(tuple(axes))))


def file_affine(ras_affine: np.ndarray, ras_shape: Sequence[int], axes: Sequence[str]) -> np.ndarray:
    """The voxel-to-RAS affine of the file-axes array that :func:`ras_to_file_axes` makes of a RAS+ volume."""
    from nibabel.orientations import inv_ornt_aff

    return np.asarray(ras_affine, dtype=float) @ inv_ornt_aff(_to_file(axes), tuple(ras_shape))


def file_spacing(spacing: Sequence[float], axes: Sequence[str]) -> list[float]:
    """The RAS+ spacing in the order of the file's voxel axes."""
    from nibabel.orientations import axcodes2ornt

    return [float(spacing[int(ras_axis)]) for ras_axis in axcodes2ornt(tuple(axes))[:, 0]]  # the RAS axis each runs along

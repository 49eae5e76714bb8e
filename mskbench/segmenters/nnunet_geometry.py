"""The array and spacing nnU-Net's own reader would have made of a subject's file, and the way back.

mskbench holds every subject on the RAS+ grid (``nibabel.as_closest_canonical``
of the file's voxel axes, :mod:`mskbench.data.readers`). nnU-Net's readers
do not: ``SimpleITKIO`` and ``NibabelIO`` keep the file's voxel axes
(i, j, k) and hand the network the array as (k, j, i) with the spacing
reversed; ``NibabelIOWithReorient`` first reorients to RAS. A network is
trained on that layout, so the harness undoes the canonical reorientation
(pure flips and axis permutations, hence exact) with the subject's
``stored_orientation`` and transposes as the reader does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mskbench.data.orientation import RAS, file_axes_to_ras, file_spacing, ras_to_file_axes

READERS_ON_RAS = ("NibabelIOWithReorient",)


def reader_axes(reader: str, stored_orientation: Sequence[str]) -> tuple[str, ...]:
    """The axis codes of the (i, j, k) array the reader takes from the file."""
    return RAS if reader in READERS_ON_RAS else tuple(stored_orientation)


def to_reader_layout(raw: np.ndarray, spacing: Sequence[float], axes: Sequence[str]) -> tuple[np.ndarray, list[float]]:
    """The (1, k, j, i) float32 array and (k, j, i) spacing nnU-Net's reader returns for this RAS+ volume."""
    stored = ras_to_file_axes(raw, axes)
    return np.ascontiguousarray(stored.transpose(2, 1, 0)[None], dtype=np.float32), file_spacing(spacing, axes)[::-1]


def from_reader_layout(labels: np.ndarray, axes: Sequence[str]) -> np.ndarray:
    """A (k, j, i) label array nnU-Net returned, back on the RAS+ grid."""
    return file_axes_to_ras(np.asarray(labels).transpose(2, 1, 0), axes)


def to_reader_index(position: Sequence[int], shape: Sequence[int], axes: Sequence[str]) -> tuple[int, int, int]:
    """Where voxel ``position`` of the RAS+ grid of ``shape`` lies in :func:`to_reader_layout`'s (k, j, i) array.

    A model that takes coordinates (nnInteractive's boxes and points) needs
    them on the array it was handed, not on mskbench's grid.
    """
    from nibabel.orientations import axcodes2ornt, ornt_transform

    stored = [0, 0, 0]
    for ras_axis, (file_axis, flip) in enumerate(ornt_transform(axcodes2ornt(RAS), axcodes2ornt(tuple(axes)))):
        index = int(position[ras_axis])
        stored[int(file_axis)] = int(shape[ras_axis]) - 1 - index if flip < 0 else index
    return stored[2], stored[1], stored[0]

"""Dataset-level preprocessing the runner applies to every subject (DESIGN §2).

Intensity normalisation to uint8 (what the 2D foundation models take),
small-object removal on the reference labels (annotation specks are not
structures a prompt could target), and the choice of slices to evaluate.
Everything works on whole volumes at once so a subject costs a few
vectorised passes, not a Python loop over slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from mskbench.errors import DataError
from mskbench.types import SliceAxis, Subject

_NAMED_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}  # RAS+: x = R, y = A, z = S


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing settings, recorded in the run manifest via :meth:`describe`."""

    clip_percentiles: tuple[float, float] = (0.5, 99.5)  # of non-zero voxels; (1, 99) selectable
    min_object_pixels: int = 100  # per slice, per label (connected components smaller are removed)
    min_object_voxels: int = 1000  # per volume, per label
    include_empty_slices: bool = False

    def __post_init__(self) -> None:
        low, high = self.clip_percentiles
        if not 0.0 <= low < high <= 100.0:
            raise DataError(
                f"clip_percentiles {self.clip_percentiles}: need 0 <= low < high <= 100, e.g. (0.5, 99.5) or (1, 99)"
            )
        if self.min_object_pixels < 0 or self.min_object_voxels < 0:
            raise DataError("min_object_pixels and min_object_voxels must be >= 0 (0 disables the removal)")

    def describe(self) -> dict[str, object]:
        """JSON-friendly settings for the manifest."""
        out = asdict(self)
        out["clip_percentiles"] = list(self.clip_percentiles)
        return out


@dataclass
class PreparedSubject:
    """A subject ready for slicing: uint8 image, cleaned labels, slices to evaluate."""

    subject: Subject  # as loaded
    axis: int  # array axis sliced along
    image: np.ndarray  # uint8 volume, same grid (clip + scale to 0..255)
    labels: np.ndarray  # reference labels after small-object removal, same grid
    slice_indices: list[int]  # slices to evaluate (with any label, or all if include_empty_slices)
    pixel_spacing: tuple[float, float]  # (row, col) spacing of a 2D slice in mm


def slice_axis_index(spacing: Sequence[float], axis: SliceAxis) -> int:
    """Array axis for a named slicing direction of a RAS+ volume.

    ``through_plane`` is the axis with the largest spacing (the acquired
    slice direction of a 2D protocol); ties go to the first such axis.
    """
    if axis in _NAMED_AXES:
        return _NAMED_AXES[axis]
    if axis == "through_plane":
        if len(spacing) != 3:
            raise DataError(f"spacing {tuple(spacing)}: need three values to find the through-plane axis")
        return int(np.argmax(np.asarray(spacing, dtype=float)))
    raise DataError(f"slice axis {axis!r}: use one of axial, sagittal, coronal, through_plane")


def take_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2D slice ``index`` along ``axis`` (a view); rows = first remaining axis."""
    where: list[object] = [slice(None)] * volume.ndim
    where[axis] = index
    return volume[tuple(where)]


def normalize_intensity(volume: np.ndarray, percentiles: tuple[float, float], where: str = "volume") -> np.ndarray:
    """Clip to percentiles of the non-zero voxels and scale linearly to uint8 0..255.

    Non-zero voxels only, because the air or zero-padding around an MR image
    would otherwise pull the low percentile to zero and waste grey levels.
    """
    data = np.asarray(volume)
    if not np.isfinite(data).all():
        raise DataError(f"{where}: image contains NaN or infinite values; fix or mask them before running")
    nonzero = data[data != 0]
    if nonzero.size == 0:
        raise DataError(f"{where}: image is all zeros; check the file holds image data")
    low, high = np.percentile(nonzero, percentiles)
    if not high > low:
        raise DataError(
            f"{where}: intensities are constant ({low:g}) between the {percentiles} percentiles; "
            "check the image, or choose wider clip_percentiles"
        )
    out = data.astype(np.float32, copy=True)
    np.clip(out, np.float32(low), np.float32(high), out=out)  # float32 bounds keep it in float32
    out -= np.float32(low)
    out *= np.float32(255.0 / (high - low))
    return np.rint(out, out=out).astype(np.uint8)


def remove_small_objects(labels: np.ndarray, axis: int, min_pixels: int, min_voxels: int) -> np.ndarray:
    """Drop connected components of each label smaller than the thresholds.

    2D components within each slice along ``axis`` (8-connected) below
    ``min_pixels`` go first, then 3D components (26-connected) below
    ``min_voxels``; in that order the result meets both thresholds. Full
    connectivity keeps thin, diagonally touching shells (cartilage) whole.
    Removed voxels become background (0).
    """
    out = np.array(labels, copy=True)
    if min_pixels <= 0 and min_voxels <= 0:
        return out
    in_plane = np.ones((3, 3, 3), dtype=bool)
    in_plane[tuple(_plane_mask(axis))] = False  # no connections across slices
    full = np.ones((3, 3, 3), dtype=bool)
    boxes = ndimage.find_objects(out)
    for value, box in enumerate(boxes, start=1):
        if box is None:
            continue
        region = out[box]
        mask = region == value
        for structure, threshold in ((in_plane, min_pixels), (full, min_voxels)):
            if threshold <= 0:
                continue
            components, count = ndimage.label(mask, structure=structure)
            if count == 0:
                break
            sizes = np.bincount(components.ravel())
            small = sizes < threshold
            small[0] = False
            if small.any():
                drop = small[components]
                region[drop] = 0
                mask &= ~drop
    return out


def _plane_mask(axis: int) -> list[object]:
    """Index of the structuring-element planes off the slice (the ±1 neighbours along ``axis``)."""
    where: list[object] = [slice(None)] * 3
    where[axis] = [0, 2]
    return where


def prepare_subject(subject: Subject, slice_axis: SliceAxis, config: PreprocessConfig) -> PreparedSubject:
    """Normalise, clean and choose slices for one subject; raise DataError on bad input."""
    where = f"subject {subject.id}"
    if subject.volume.ndim != 3:
        raise DataError(f"{where}: image has shape {subject.volume.shape}; a 3D volume is needed")
    if subject.labels.shape != subject.volume.shape:
        raise DataError(
            f"{where}: label grid {subject.labels.shape} differs from image grid {subject.volume.shape}; "
            "resample the labels onto the image"
        )
    axis = slice_axis_index(subject.spacing, slice_axis)
    image = normalize_intensity(subject.volume, config.clip_percentiles, where)
    labels = remove_small_objects(subject.labels, axis, config.min_object_pixels, config.min_object_voxels)
    if config.include_empty_slices:
        slice_indices = list(range(labels.shape[axis]))
    else:
        other = tuple(a for a in range(3) if a != axis)
        slice_indices = np.flatnonzero(labels.any(axis=other)).tolist()
    rows, cols = (float(subject.spacing[a]) for a in range(3) if a != axis)
    return PreparedSubject(subject, axis, image, labels, slice_indices, (rows, cols))

"""Assemble a checked :class:`~mskbench.types.Subject` from an image and a label volume.

Every dataset plugin ends here, so the bad-input checks (grid or affine
mismatch, NaN or constant intensities, labels missing from the label map)
are written once and raise the same one-line :class:`DataError`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mskbench.data.readers import Volume
from mskbench.errors import DataError
from mskbench.types import Acquisition, Demographics, LabelInfo, Subject

_AFFINE_TOLERANCE_MM = 1e-3  # per voxel-size unit: the grids must coincide to a micrometre per mm


def check_same_grid(image: Volume, other: Volume, what: str = "labels") -> None:
    """Raise unless ``other`` lies on exactly the grid of ``image``."""
    if other.array.shape != image.array.shape:
        raise DataError(
            f"{other.path}: {what} grid {other.array.shape} differs from image grid {image.array.shape} "
            f"({image.path}); resample the {what} onto the image"
        )
    scale = max(1.0, float(np.max(np.abs(image.affine[:3, :3]))))
    if not np.allclose(other.affine, image.affine, atol=_AFFINE_TOLERANCE_MM * scale):
        raise DataError(
            f"{other.path}: {what} affine differs from the image's ({image.path}) by "
            f"{float(np.max(np.abs(other.affine - image.affine))):.3g} mm; the files are not aligned, "
            "resample or fix the header"
        )


def check_intensities(volume: np.ndarray, where: str) -> None:
    """Raise on NaN/inf or constant intensities (nothing a model could segment)."""
    if not np.isfinite(volume).all():
        raise DataError(f"{where}: image contains NaN or infinite values; fix or mask them before running")
    if volume.size == 0 or float(volume.min()) == float(volume.max()):
        raise DataError(f"{where}: image intensities are constant; check the file holds image data")


def check_label_values(labels: np.ndarray, label_map: Mapping[int, LabelInfo], where: str) -> None:
    """Raise when the label volume holds values the label map does not declare."""
    if not np.issubdtype(labels.dtype, np.integer):
        rounded = np.rint(labels)
        if not np.array_equal(rounded, labels):
            raise DataError(f"{where}: label volume holds non-integer values; save labels as integers")
    present = np.unique(labels)
    unknown = sorted(int(v) for v in present if v != 0 and int(v) not in label_map)
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:10])
        raise DataError(
            f"{where}: label values {shown} are not in the dataset's label map "
            f"(known: {', '.join(str(k) for k in sorted(label_map))}); fix the mask or the label map"
        )


def label_dtype(max_id: int) -> np.dtype:
    """Smallest unsigned dtype that holds ``max_id``."""
    return np.dtype(np.uint8 if max_id < 256 else np.uint16 if max_id < 65536 else np.int32)


def build_subject(
    subject_id: str,
    image: Volume,
    labels: Volume | np.ndarray,
    label_map: Mapping[int, LabelInfo],
    *,
    acquisition: Acquisition | None = None,
    demographics: Demographics | None = None,
    maps: Mapping[str, Volume] | None = None,
    anatomy: str | None = None,
    source_files: tuple[str, ...] = (),
) -> Subject:
    """A checked Subject: float32 image, integer labels on the same grid.

    ``labels`` may be a plain array already on the image grid (e.g. built
    from one-hot channels or per-structure masks).
    """
    check_intensities(image.array, image.path)
    if isinstance(labels, Volume):
        check_same_grid(image, labels)
        label_array, label_where = labels.array, labels.path
    else:
        label_array, label_where = np.asarray(labels), f"{image.path} (labels)"
        if label_array.shape != image.array.shape:
            raise DataError(
                f"{label_where}: label grid {label_array.shape} differs from image grid {image.array.shape}; "
                "resample the labels onto the image"
            )
    check_label_values(label_array, label_map, label_where)
    map_arrays: dict[str, np.ndarray] = {}
    for name, volume in (maps or {}).items():
        check_same_grid(image, volume, what=f"{name} map")
        map_arrays[name] = np.asarray(volume.array, dtype=np.float32)
    max_id = max(label_map, default=0)
    return Subject(
        id=subject_id,
        volume=np.asarray(image.array, dtype=np.float32),
        labels=np.asarray(label_array).astype(label_dtype(max_id), copy=False),
        spacing=image.spacing,
        affine=image.affine,
        label_map=dict(label_map),
        acquisition=acquisition or Acquisition(),
        demographics=demographics or Demographics(),
        maps=map_arrays,
        anatomy=anatomy,
        source_files=source_files or (image.path,),
        stored_orientation=image.original_orientation,
    )

"""Cartilage thickness (DESIGN §8): the source study's 2D medial-axis method, or local 3D thickness.

``medial_axis_2d`` (the default): per slice and cartilage label: the skeleton (``skimage.morphology.skeletonize``)
approximates the medial axis; the Euclidean distance transform with the
in-plane spacing (``scipy.ndimage.distance_transform_edt(sampling=...)``) gives
the half-thickness there, so thickness = 2 × EDT in mm. The subject value is
the mean over all skeleton points of all slices. The source study's code scaled
the EDT by the slice thickness and dropped the factor 2; this does neither.
A 2D section cuts cartilage that curves through the slice plane obliquely, so
it reads thicker there (1/cos of the tilt).

``local_3d``: :mod:`mskbench.biomarkers.thickness_3d`, the mean local
thickness over the label's voxels in 3D, which no slice direction biases.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.morphology import skeletonize

from mskbench.biomarkers.geometry import in_plane_axes
from mskbench.biomarkers.inputs import MISSING, checked_spacing, label_boxes
from mskbench.errors import DataError
from mskbench.protocols import BiomarkerValue
from mskbench.types import LabelInfo, Subject

MEDIAL_AXIS_2D = "medial_axis_2d"
LOCAL_3D = "local_3d"
METHODS = (MEDIAL_AXIS_2D, LOCAL_3D)


def thickness_samples(mask: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """Local thickness in mm (2 × EDT) at each skeleton point of one 2D mask."""
    skeleton = skeletonize(mask)
    distance = ndimage.distance_transform_edt(mask, sampling=spacing)
    return 2.0 * distance[skeleton]


def _grown(box: slice, size: int) -> slice:
    """A bounding-box side grown by one pixel inside the image, so the crop keeps
    a background ring wherever the full slice has one (and none at the image border)."""
    return slice(max(box.start - 1, 0), min(box.stop + 1, size))


def structure_thickness_samples(
    labels: np.ndarray, label: int, box: tuple[slice, ...], spacing: Sequence[float], slice_axis: int
) -> np.ndarray:
    """All skeleton-point thicknesses of one label inside its bounding box, slice by slice."""
    rows, cols = in_plane_axes(slice_axis)
    crop = list(box)
    crop[rows] = _grown(box[rows], labels.shape[rows])
    crop[cols] = _grown(box[cols], labels.shape[cols])
    region = np.moveaxis(labels[tuple(crop)] == label, slice_axis, 0)
    in_plane = (spacing[rows], spacing[cols])
    samples = [thickness_samples(plane, in_plane) for plane in region if plane.any()]
    return np.concatenate(samples) if samples else np.empty(0)


def structure_local_thickness(labels: np.ndarray, label: int, box: tuple[slice, ...], spacing) -> np.ndarray:
    """Local 3D thickness (mm) of the voxels of one label inside its bounding box."""
    from mskbench.biomarkers.thickness_3d import local_thickness_samples

    return local_thickness_samples(labels[box] == label, spacing)


class CartilageThickness:
    """Mean cartilage thickness per label, in mm, by ``method`` (one of :data:`METHODS`)."""

    name = "cartilage_thickness"
    unit = "mm"

    def __init__(self, method: str = MEDIAL_AXIS_2D):
        if method not in METHODS:
            raise ValueError(f"unknown thickness method {method!r}; use one of {', '.join(METHODS)}")
        self.method = method

    def compute(
        self,
        labels: np.ndarray,
        subject: Subject,
        structures: Sequence[LabelInfo],
        slice_axis: int,
    ) -> list[BiomarkerValue]:
        spacing = checked_spacing(labels, subject)
        in_plane_axes(slice_axis)  # rejects a bad axis even when no label is present
        if self.method == LOCAL_3D and min(labels.shape) < 2:
            raise DataError(
                f"subject {subject.id}: label volume {labels.shape} is a single slice; "
                f"{LOCAL_3D} thickness needs a 3D volume (use {MEDIAL_AXIS_2D})"
            )
        boxes = label_boxes(labels, structures)
        values = []
        for structure in structures:
            box = boxes[structure.id]
            value = MISSING
            if box is not None:
                if self.method == LOCAL_3D:
                    samples = structure_local_thickness(labels, structure.id, box, spacing)
                else:
                    samples = structure_thickness_samples(labels, structure.id, box, spacing, slice_axis)
                value = float(samples.mean()) if samples.size else MISSING
            values.append(BiomarkerValue(structure.name, self.name, value, self.unit, self.method))
        return values

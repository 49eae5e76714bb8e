"""Intervertebral disc height from minimum-area rectangles (DESIGN §8).

Each disc label is split into instances by 3D connected components (with one
label per level, each label is normally one instance), numbered cranial to
caudal by the world S coordinate of their centroids. Per slice, a minimum-area
rectangle is fitted around the instance's pixels (OpenCV's ``minAreaRect`` on
their convex hull, checked against the pixels' principal axes, see
:func:`rectangle_height`); height is the rectangle side closer to the
cranio-caudal direction from the affine, in mm, corrected for pixel sampling
(:func:`sampled_extent`). The disc value is the maximum over slices.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import cv2
import numpy as np
from scipy import ndimage

from mskbench.biomarkers.geometry import (
    cranio_caudal_in_plane,
    in_plane_axes,
    plane_axis,
    voxel_centres_world,
)
from mskbench.biomarkers.inputs import MISSING, checked_spacing, label_boxes
from mskbench.errors import DataError
from mskbench.protocols import BiomarkerValue
from mskbench.types import LabelInfo, Subject

log = logging.getLogger(__name__)

METHOD = "min_area_rect_max_over_slices"


def rectangle_height(points: np.ndarray, spacing: tuple[float, float], up: np.ndarray) -> float:
    """Side of the minimum-area rectangle around pixels ``points`` closest to ``up``, in mm.

    ``points`` are (row, column) pixel indices; ``spacing`` is (row, column) mm;
    ``up`` is a unit (x = column, y = row) vector in mm space. Two orientations
    compete: ``cv2.minAreaRect`` on the convex hull of the pixel centres, and
    the principal axes of the pixels. On a coarse grid a slightly tilted disc is
    a one-step staircase whose centre hull is smallest when axis-aligned, while
    the principal axes keep the true tilt; the orientation whose rectangle,
    measured with :func:`sampled_extent`, has the smaller area wins.
    """
    xy = points[:, ::-1] * (spacing[1], spacing[0])
    _, _, angle = cv2.minAreaRect(cv2.convexHull(xy.astype(np.float32)))
    theta = np.deg2rad(angle)
    candidates = [np.array([np.cos(theta), np.sin(theta)]), _principal_axis(xy)]

    def sides(axis: np.ndarray) -> tuple[float, float]:
        normal = np.array([-axis[1], axis[0]])
        return sampled_extent(xy, axis, spacing), sampled_extent(xy, normal, spacing)

    axis = min(candidates, key=lambda a: float(np.prod(sides(a))))
    along, across = sides(axis)
    return along if abs(float(axis @ up)) >= abs(axis[1] * up[0] - axis[0] * up[1]) else across


def _principal_axis(xy: np.ndarray) -> np.ndarray:
    """Unit direction of the largest second moment of the points (x axis when isotropic)."""
    if len(xy) < 2:
        return np.array([1.0, 0.0])
    _, vectors = np.linalg.eigh(np.cov(xy.T))
    return vectors[:, -1]


def sampled_extent(xy: np.ndarray, direction: np.ndarray, spacing: tuple[float, float]) -> float:
    """Length of the shape along ``direction`` estimated from its pixel centres (mm).

    The outermost centres lie inside the true edge by about half the step
    between distinct centre positions along ``direction`` there (half a pixel
    for a grid-aligned edge, almost nothing for an oblique one), so half of the
    outermost step is added at each end; a shape one centre thick along
    ``direction`` is one pixel footprint long. Hand-written because neither
    OpenCV nor scikit-image corrects a point-set extent for lattice sampling.
    """
    footprint = spacing[1] * abs(direction[0]) + spacing[0] * abs(direction[1])
    levels = np.unique(np.round(xy @ direction / footprint, 3)) * footprint
    if len(levels) == 1:
        return float(footprint)
    end_steps = (levels[1] - levels[0]) + (levels[-1] - levels[-2])
    return float(levels[-1] - levels[0] + end_steps / 2)


def height_axis(affine: np.ndarray, slice_axis: int) -> int:
    """The slice axis to measure on: the dataset's, unless its slices are (near) axial.

    Axial slices hold no cranio-caudal direction, so the height is then measured
    on sagittal slices instead.
    """
    if cranio_caudal_in_plane(affine, slice_axis) is not None:
        return slice_axis
    sagittal = plane_axis(affine, "sagittal")
    log.info("disc height: slice axis %d is axial; measuring on sagittal axis %d", slice_axis, sagittal)
    return sagittal


def instance_height(voxels: np.ndarray, spacing: Sequence[float], slice_axis: int, up: np.ndarray) -> float:
    """Maximum over slices of the rectangle height of one instance's voxel indices (N, 3)."""
    rows, cols = in_plane_axes(slice_axis)
    order = np.argsort(voxels[:, slice_axis], kind="stable")
    ordered = voxels[order]
    breaks = np.flatnonzero(np.diff(ordered[:, slice_axis])) + 1
    in_plane = (spacing[rows], spacing[cols])
    return max(rectangle_height(group[:, [rows, cols]], in_plane, up) for group in np.split(ordered, breaks))


class DiscHeight:
    """Height of each disc instance, in mm, numbered cranial (1) to caudal."""

    name = "disc_height"
    unit = "mm"

    def __init__(self, connectivity: int = 3, min_voxels: int = 1):
        self.structure = ndimage.generate_binary_structure(3, connectivity)
        self.min_voxels = min_voxels

    def compute(
        self,
        labels: np.ndarray,
        subject: Subject,
        structures: Sequence[LabelInfo],
        slice_axis: int,
    ) -> list[BiomarkerValue]:
        spacing = checked_spacing(labels, subject)
        axis = height_axis(subject.affine, slice_axis)
        up = cranio_caudal_in_plane(subject.affine, axis)
        if up is None:
            raise DataError(f"subject {subject.id}: the affine has no cranio-caudal direction in any slice plane")
        boxes = label_boxes(labels, structures)
        values = []
        for structure in structures:
            box = boxes[structure.id]
            instances = self._instances(labels, structure.id, box, subject.affine) if box is not None else []
            if not instances:
                values.append(BiomarkerValue(structure.name, self.name, MISSING, self.unit, METHOD))
            for number, voxels in enumerate(instances, start=1):
                height = instance_height(voxels, spacing, axis, up)
                values.append(BiomarkerValue(structure.name, self.name, height, self.unit, METHOD, number))
        return values

    def _instances(
        self, labels: np.ndarray, label: int, box: tuple[slice, ...], affine: np.ndarray
    ) -> list[np.ndarray]:
        """Voxel indices (N, 3) of each connected component, cranial first."""
        components, _ = ndimage.label(labels[box] == label, structure=self.structure)
        offset = np.array([s.start for s in box])
        found = []
        for index, region in enumerate(ndimage.find_objects(components), start=1):
            local = np.argwhere(components[region] == index)
            if len(local) < self.min_voxels:
                continue
            voxels = local + offset + np.array([s.start for s in region])
            found.append(voxels)
        superior = [voxel_centres_world(affine, v.astype(float)).mean(axis=0)[2] for v in found]
        return [found[i] for i in np.argsort(superior)[::-1]]

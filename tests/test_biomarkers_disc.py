"""Disc height against rectangles of known height (DESIGN §8).

Array axes follow RAS+: axis 0 is L-R (sagittal slices), axis 1 A-P (rows of a
sagittal slice), axis 2 S-I (its columns). ``rectangle`` draws the height along
the rows, so the volumes below are transposed to put it along S-I.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_biomarkers_shapes import DISC, extrude, rectangle, subject_for

from mskbench.biomarkers.disc_height import DiscHeight, rectangle_height
from mskbench.types import LabelInfo, TissueClass

SAGITTAL, AXIAL = 0, 2


def disc_volume(height, width, angle, in_plane, depth=4, label=DISC.id):
    """(L-R, A-P, S-I) label volume of a rectangular disc tilted by ``angle`` in the sagittal plane."""
    shape = (int(50 / in_plane[1]), int(50 / in_plane[0]))
    plane = rectangle(height, width, angle, (in_plane[1], in_plane[0]), shape)  # rows = S-I here
    return np.ascontiguousarray(extrude(plane, depth, label).transpose(0, 2, 1))


def heights(labels, spacing, affine=None, slice_axis=SAGITTAL, structures=(DISC,), **params):
    subject = subject_for(labels, spacing, affine=affine)
    return DiscHeight(**params).compute(labels, subject, list(structures), slice_axis)


@pytest.mark.parametrize("angle", [-30.0, -12.0, 0.0, 17.0, 30.0])
@pytest.mark.parametrize("height", [6.0, 9.5, 13.0])
@pytest.mark.parametrize("in_plane", [(0.5, 0.5), (0.4, 0.7), (0.7, 0.35)])
def test_rotated_rectangular_disc_height(angle, height, in_plane):
    labels = disc_volume(height, 35.0, angle, in_plane)
    [value] = heights(labels, (2.0, *in_plane))
    assert (value.biomarker, value.unit, value.instance) == ("disc_height", "mm", 1)
    assert abs(value.value - height) <= max(0.5, 0.05 * height), value.value


def test_height_is_the_side_along_s_i_even_when_it_is_the_longer_side():
    labels = disc_volume(14.0, 8.0, 20.0, (0.5, 0.5))
    [value] = heights(labels, (2.0, 0.5, 0.5))
    assert abs(value.value - 14.0) <= 0.5


def test_instances_are_numbered_cranial_to_caudal_from_the_affine():
    in_plane = (0.5, 0.5)
    upper = disc_volume(6.0, 30.0, 5.0, in_plane)
    lower = disc_volume(11.0, 30.0, -5.0, in_plane)
    labels = np.zeros((4, upper.shape[1], 2 * upper.shape[2]), np.int16)
    labels[:, :, upper.shape[2] :] = upper  # larger S index = more superior with a +z affine
    labels[:, :, : upper.shape[2]] = lower
    spacing = (2.0, *in_plane)
    first, second = heights(labels, spacing)
    assert (first.instance, second.instance) == (1, 2)
    assert abs(first.value - 6.0) <= 0.5 and abs(second.value - 11.0) <= 0.55
    # The same voxels with axis 2 pointing inferior: the other disc is now cranial.
    flipped = np.diag([2.0, 0.5, -0.5, 1.0])
    first, second = heights(labels, spacing, affine=flipped)
    assert abs(first.value - 11.0) <= 0.55 and abs(second.value - 6.0) <= 0.5


def test_height_is_the_maximum_over_slices():
    labels = np.concatenate([disc_volume(h, 30.0, 0.0, (0.5, 0.5), depth=1) for h in (7.0, 10.0, 8.0)])
    [value] = heights(labels, (2.0, 0.5, 0.5))
    assert abs(value.value - 10.0) <= 0.5


def test_axial_slicing_falls_back_to_sagittal_slices():
    labels = disc_volume(9.0, 30.0, 15.0, (0.5, 0.5))
    [sagittal] = heights(labels, (2.0, 0.5, 0.5), slice_axis=SAGITTAL)
    [axial] = heights(labels, (2.0, 0.5, 0.5), slice_axis=AXIAL)
    assert axial.value == sagittal.value


def test_one_label_per_level_and_a_missing_level():
    l4, l5, s1 = (LabelInfo(i, f"disc_{n}", TissueClass.DISC) for i, n in ((3, "L4_L5"), (4, "L5_S1"), (5, "S1_S2")))
    upper = disc_volume(8.0, 30.0, 10.0, (0.5, 0.5), label=3)
    lower = disc_volume(12.0, 30.0, -10.0, (0.5, 0.5), label=4)
    labels = np.concatenate([lower, upper], axis=2)  # L5-S1 caudal, L4-L5 cranial; S1-S2 absent
    values = heights(labels, (2.0, 0.5, 0.5), structures=(l4, l5, s1))
    assert [v.structure for v in values] == ["disc_L4_L5", "disc_L5_S1", "disc_S1_S2"]
    assert [v.instance for v in values[:2]] == [1, 1]  # each level label is its own instance
    assert abs(values[0].value - 8.0) <= 0.5 and abs(values[1].value - 12.0) <= 0.6
    assert math.isnan(values[2].value) and values[2].instance is None


def test_min_voxels_drops_specks_and_connectivity_splits_diagonal_contacts():
    labels = disc_volume(8.0, 30.0, 0.0, (0.5, 0.5))
    labels[0, 0, 0] = DISC.id  # a one-voxel speck far from the disc
    assert len(heights(labels, (2.0, 0.5, 0.5))) == 2
    assert len(heights(labels, (2.0, 0.5, 0.5), min_voxels=10)) == 1
    touching = np.zeros((1, 4, 4), np.int16)
    touching[0, 0, 0] = touching[0, 1, 1] = DISC.id
    assert len(heights(touching, (1.0, 1.0, 1.0), connectivity=3)) == 1
    assert len(heights(touching, (1.0, 1.0, 1.0), connectivity=1)) == 2


def test_a_single_pixel_is_one_pixel_tall():
    assert rectangle_height(np.array([[4, 7]]), (0.5, 0.8), np.array([1.0, 0.0])) == pytest.approx(0.8)
    assert rectangle_height(np.array([[4, 7]]), (0.5, 0.8), np.array([0.0, 1.0])) == pytest.approx(0.5)

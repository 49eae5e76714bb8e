"""Cartilage thickness against shapes of known thickness (DESIGN §8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_biomarkers_shapes import CARTILAGE, annulus, band, extrude, subject_for

from mskbench.biomarkers.thickness import CartilageThickness, thickness_samples

SAGITTAL = 0


def measure(plane_mask, in_plane, slice_spacing=0.7):
    labels = extrude(plane_mask, 3, CARTILAGE.id)
    spacing = (slice_spacing, *in_plane)
    [value] = CartilageThickness().compute(labels, subject_for(labels, spacing), [CARTILAGE], SAGITTAL)
    assert (value.structure, value.biomarker, value.unit) == ("femoral_cartilage", "cartilage_thickness", "mm")
    return value.value


def test_curved_shell_thickness_bias_is_a_fraction_of_a_pixel():
    """Rings (sections of a shell) over thickness 1.5-3.5 mm and pixels 0.3-0.7 mm.

    Measured: mean error +0.2 px, worst +0.51 px (2×EDT reaches the centres of
    the background pixels, half a pixel beyond the true edge on each side).
    """
    errors, tolerated = [], []
    for thickness in (1.5, 2.0, 2.5, 3.0, 3.5):
        for pixel in (0.3, 0.5, 0.7):
            ring = annulus(14.0, thickness, (pixel, pixel), (int(34 / pixel), int(34 / pixel)))
            error = measure(ring, (pixel, pixel)) - thickness
            errors.append(error / pixel)
            tolerated.append(abs(error) <= max(0.5 * pixel, 0.05 * thickness))
    errors = np.array(errors)
    assert np.all(np.abs(errors) <= 0.6), errors
    assert 0.0 <= errors.mean() <= 0.3, errors
    assert np.mean(tolerated) >= 0.9, errors


@pytest.mark.parametrize("thickness", [1.5, 2.5, 3.5])
def test_straight_band_at_arbitrary_rotations(thickness):
    pixel = 0.4
    angles = np.random.default_rng(7).uniform(0.0, 180.0, 12)
    errors = np.array(
        [measure(band(thickness, angle, (pixel, pixel), (80, 80)), (pixel, pixel)) - thickness for angle in angles]
    ) / pixel
    assert np.all(np.abs(errors) <= 1.2), errors  # every orientation within about a pixel
    assert abs(errors.mean()) <= 0.5, errors  # and no systematic bias beyond half a pixel


@pytest.mark.parametrize("in_plane", [(0.3, 0.6), (0.6, 0.3)])
@pytest.mark.parametrize("angle", [30.0, 60.0, 120.0])
def test_anisotropic_in_plane_spacing(in_plane, angle):
    shape = (int(30 / in_plane[0]), int(30 / in_plane[1]))
    value = measure(band(2.5, angle, in_plane, shape), in_plane)
    assert abs(value - 2.5) <= max(0.5 * max(in_plane), 0.05 * 2.5)


def test_shell_cut_by_the_image_border_is_not_thinned_there():
    pixel = (0.5, 0.5)
    full = annulus(15.0, 2.5, pixel, (100, 100))
    cut = annulus(15.0, 2.5, pixel, (100, 100), centre=(0.0, 12.0))
    assert cut[:, -1].any() and not full[:, -1].any()
    assert abs(measure(cut, pixel) - measure(full, pixel)) < 0.15
    assert abs(measure(cut, pixel) - 2.5) <= max(0.25, 0.05 * 2.5)


def test_slice_thickness_does_not_enter_the_in_plane_measure():
    # The source study multiplied the EDT by the slice thickness; here only in-plane spacing counts.
    ring = annulus(14.0, 2.5, (0.4, 0.4), (85, 85))
    assert measure(ring, (0.4, 0.4), slice_spacing=0.4) == measure(ring, (0.4, 0.4), slice_spacing=3.0)


def test_grid_aligned_odd_band_reads_one_pixel_thick_the_documented_bias():
    odd = np.zeros((40, 40), bool)
    odd[10:15, :] = True  # 5 pixels: the centre pixel is 3 pixels from background on both sides
    even = np.zeros((40, 40), bool)
    even[10:16, :] = True
    assert np.median(thickness_samples(odd, (0.5, 0.5))) == pytest.approx(3.0)
    assert np.median(thickness_samples(even, (0.5, 0.5))) == pytest.approx(3.0)


def test_missing_structure_is_nan_and_present_one_is_measured():
    labels = np.zeros((4, 60, 60), np.int16)
    labels[1:3] = annulus(8.0, 2.0, (0.5, 0.5), (60, 60)) * CARTILAGE.id
    tibial = type(CARTILAGE)(5, "tibial_cartilage", CARTILAGE.tissue)
    subject = subject_for(labels, (1.0, 0.5, 0.5), label_infos=(CARTILAGE, tibial))
    femoral, missing = CartilageThickness().compute(labels, subject, [CARTILAGE, tibial], SAGITTAL)
    assert abs(femoral.value - 2.0) <= 0.25
    assert missing.structure == "tibial_cartilage" and math.isnan(missing.value)


def test_thickness_is_measured_in_the_slices_of_the_given_axis():
    # A slab 2 mm (5 voxels) thick across axis 1: slices along axes 0 and 2 cut it as a 2 mm band,
    # slices along axis 1 lie inside it and see a 12 x 12 mm plate.
    labels = np.zeros((30, 40, 30), np.int16)
    labels[:, 18:23, :] = CARTILAGE.id
    subject = subject_for(labels, (0.4, 0.4, 0.4))
    across = [CartilageThickness().compute(labels, subject, [CARTILAGE], axis)[0].value for axis in (0, 1, 2)]
    assert abs(across[0] - 2.0) <= 0.4 and abs(across[2] - 2.0) <= 0.4
    assert across[1] > 5.0

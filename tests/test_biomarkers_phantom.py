"""Biomarkers from exact phantom masks against the phantom's analytic truth (issue 7).

The truth comes from the continuous geometry (``Subject.truth``), never from
the rasterised mask these biomarkers read. Generating a knee takes 0.3-2 s
(more under load), so these tests are marked slow.
"""

from __future__ import annotations

from functools import lru_cache

import pytest

from mskbench.biomarkers.selection import select_structures
from mskbench.plugin_manager import load_registry

generate = pytest.importorskip("mskbench.phantom.generate")

pytestmark = pytest.mark.slow
SLICE_AXIS = 0  # every phantom anatomy used here is sagittal


@lru_cache(maxsize=None)
def subject(anatomy, index, pixel=None, thickness=None):
    options = {"noise": False}
    if pixel is not None:
        options["pixel_spacing"] = (pixel, pixel)
    if thickness is not None:
        options["cartilage_thickness"] = (thickness, thickness)
    return generate.generate_subject(anatomy, 0, index, generate.PhantomOptions(**options))


def compute(plugin, case, **params):
    biomarker = load_registry().create("biomarker", plugin, params, plugin)
    structures = select_structures(case.label_map, default_for=plugin)
    return biomarker.compute(case.labels, case, structures, SLICE_AXIS)


def compared(values, case):
    pairs = [(v, case.truth[(v.biomarker, v.structure)]) for v in values if (v.biomarker, v.structure) in case.truth]
    assert pairs, "the phantom recorded no truth for these values"
    return pairs


KNEE_CASES = [(0.7, 3.5), (0.5, 2.5), (0.4, 1.5)]


@pytest.mark.parametrize(("pixel", "thickness"), KNEE_CASES)
def test_cartilage_thickness_within_half_pixel_or_5_percent(pixel, thickness):
    # Measured over knees 0-5 at these cases and (0.3, 2.0): mean +0.24 / +0.22 / +0.29 px
    # (femoral / tibial / patellar), worst +0.35 / +0.52 / +0.49 px.
    case = subject("knee", 1, pixel, thickness)
    pairs = compared(compute("cartilage_thickness", case), case)
    assert {v.structure for v, _ in pairs} == {"femoral_cartilage", "tibial_cartilage", "patellar_cartilage"}
    for value, truth in pairs:
        assert abs(value.value - truth) <= max(0.5 * pixel, 0.05 * truth), (value, truth)


@pytest.mark.parametrize(("pixel", "thickness"), KNEE_CASES[:2])
def test_relaxometry_means_within_1_ms_with_exact_masks(pixel, thickness):
    case = subject("knee", 1, pixel, thickness)
    pairs = compared(compute("relaxometry", case), case)
    assert {v.biomarker for v, _ in pairs} == {"t2", "t1rho"}
    assert any(v.structure == "overall" for v, _ in pairs)
    for value, truth in pairs:
        assert abs(value.value - truth) <= 1.0, (value, truth)


def test_disc_height_per_level_within_half_mm_or_5_percent():
    """20 discs of four spine subjects (0.94-1.10 mm pixels): worst +0.41 mm.

    Over 40 discs (subjects 0-7): mean +0.05 mm, worst +0.64 mm, a near-level
    disc whose end plates lie along the pixel rows (see docs/biomarkers.md).
    """
    errors = []
    for index in range(4):
        case = subject("spine", index)
        values = compute("disc_height", case)
        assert len(values) == 5 and all(v.instance == 1 for v in values)
        for value, truth in compared(values, case):
            errors.append(value.value - truth)
            assert abs(value.value - truth) <= max(0.5, 0.05 * truth), (value, truth)
    assert abs(sum(errors) / len(errors)) <= 0.1, errors


@pytest.mark.parametrize("index", [0, 1])
def test_spine_volumes_within_2_percent(index):
    # Discs are 6-13 pixels tall; one whose end plates lie along the pixel rows gains or
    # loses a row in every slice at once (-3.7 % for subject 4's L2-L3), so discs are held
    # to one pixel row over their height. Measured on subjects 0-7: discs within 3.7 %,
    # everything else within 1.6 %.
    case = subject("spine", index)
    for value, truth in compared(compute("tissue_volume", case), case):
        tolerance = 0.02 * truth
        if ("disc_height", value.structure) in case.truth:
            tolerance = max(tolerance, truth * case.spacing[1] / case.truth[("disc_height", value.structure)])
        assert abs(value.value - truth) <= tolerance, (value, truth)


@pytest.mark.parametrize(("pixel", "thickness"), KNEE_CASES)
def test_knee_volumes_within_2_percent(pixel, thickness):
    case = subject("knee", 1, pixel, thickness)
    pairs = compared(compute("tissue_volume", case), case)
    assert len(pairs) == 8
    for value, truth in pairs:
        assert abs(value.value - truth) <= 0.02 * truth, (value, truth)


def test_local_3d_thickness_of_the_hip_cartilage_cap_curving_through_the_slices():
    """The hip cartilage is a spherical shell cap cut by coronal slices at every angle.

    Measured at 0.36 × 0.7 × 0.36 mm (hips 0 and 1): local_3d +1.9 / +1.6 %,
    medial_axis_2d +12.4 / +11.7 % (oblique sections read thicker).
    """
    from mskbench.phantom.anatomy import LOCAL_3D_THICKNESS, SLICE_AXES

    options = generate.PhantomOptions(noise=False, pixel_spacing=(0.36, 0.36), acquisition={"slice_thickness_mm": 0.7})
    case = generate.generate_subject("hip", 0, 0, options)
    truth = case.truth[(LOCAL_3D_THICKNESS, "hip_cartilage")]
    axis = SLICE_AXES[generate.slice_axis("hip")]
    structures = select_structures(case.label_map, default_for="cartilage_thickness")
    local, in_slices = (
        load_registry().create("biomarker", "cartilage_thickness", {"method": method}, "t")
        .compute(case.labels, case, structures, axis)[0]
        for method in ("local_3d", "medial_axis_2d")
    )
    assert abs(local.value / truth - 1) <= 0.07, (local, truth)
    assert in_slices.value / truth - 1 > 0.07, (in_slices, truth)  # the 2D method's oblique bias

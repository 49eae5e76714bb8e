"""Biomarkers from exact phantom masks against the phantom's analytic truth (issue 7).

The truth comes from the continuous geometry (``Subject.truth``), never from
the rasterised mask these biomarkers read. Generating a knee takes 8-25 s, so
these tests are marked slow.
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
def test_curved_cartilage_thickness_within_half_pixel_or_5_percent(pixel, thickness):
    case = subject("knee", 1, pixel, thickness)
    for value, truth in compared(compute("cartilage_thickness", case), case):
        if value.structure == "tibial_cartilage":
            continue  # a near-flat plate, see the next test
        assert abs(value.value - truth) <= max(0.5 * pixel, 0.05 * truth), (value, truth)


@pytest.mark.parametrize(("pixel", "thickness"), KNEE_CASES)
def test_flat_tibial_cartilage_thickness_shows_the_grid_aligned_bias(pixel, thickness):
    # The tibial plateau lies almost along the pixel rows: 2×EDT then reads +0.5 px on
    # average (+1 px for an odd number of pixels across, 0 for even); measured +0.54..+0.61 px.
    case = subject("knee", 1, pixel, thickness)
    [(value, truth)] = [(v, t) for v, t in compared(compute("cartilage_thickness", case), case)
                        if v.structure == "tibial_cartilage"]
    assert 0.0 <= (value.value - truth) / pixel <= 0.75, (value, truth)


@pytest.mark.parametrize(("pixel", "thickness"), KNEE_CASES[:2])
def test_relaxometry_means_within_1_ms_with_exact_masks(pixel, thickness):
    case = subject("knee", 1, pixel, thickness)
    pairs = compared(compute("relaxometry", case), case)
    assert {v.biomarker for v, _ in pairs} == {"t2", "t1rho"}
    assert any(v.structure == "overall" for v, _ in pairs)
    for value, truth in pairs:
        assert abs(value.value - truth) <= 1.0, (value, truth)


def test_disc_height_per_level_within_half_mm_or_5_percent():
    """20 discs of four spine subjects (0.94-1.04 mm pixels).

    Measured over 40 discs: mean error +0.04 mm, SD 0.12 mm; one disc (tilt
    0.5 degrees, almost on the pixel rows) reads 7 rows for 6.4 px, +0.6 px.
    """
    errors, within = [], []
    for index in range(4):
        case = subject("spine", index)
        values = compute("disc_height", case)
        assert len(values) == 5 and all(v.instance == 1 for v in values)
        for value, truth in compared(values, case):
            pixel = case.spacing[1]
            error = value.value - truth
            errors.append(error)
            within.append(abs(error) <= max(0.5, 0.05 * truth))
            assert abs(error) <= max(0.5, 0.05 * truth, 0.65 * pixel), (value, truth)
    assert sum(within) >= 19, errors
    assert abs(sum(errors) / len(errors)) <= 0.1, errors


@pytest.mark.parametrize("index", [0, 1])
def test_spine_volumes_within_2_percent(index):
    # Discs are only 6-7 pixels tall: an exact mask of a level disc gains or loses a whole
    # pixel row with the sampling phase (+9.7 % for subject 1's 6.0 mm L1-L2), so they are
    # held to one pixel row over their area instead.
    case = subject("spine", index)
    for value, truth in compared(compute("tissue_volume", case), case):
        tolerance = 0.02 * truth
        if ("disc_height", value.structure) in case.truth:
            tolerance = max(tolerance, truth * case.spacing[1] / case.truth[("disc_height", value.structure)])
        assert abs(value.value - truth) <= tolerance, (value, truth)


@pytest.mark.xfail(strict=True, reason="phantom knee structures end inside a 3.56 mm slice, so the exact mask "
                   "loses up to half a slice at each L-R end (femur -2.5 %, femoral cartilage -4.6 %, "
                   "menisci -19 %); reported to the phantom's owner")
def test_knee_volumes_within_2_percent():
    case = subject("knee", 1, 0.7, 3.5)
    for value, truth in compared(compute("tissue_volume", case), case):
        assert abs(value.value - truth) <= 0.02 * truth, (value, truth)

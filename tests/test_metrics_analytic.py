"""Surface and overlap metrics on shapes whose answers are known analytically."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mskbench.metrics.cases import HIT
from mskbench.metrics.engine import score_unit
from mskbench.metrics.overlap import OverlapMetrics
from mskbench.metrics.surface import SurfaceMetrics

METRICS = [OverlapMetrics(), SurfaceMetrics(nsd_tolerance_mm=1.0)]


def ball(shape, centre, radius_mm, spacing):
    grids = np.meshgrid(*[(np.arange(n) - c) * s for n, c, s in zip(shape, centre, spacing)], indexing="ij")
    return sum(g * g for g in grids) <= radius_mm**2


def values(reference, prediction, spacing, metrics=METRICS):
    state, computed = score_unit(reference, prediction, spacing, metrics)
    return state, {name: v.value for name, v in computed.items()}


@pytest.mark.parametrize(
    ("shape", "spacing", "r_inner", "r_outer"),
    [
        ((160, 120), (0.5, 0.8), 10.0, 20.0),
        ((160, 120), (0.3, 0.3), 5.0, 17.5),
        ((70, 70, 40), (0.6, 0.6, 1.5), 8.0, 16.0),
        ((60, 80, 60), (1.0, 0.7, 0.9), 6.0, 14.0),
    ],
)
def test_concentric_discs_and_spheres_give_radius_difference(shape, spacing, r_inner, r_outer):
    centre = [n / 2 - 0.3 for n in shape]
    inner, outer = ball(shape, centre, r_inner, spacing), ball(shape, centre, r_outer, spacing)
    voxel_diagonal = math.sqrt(sum(s * s for s in spacing))
    expected = r_outer - r_inner
    state, v = values(outer, inner, spacing)
    assert state == HIT
    for name in ("hd", "hd95", "assd", "masd"):
        assert abs(v[name] - expected) <= voxel_diagonal, (name, v[name])
    assert v["hd95"] <= v["hd"]
    # every boundary point is about r_outer - r_inner from the other surface
    _, tight = score_unit(outer, inner, spacing, [SurfaceMetrics(expected - voxel_diagonal - 0.01)])
    _, loose = score_unit(outer, inner, spacing, [SurfaceMetrics(expected + voxel_diagonal)])
    assert tight["nsd"].value == 0.0 and loose["nsd"].value == 1.0
    # Dice of nested objects = 2|inner| / (|inner| + |outer|)
    assert v["dice"] == pytest.approx(2 * inner.sum() / (inner.sum() + outer.sum()))
    assert v["iou"] == pytest.approx(inner.sum() / outer.sum())


@pytest.mark.parametrize("spacing", [(0.5, 0.7), (2.0, 0.25)])
@pytest.mark.parametrize("axis", [0, 1])
def test_box_shifted_along_one_axis(spacing, axis):
    """A 10x10 box moved by 3 voxels: HD = 3 spacings, Dice = 0.7, IoU = 70/130."""
    reference = np.zeros((40, 40), dtype=bool)
    reference[10:20, 10:20] = True
    prediction = np.roll(reference, 3, axis=axis)
    state, v = values(reference, prediction, spacing)
    assert state == HIT
    assert v["hd"] == pytest.approx(3 * spacing[axis], abs=1e-12)
    assert v["dice"] == pytest.approx(0.7)
    assert v["iou"] == pytest.approx(70 / 130)
    # symmetric shift: both directed distance sets are mirror images, so ASSD = MASD
    assert v["assd"] == pytest.approx(v["masd"])


def test_box_shifted_diagonally_in_3d():
    spacing = (0.5, 0.6, 2.0)
    reference = np.zeros((30, 30, 12), dtype=bool)
    reference[5:15, 5:15, 2:8] = True
    prediction = np.roll(reference, (2, 1, 1), axis=(0, 1, 2))
    _, v = values(reference, prediction, spacing)
    # the reference corner outside the prediction is the whole shift vector from the prediction's
    # corner; boundary points inside the other box are at most one z step (2 mm) from a face
    shift = math.sqrt((2 * 0.5) ** 2 + 0.6**2 + 2.0**2)
    assert v["hd"] == pytest.approx(shift, abs=1e-12)
    assert v["dice"] == pytest.approx(2 * (8 * 9 * 5) / (2 * 10 * 10 * 6))


@pytest.mark.parametrize("offset", [(0, 0, 0), (1, 0, 0), (2, 3, 1), (0, 0, 4)])
def test_one_voxel_objects_are_their_own_boundary(offset):
    spacing = (0.4, 0.9, 1.7)
    reference = np.zeros((9, 9, 9), dtype=bool)
    prediction = np.zeros_like(reference)
    reference[2, 3, 4] = True
    prediction[2 + offset[0], 3 + offset[1], 4 + offset[2]] = True
    distance = math.sqrt(sum((o * s) ** 2 for o, s in zip(offset, spacing)))
    _, v = values(reference, prediction, spacing)
    for name in ("hd", "hd95", "assd", "masd"):
        assert v[name] == pytest.approx(distance, abs=1e-12)
    assert v["nsd"] == (1.0 if distance <= 1.0 else 0.0)
    assert v["dice"] == (1.0 if distance == 0 else 0.0)


def test_masks_touching_the_image_border_keep_their_edge_as_boundary():
    """Outside the image is background: a mask filling the image has the image frame as boundary."""
    spacing = (0.5, 1.5)
    whole = np.ones((10, 12), dtype=bool)
    left_half = np.zeros_like(whole)
    left_half[:, :6] = True
    _, same = values(whole, whole, spacing)
    assert same["hd"] == 0.0 and same["nsd"] == 1.0 and same["dice"] == 1.0
    _, v = values(whole, left_half, spacing)
    # the reference's right frame column (11) is 6 columns from the half's right edge (5)
    assert v["hd"] == pytest.approx(6 * 1.5)
    assert v["dice"] == pytest.approx(2 * 60 / 180)


def test_anisotropic_spacing_changes_distances_not_overlap():
    reference = np.zeros((30, 30), dtype=bool)
    reference[10:20, 10:20] = True
    prediction = np.roll(reference, 2, axis=0)
    _, fine = values(reference, prediction, (0.5, 0.5))
    _, coarse_rows = values(reference, prediction, (3.0, 0.5))
    assert coarse_rows["hd"] == pytest.approx(6.0) and fine["hd"] == pytest.approx(1.0)
    assert coarse_rows["dice"] == fine["dice"]

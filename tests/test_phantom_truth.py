"""The phantom's analytic truth against brute-force integration of its own geometry.

Nothing here reads the rasterised masks: volumes are quasi-Monte-Carlo
integrals of the painted scene (so any overlap between labelled structures
would show up as missing volume), thickness is DESIGN §8's medial axis + EDT
on a very fine raster of each slice, disc height is OpenCV's minimum-area
rectangle on fine sagittal sections, and mean T2/T1rho are quasi-Monte-Carlo
means of the maps over each cartilage. Each must agree within 1 %.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pytest
from scipy.stats import qmc
from skimage.morphology import medial_axis

from mskbench.phantom.generate import PhantomOptions, blueprint
from mskbench.phantom.shapes import plane_axes

SUBJECTS = [(anatomy, index) for anatomy in ("knee", "spine", "thigh", "hip") for index in (0, 1)]


@lru_cache(maxsize=None)
def plan(anatomy: str, index: int, seed: int = 3):
    return blueprint(anatomy, seed, index, PhantomOptions())


def sobol_points(lo: np.ndarray, hi: np.ndarray, log2_n: int, seed: int) -> np.ndarray:
    unit = qmc.Sobol(3, scramble=True, seed=seed).random_base2(log2_n)
    return lo + unit * (hi - lo)


@pytest.mark.parametrize(("anatomy", "index"), SUBJECTS)
def test_volumes_match_quasi_monte_carlo_integration_of_the_scene(anatomy, index):
    built = plan(anatomy, index).anatomy
    scene = built.scene
    for seed, structure in enumerate(built.structures):
        lo, hi = structure.shape.lo, structure.shape.hi
        points = sobol_points(lo, hi, 18, seed)
        labels = scene.labels_of(scene.locate(points))
        estimate = np.mean(labels == structure.info.id) * np.prod(hi - lo)
        assert estimate == pytest.approx(structure.volume_mm3, rel=0.01), structure.info.name


@pytest.mark.parametrize(("anatomy", "index"), SUBJECTS)
def test_labelled_structures_lie_inside_the_field_of_view(anatomy, index):
    built = plan(anatomy, index).anatomy
    for structure in built.structures:
        assert np.all(structure.shape.lo >= built.fov_lo - 1e-9), structure.info.name
        assert np.all(structure.shape.hi <= built.fov_hi + 1e-9), structure.info.name


def fine_section(scene, label, axis, position, lo, hi, step):
    """Mask of ``label`` on a fine 2D grid of the plane ``axis = position``, plus the grid."""
    u, v = plane_axes(axis)
    us = np.arange(lo[u] - 2 * step, hi[u] + 2 * step, step)
    vs = np.arange(lo[v] - 2 * step, hi[v] + 2 * step, step)
    uu, vv = np.meshgrid(us, vs, indexing="ij")
    points = np.empty((uu.size, 3))
    points[:, axis], points[:, u], points[:, v] = position, uu.ravel(), vv.ravel()
    return (scene.labels_of(scene.locate(points)) == label).reshape(uu.shape)


SHELL_CASES = [
    pytest.param(index, name, marks=[pytest.mark.slow] if name == "femoral_cartilage" else [])
    for index in (0, 1, 2)
    for name in ("femoral_cartilage", "tibial_cartilage", "patellar_cartilage")
]


NEIGHBOURS = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]


def is_tip(pixel, pixels) -> bool:
    """A skeleton pixel ending a branch: one neighbour, or two that touch each other."""
    near = [(pixel[0] + dr, pixel[1] + dc) for dr, dc in NEIGHBOURS if (pixel[0] + dr, pixel[1] + dc) in pixels]
    return len(near) <= 1 or (len(near) == 2 and max(abs(near[0][0] - near[1][0]), abs(near[0][1] - near[1][1])) == 1)


def pruned(skeleton: np.ndarray, length: int) -> np.ndarray:
    """The skeleton with every branch tip peeled ``length`` times (standard spur pruning).

    Spurs of up to ``length`` pixels vanish and the medial arc loses ``length``
    pixels at each end, which does not bias a mean of a value that is constant
    along the arc.
    """
    pixels = set(zip(*(a.tolist() for a in np.nonzero(skeleton)), strict=True))
    tips = {p for p in pixels if is_tip(p, pixels)}
    for _ in range(length):
        pixels -= tips
        near = {(p[0] + dr, p[1] + dc) for p in tips for dr, dc in NEIGHBOURS} & pixels
        tips = {p for p in near if is_tip(p, pixels)}
    out = np.zeros_like(skeleton)
    if pixels:
        out[tuple(np.array(sorted(pixels)).T)] = True
    return out


def medial_axis_thickness(mask: np.ndarray, step: float) -> tuple[float, int]:
    """Mean 2 x distance on skimage's medial axis of a section, and its point count.

    Branches up to the largest inscribed radius are pruned first: on a fine
    raster the pixelated round caps sprout such spurs (from the arc's end to
    the boundary) erratically with the pixel size, up to -2 % at one pixel
    size. The pruning would also hide short real branches, so this checks the
    thickness along the arc, not the shape of its ends.
    """
    skeleton, distance = medial_axis(mask, return_distance=True)
    skeleton = pruned(skeleton, int(np.ceil(distance[skeleton].max())) + 2)
    return float(2 * step * distance[skeleton].mean()), int(skeleton.sum())


@pytest.mark.parametrize(("index", "name"), SHELL_CASES)
def test_knee_thickness_matches_medial_axis_edt_on_a_fine_raster(index, name):
    """DESIGN §8 on a 0.03 / 0.02 / 0.015 mm raster of each section.

    Each section's value is the median over the three pixel sizes (their
    spread is < 0.5 %), after pruning the caps' pixel-scale spurs.
    """
    built = plan("knee", index).anatomy
    label = next(s.info.id for s in built.structures if s.info.name == name)
    shell = built.shells[name]
    fractions = (0.5,) if name == "femoral_cartilage" else (0.2, 0.7)
    positions, values, weights = [], [], []
    for tube in shell.tubes:
        for fraction in fractions:
            s = tube.s0 + fraction * (tube.s1 - tube.s0)
            estimates = [
                medial_axis_thickness(fine_section(built.scene, label, built.axis, s, tube.lo, tube.hi, step), step)
                for step in (0.03, 0.02, 0.015)
            ]
            value = float(np.median([mean for mean, _ in estimates]))
            assert value == pytest.approx(tube.thickness(s), rel=0.01), s
            positions.append(s)
            values.append(value)
            weights.append(estimates[-1][1])
    truth = shell.thickness_truth(np.array(positions))
    assert np.average(values, weights=weights) == pytest.approx(truth, rel=0.01)


def test_knee_thickness_truth_is_within_the_requested_range_and_varies():
    built = plan("knee", 0).anatomy
    grid = plan("knee", 0).grid
    truth = built.truth(grid.coords(built.axis))
    for name, shell in built.shells.items():
        assert 1.5 <= truth[("cartilage_thickness", name)] <= 3.5
        ends = [t.thickness(t.s0) for t in shell.tubes] + [t.thickness(t.s1) for t in shell.tubes]
        assert min(ends) >= 1.5 and max(ends) <= 3.5
    femoral = built.shells["femoral_cartilage"].tubes[0]
    assert femoral.thickness(femoral.s0) != pytest.approx(femoral.thickness(femoral.s1), abs=1e-3)


def min_area_rectangle_height(mask: np.ndarray, step: float) -> float:
    """Side of OpenCV's minimum-area rectangle around the mask's pixel squares closest to +v."""
    rows, cols = np.nonzero(mask)
    corners = np.concatenate([np.stack([rows + dr, cols + dc], 1) for dr in (-0.5, 0.5) for dc in (-0.5, 0.5)])
    hull = cv2.convexHull((corners[:, ::-1] * step).astype(np.float32))  # (x = v, y = u)
    box = cv2.boxPoints(cv2.minAreaRect(hull))
    sides = [box[1] - box[0], box[2] - box[1]]
    lengths = [float(np.hypot(*side)) for side in sides]
    cranial = [abs(side[0]) / length for side, length in zip(sides, lengths, strict=True)]
    return lengths[int(np.argmax(cranial))]


@pytest.mark.parametrize("index", [0, 1])
def test_disc_height_matches_min_area_rectangles_of_fine_sagittal_sections(index):
    built = plan("spine", index).anatomy
    truth = built.truth([])
    for structure in built.structures:
        name = structure.info.name
        if not name.startswith("disc"):
            continue
        lo, hi = structure.shape.lo, structure.shape.hi
        heights = []
        for x in np.linspace(lo[0], hi[0], 7)[2:5]:
            mask = fine_section(built.scene, structure.info.id, 0, x, lo, hi, 0.04)
            heights.append(min_area_rectangle_height(mask, 0.04))
        assert 6.0 <= truth[("disc_height", name)] <= 13.0
        assert max(heights) == pytest.approx(truth[("disc_height", name)], rel=0.01), name


@pytest.mark.parametrize("quantity", ["t2", "t1rho"])
def test_knee_mean_relaxation_matches_quasi_monte_carlo_mean_of_the_map(quantity):
    blue = plan("knee", 1)
    built = blue.anatomy
    truth = built.truth(blue.grid.coords(built.axis))
    scene = built.scene
    totals = {}
    for seed, structure in enumerate(built.structures):
        name = structure.info.name
        if name not in built.shells:
            continue
        points = sobol_points(structure.shape.lo, structure.shape.hi, 17, 100 + seed)
        located = scene.locate(points)
        inside = scene.labels_of(located) == structure.info.id
        values = scene.properties(located[inside], 3.0, lambda members, p=points[inside]: p[members])[quantity]
        assert values.std() > 1.0, "the map must vary inside the compartment"
        assert values.mean() == pytest.approx(truth[(quantity, name)], rel=0.01), name
        totals[name] = (values.sum() / inside.sum(), structure.volume_mm3)
    overall = sum(m * v for m, v in totals.values()) / sum(v for _, v in totals.values())
    assert overall == pytest.approx(truth[(quantity, "overall")], rel=0.01)

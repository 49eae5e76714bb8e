"""The fast surface metrics against an independent brute-force reference.

The reference shares no code with mskbench.metrics: boundary voxels come
from explicit face-neighbour checks on a zero-padded copy, distances from all
boundary-point pairs in physical coordinates (voxel index × spacing), and the
metrics from their textbook formulas.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.spatial.distance import cdist

from mskbench.metrics.cases import HIT
from mskbench.metrics.distances import boundary, boundary_distances
from mskbench.metrics.surface import SurfaceMetrics


def brute_boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground voxels with a face neighbour that is background or outside the image."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    all_neighbours_set = np.ones(mask.shape, dtype=bool)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            shifted = list(inner)
            shifted[axis] = slice(1 + step, padded.shape[axis] - 1 + step)
            all_neighbours_set &= padded[tuple(shifted)]
    return mask & ~all_neighbours_set


def brute_metrics(reference, prediction, spacing, tolerance):
    points_ref = np.argwhere(brute_boundary(reference)) * np.asarray(spacing, dtype=float)
    points_pred = np.argwhere(brute_boundary(prediction)) * np.asarray(spacing, dtype=float)
    pairwise = cdist(points_ref, points_pred)
    forward, backward = pairwise.min(axis=1), pairwise.min(axis=0)
    pooled = np.concatenate([forward, backward])
    return {
        "hd": max(forward.max(), backward.max()),
        "hd95": max(np.percentile(forward, 95), np.percentile(backward, 95)),
        "assd": pooled.mean(),
        "masd": (forward.mean() + backward.mean()) / 2,
        "nsd": np.mean(pooled <= tolerance + 1e-9),
    }


def mask_pairs(ndim: int, max_side: int):
    shape = st.tuples(*[st.integers(1, max_side)] * ndim)
    return shape.flatmap(
        lambda s: st.tuples(arrays(bool, s), arrays(bool, s)).filter(lambda pair: pair[0].any() and pair[1].any())
    )


spacings2 = st.tuples(*[st.floats(0.1, 3.0)] * 2)
spacings3 = st.tuples(*[st.floats(0.1, 4.0)] * 3)
tolerances = st.floats(0.0, 5.0)


def assert_agrees(reference, prediction, spacing, tolerance):
    fast = SurfaceMetrics(nsd_tolerance_mm=tolerance).compute(reference, prediction, spacing, HIT)
    slow = brute_metrics(reference, prediction, spacing, tolerance)
    for name, expected in slow.items():
        assert abs(fast[name].value - expected) <= 1e-6, (name, fast[name].value, expected)
        assert not fast[name].substituted


@settings(max_examples=150, deadline=None)
@given(mask_pairs(2, 14), spacings2, tolerances)
def test_2d_random_masks_match_brute_force(pair, spacing, tolerance):
    assert_agrees(pair[0], pair[1], spacing, tolerance)


@settings(max_examples=80, deadline=None)
@given(mask_pairs(3, 7), spacings3, tolerances)
def test_3d_random_masks_match_brute_force(pair, spacing, tolerance):
    assert_agrees(pair[0], pair[1], spacing, tolerance)


@settings(max_examples=100, deadline=None)
@given(st.one_of(arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))),
                 arrays(bool, st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)))))
def test_boundary_matches_explicit_neighbour_check(mask):
    np.testing.assert_array_equal(boundary(mask), brute_boundary(mask))


def test_sparse_objects_far_apart_in_a_large_unit():
    """Objects in opposite corners: the union box spans the unit; distances stay exact."""
    reference = np.zeros((60, 50), dtype=bool)
    prediction = np.zeros((60, 50), dtype=bool)
    reference[0:3, 0:2] = True
    reference[30, 20] = True
    prediction[57:60, 45:50] = True
    assert_agrees(reference, prediction, (0.7, 1.3), 1.0)
    d = boundary_distances(reference, prediction, (0.7, 1.3))
    assert d.reference_to_prediction.size == 6 + 1
    assert d.prediction_to_reference.size == 3 * 5 - 3  # a 3x5 block has 3 interior voxels

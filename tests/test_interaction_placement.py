"""Click placement rules on hand-made error maps (ties, several components, empty error, borders)."""

from __future__ import annotations

import numpy as np
import pytest

from mskbench.interaction.placement import (
    RULES as RULES_BY_NAME,
    Click,
    component_centroid,
    largest_component,
    max_edt_largest_error,
    place_in_box,
    random_error,
)

RULES = (max_edt_largest_error, component_centroid, random_error)


def masks(shape, reference_pixels=(), prediction_pixels=()):
    reference, prediction = np.zeros(shape, bool), np.zeros(shape, bool)
    for p in reference_pixels:
        reference[p] = True
    for p in prediction_pixels:
        prediction[p] = True
    return reference, prediction


@pytest.mark.parametrize("rule", RULES)
def test_no_error_no_click(rule):
    reference = np.zeros((5, 7), bool)
    reference[1:3, 2:5] = True
    assert rule(reference, reference.copy(), np.random.default_rng(0)) == []


def test_edt_centre_of_the_largest_false_negative_component():
    # a 3x3 miss (centre distance 2) and a larger-looking but smaller 1x4 false positive
    reference = np.zeros((8, 11), bool)
    reference[1:4, 1:4] = True
    prediction = np.zeros_like(reference)
    prediction[6, 5:9] = True
    assert max_edt_largest_error(reference, prediction, np.random.default_rng(0)) == [Click((2, 2), True)]


def test_edt_negative_click_when_the_largest_error_is_a_false_positive():
    reference = np.zeros((9, 9), bool)
    reference[0, 0] = True
    prediction = np.zeros_like(reference)
    prediction[2:7, 3:8] = True  # 5x5 false positive, centre (4, 5)
    assert max_edt_largest_error(reference, prediction, np.random.default_rng(0)) == [Click((4, 5), False)]


def test_edt_counts_the_image_border_as_outside():
    # a 3x3 error in the corner: with the border as outside (upstream pads) the centre (1, 1) has
    # distance 2 and the corner 1; an EDT without padding would put the corner at distance 3
    reference = np.zeros((6, 6), bool)
    reference[:3, :3] = True
    assert max_edt_largest_error(reference, np.zeros_like(reference), np.random.default_rng(0)) == [Click((1, 1), True)]


def test_edt_ties_are_broken_uniformly_by_the_generator():
    reference = np.zeros((6, 8), bool)
    reference[2:4, 2:6] = True  # 2x4: every pixel has distance 1
    chosen = {max_edt_largest_error(reference, np.zeros_like(reference), np.random.default_rng(s))[0].position
              for s in range(200)}
    assert chosen == {(r, c) for r in (2, 3) for c in range(2, 6)}


def test_components_use_full_connectivity_and_first_wins_ties():
    # a 3-pixel diagonal is one 8-connected component (three 4-connected ones) and beats a 2-pixel bar
    reference, prediction = masks((7, 7), [(0, 0), (1, 1), (2, 2), (5, 3), (5, 4)])
    component, corner = largest_component(reference)
    assert component.sum() == 3 and component[1 - corner[0], 1 - corner[1]]
    # equal sizes: the first component in C scan order
    tie, _ = masks((6, 6), [(4, 0), (4, 1), (1, 4), (1, 5)])
    component, corner = largest_component(tie)
    assert tuple(corner) == (1, 4) and component.shape == (1, 2)


def test_edt_in_three_dimensions():
    reference = np.zeros((5, 6, 7), bool)
    reference[1:4, 1:4, 2:5] = True  # 3x3x3 cube, centre (2, 2, 3)
    prediction = np.zeros_like(reference)
    prediction[0, 5, 6] = True
    assert max_edt_largest_error(reference, prediction, np.random.default_rng(0)) == [Click((2, 2, 3), True)]


def test_centroid_snapped_to_the_component():
    # a C shape: rows 0 and 6 (cols 0..4) and col 0 (rows 1..5); centroid (3, 1.33) -> (3, 1),
    # outside the component; the nearest component pixel is (3, 0)
    pixels = [(0, c) for c in range(5)] + [(6, c) for c in range(5)] + [(r, 0) for r in range(1, 6)]
    reference, prediction = masks((8, 8), pixels)
    assert component_centroid(reference, prediction, np.random.default_rng(0)) == [Click((3, 0), True)]


def test_centroid_equal_components_the_last_wins():
    # RadioActive's get_n_largest_CCs takes np.argsort(sizes)[-1]: of two 2-pixel components, the later one.
    # Its centroid (5, 5.5) rounds half to even to (5, 6); the first component's would be (1, 2).
    reference, prediction = masks((8, 8), [(1, 1), (1, 2), (5, 5), (5, 6)])
    assert component_centroid(reference, prediction, np.random.default_rng(0)) == [Click((5, 6), True)]


def test_centroid_rounds_half_to_even():
    # a bar at row 2, columns 1..4: centroid (2, 2.5) -> (2, 2) as NumPy's round (half up would give (2, 3))
    reference, prediction = masks((5, 6), [(2, c) for c in range(1, 5)])
    assert component_centroid(reference, prediction, np.random.default_rng(0)) == [Click((2, 2), True)]


def _two_slice_component():
    """One 26-connected FN component over slices 0 and 1, and a lone FN voxel on slice 2.

    Slice 0: a 3x3 block (rows 1..3, cols 1..3), centroid (2, 2). Slice 1: a bar (row 2, cols 2..5) and a
    voxel (0, 0) touching the block only diagonally across slices, so the cross-section has two 2D parts;
    the bar's centroid (2, 3.5) rounds to (2, 4) (the whole cross-section's would be (1.6, 2.8) -> (2, 3)).
    """
    pixels = [(0, r, c) for r in (1, 2, 3) for c in (1, 2, 3)] + [(1, 2, c) for c in (2, 3, 4, 5)]
    return masks((3, 7, 7), pixels + [(1, 0, 0), (2, 6, 6)])


def test_centroid_in_3d_clicks_every_slice_of_the_component():
    reference, prediction = _two_slice_component()
    assert component_centroid(reference, prediction, np.random.default_rng(0), axis=0) == [
        Click((0, 2, 2), True), Click((1, 2, 4), True)]


def test_centroid_in_3d_follows_the_slice_axis():
    reference, prediction = (np.moveaxis(m, 0, 2) for m in _two_slice_component())
    assert component_centroid(reference, prediction, np.random.default_rng(0), axis=2) == [
        Click((2, 2, 0), True), Click((2, 4, 1), True)]


def test_centroid_negative_clicks_use_the_same_rule_on_false_positives():
    reference, prediction = _two_slice_component()
    assert component_centroid(prediction, reference, np.random.default_rng(0), axis=0) == [
        Click((0, 2, 2), False), Click((1, 2, 4), False)]


def test_centroid_sign_follows_the_only_error_type():
    reference, prediction = masks((6, 6), [], [(2, 2), (2, 3), (3, 2)])
    [click] = component_centroid(reference, prediction, np.random.default_rng(0))
    assert not click.positive and prediction[click.position]


def test_centroid_picks_false_negatives_in_proportion():
    # 6 FN pixels, 2 FP pixels: positive with probability 6/8
    reference, prediction = masks((10, 10), [(1, c) for c in range(6)], [(8, 1), (8, 2)])
    signs = [component_centroid(reference, prediction, np.random.default_rng(s))[0].positive for s in range(2000)]
    assert abs(np.mean(signs) - 0.75) < 0.04


def test_random_error_gives_one_positive_and_one_negative_click():
    reference, prediction = masks((6, 9), [(1, 1), (1, 2)], [(4, 7)])
    clicks = random_error(reference, prediction, np.random.default_rng(3))
    assert clicks[0].positive and clicks[0].position in {(1, 1), (1, 2)}
    assert clicks[1] == Click((4, 7), False)
    only_fn = random_error(reference, np.zeros_like(reference), np.random.default_rng(3))
    assert len(only_fn) == 1 and only_fn[0].positive


@pytest.mark.parametrize("rule", ["max_edt_largest_error", "component_centroid", "random_error"])
def test_placing_in_the_box_of_the_masks_gives_the_whole_array_clicks(rule):
    # masks away from every border, so a crop that dropped or shifted indices would move the clicks
    rng = np.random.default_rng(7)
    for trial in range(20):
        reference, prediction = np.zeros((2, 9, 12, 14), bool)
        reference[2:7, 3:9, 4:11] = rng.random((5, 6, 7)) < 0.6
        prediction[3:8, 2:8, 5:12] = rng.random((5, 6, 7)) < 0.6
        whole = RULES_BY_NAME[rule](reference, prediction, np.random.default_rng(trial), 1)
        assert place_in_box(rule, reference, prediction, np.random.default_rng(trial), 1) == whole


def test_cropping_keeps_radioactive_rounding_in_whole_image_coordinates():
    """A two-pixel miss at columns 3-4: centroid column 3.5 rounds half to even to 4 in the image; on a crop
    starting at column 3 it would be 0.5 -> 0, i.e. column 3, unless rounding uses the crop's origin."""
    reference, prediction = masks((6, 9), reference_pixels=[(2, 3), (2, 4)])
    whole = component_centroid(reference, prediction, np.random.default_rng(0))
    assert whole == [Click((2, 4), True)]
    assert place_in_box("component_centroid", reference, prediction, np.random.default_rng(0)) == whole
    volume = np.zeros((3, 6, 9), bool)
    volume[1] = reference
    clicks = place_in_box("component_centroid", volume, np.zeros_like(volume), np.random.default_rng(0), 0)
    assert clicks == [Click((1, 2, 4), True)]

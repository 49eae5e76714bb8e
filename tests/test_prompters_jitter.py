"""Jitter semantics: bounds, distribution, clipping, resolution scaling, bad shifts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mskbench.errors import PluginError
from mskbench.prompting.jitter import jitter_box, shift_in_pixels
from mskbench.prompting.oracle import JitterBoxPrompter
from mskbench.types import SliceRef

WHERE = SliceRef("phantom", "s1", 0, (1.0, 1.0))
BOX = (100.0, 80.0, 160.0, 150.0)


def _draws(mode: str, shift: float, n: int = 4000, box=BOX) -> np.ndarray:
    """Signed outward displacement of each side for n jittered boxes: (n, 4)."""
    rng = np.random.default_rng(7)
    boxes = np.array([jitter_box(box, mode, shift, rng) for _ in range(n)])
    x_min, y_min, x_max, y_max = box
    return np.stack(
        [x_min - boxes[:, 0], y_min - boxes[:, 1], boxes[:, 2] - x_max, boxes[:, 3] - y_max], axis=1
    )


def test_outward_moves_each_side_out_by_uniform_0_s():
    out = _draws("outward", 12.0)
    assert out.min() >= 0.0 and out.max() <= 12.0
    for side in range(4):
        assert stats.kstest(out[:, side], stats.uniform(0, 12).cdf).pvalue > 1e-3
    # the four sides are drawn independently
    corr = np.corrcoef(out.T)[np.triu_indices(4, 1)]
    assert np.all(np.abs(corr) < 0.08)


def test_symmetric_moves_each_side_by_uniform_minus_s_s():
    out = _draws("symmetric", 12.0)
    assert out.min() >= -12.0 and out.max() <= 12.0
    assert out.min() < -11.0 and out.max() > 11.0  # both directions are used
    for side in range(4):
        assert stats.kstest(out[:, side], stats.uniform(-12, 24).cdf).pvalue > 1e-3


def test_symmetric_swaps_crossed_edges_instead_of_inverting_the_box():
    small = (50.0, 50.0, 52.0, 51.0)
    rng = np.random.default_rng(0)
    boxes = np.array([jitter_box(small, "symmetric", 10.0, rng) for _ in range(500)])
    # replay the same draws: one call draws x_min, y_min, x_max, y_max in that order
    d = np.random.default_rng(0).uniform(-10.0, 10.0, size=(500, 4))
    left, right = small[0] + d[:, 0], small[2] + d[:, 2]
    assert (left > right).sum() > 50  # the edges really crossed in many draws
    np.testing.assert_allclose(boxes[:, 0], np.minimum(left, right))
    np.testing.assert_allclose(boxes[:, 2], np.maximum(left, right))
    assert np.all(boxes[:, 1] <= boxes[:, 3])


def test_fixed_moves_each_side_out_by_exactly_s_and_draws_nothing():
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    assert jitter_box(BOX, "fixed", 5.5, rng) == (94.5, 74.5, 165.5, 155.5)
    assert rng.bit_generator.state == state


def test_model_1024_scales_by_longest_side():
    assert shift_in_pixels(20.0, "model_1024", (256, 512)) == pytest.approx(10.0)
    assert shift_in_pixels(20.0, "original", (256, 512)) == 20.0
    reference = np.zeros((256, 512), dtype=np.int16)
    reference[100:121, 200:241] = 3
    prompter = JitterBoxPrompter(mode="fixed", max_shift=20.0, resolution="model_1024")
    (prompt,) = prompter.prompts(reference.astype(np.uint8), reference, [3], np.random.default_rng(0), WHERE)
    assert prompt.box == (190.0, 90.0, 250.0, 130.0)
    assert prompt.clipped is False


def test_boxes_are_clipped_to_the_image_and_flagged():
    reference = np.zeros((64, 80), dtype=np.int16)
    reference[2:10, 70:78] = 1
    prompter = JitterBoxPrompter(mode="fixed", max_shift=4.0)
    (prompt,) = prompter.prompts(reference.astype(np.uint8), reference, [1], np.random.default_rng(0), WHERE)
    assert prompt.box == (66.0, 0.0, 79.0, 13.0)
    assert prompt.clipped is True


def test_jitter_larger_than_the_image_gives_the_whole_image():
    reference = np.zeros((64, 80), dtype=np.int16)
    reference[20:30, 20:30] = 1
    prompter = JitterBoxPrompter(mode="outward", max_shift=1e6)
    rng = np.random.default_rng(1)
    for _ in range(20):
        (prompt,) = prompter.prompts(reference.astype(np.uint8), reference, [1], rng, WHERE)
        x_min, y_min, x_max, y_max = prompt.box
        assert 0 <= x_min <= 20 and 0 <= y_min <= 20 and 29 <= x_max <= 79 and 29 <= y_max <= 63
    fixed = JitterBoxPrompter(mode="fixed", max_shift=1e6)
    (prompt,) = fixed.prompts(reference.astype(np.uint8), reference, [1], rng, WHERE)
    assert prompt.box == (0.0, 0.0, 79.0, 63.0) and prompt.clipped


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_negative_nan_or_infinite_shift_is_a_plugin_error(bad):
    with pytest.raises(PluginError, match="max_shift"):
        JitterBoxPrompter(max_shift=bad)


def test_unknown_mode_or_resolution_is_a_plugin_error():
    with pytest.raises(PluginError, match="mode"):
        JitterBoxPrompter(mode="inward")
    with pytest.raises(PluginError, match="resolution"):
        JitterBoxPrompter(resolution="model_512")

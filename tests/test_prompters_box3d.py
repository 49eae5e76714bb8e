"""box3d: extent, key slice (largest / middle / CVPR 2025 medians), jitter (incl. CVPR 2025's), slicing axis;
the per-slice view of a slice model."""

from __future__ import annotations

import numpy as np
import pytest

from mskbench.errors import PluginError
from mskbench.prompting.box3d import Box3dPrompter, per_slice_boxes


def reference_along(axis: int) -> np.ndarray:
    """Label 2 on slices 1, 2, 4 along ``axis`` (areas 2, 12, 3; slice 3 empty) of a volume with 6 slices of 10x13."""
    planes = {
        1: [(3, 4), (3, 5)],                                   # area 2
        2: [(r, c) for r in range(2, 5) for c in range(3, 7)],  # area 12, rows 2..4, cols 3..6
        4: [(5, 8), (6, 8), (7, 8)],                           # area 3 (slice 3 is empty)
    }
    shape = [10, 13]
    shape.insert(axis, 6)
    volume = np.zeros(shape, np.int32)
    for k, pixels in planes.items():
        for r, c in pixels:
            index = [r, c]
            index.insert(axis, k)
            volume[tuple(index)] = 2
    return volume


@pytest.mark.parametrize("axis", [0, 2])
def test_largest_key_slice_and_extent(axis):
    reference = reference_along(axis)
    [prompt] = Box3dPrompter().volume_prompts(np.zeros_like(reference, np.uint8), reference, [1, 2], axis,
                                             np.random.default_rng(0))
    assert (prompt.kind, prompt.label, prompt.slice_index, prompt.extent) == ("box3d", 2, 2, (1, 4))
    assert prompt.box == (3.0, 2.0, 6.0, 4.0) and not prompt.clipped


def test_middle_key_slice_falls_back_to_the_nearest_slice_with_the_label():
    reference = reference_along(0)
    [prompt] = Box3dPrompter(key_slice="middle").volume_prompts(
        np.zeros_like(reference, np.uint8), reference, [2], 0, np.random.default_rng(0)
    )
    # extent 1..4, middle (1 + 4) // 2 = 2 holds the label
    assert prompt.slice_index == 2
    reference[:, :, :] = 0
    reference[1, 3, 4] = reference[4, 6, 8] = 2  # middle slice 2 is empty; slice 1 is nearer than slice 4
    [prompt] = Box3dPrompter(key_slice="middle").volume_prompts(
        np.zeros_like(reference, np.uint8), reference, [2], 0, np.random.default_rng(0)
    )
    assert prompt.slice_index == 1 and prompt.box == (4.0, 3.0, 4.0, 3.0)


def test_fixed_jitter_is_clipped_and_flagged():
    reference = reference_along(0)
    [prompt] = Box3dPrompter(mode="fixed", max_shift=3).volume_prompts(
        np.zeros_like(reference, np.uint8), reference, [2], 0, np.random.default_rng(0)
    )
    assert prompt.box == (0.0, 0.0, 9.0, 7.0) and prompt.clipped


def key_slice_of(rule: str, axis: int) -> int:
    """Label 1 with areas 5, 1, 1, 1, 1, 2 on slices 0..5 of 6 slices of 8x9 along ``axis``."""
    shape = [8, 9]
    shape.insert(axis, 6)
    reference = np.zeros(shape, np.int32)
    for k, area in enumerate([5, 1, 1, 1, 1, 2]):
        plane = np.zeros((8, 9), np.int32)
        plane.flat[:area] = 1
        np.moveaxis(reference, axis, 0)[k] = plane
    [prompt] = Box3dPrompter(key_slice=rule).volume_prompts(
        np.zeros_like(reference, np.uint8), reference, [1], axis, np.random.default_rng(0)
    )
    return prompt.slice_index


@pytest.mark.parametrize("axis", [0, 1])
def test_the_four_key_slice_rules_on_a_hand_made_volume(axis):
    """11 voxels on slices [0]*5 + [1, 2, 3, 4] + [5]*2: the voxel at position 11 // 2 = 5 in slice order lies on
    slice 1 (median_voxel); the 6 slices holding the label give position 6 // 2 = 3 (median_slice); the extent's
    middle is (0 + 5) // 2 = 2; the largest area is slice 0."""
    got = {rule: key_slice_of(rule, axis) for rule in ("largest", "median_voxel", "middle", "median_slice")}
    assert got == {"largest": 0, "median_voxel": 1, "middle": 2, "median_slice": 3}
    # get_boxes.py's z_mid: z_indices[len(z_indices) // 2] of np.where's z, without / with np.unique
    z = np.repeat(np.arange(6), [5, 1, 1, 1, 1, 2])
    assert (z[len(z) // 2], np.unique(z)[len(np.unique(z)) // 2]) == (got["median_voxel"], got["median_slice"])


def test_cvpr25_jitter_moves_every_side_out_by_one_draw_scaled_by_size_over_256():
    """Slices of H x W = 256 x 640: a draw b moves x sides by int(2.5 b) and y sides by b; clipped at the border."""
    reference = np.zeros((3, 256, 640), np.int32)
    reference[:, 100:120, 3:300] = 1
    seen = set()
    for seed in range(40):
        [prompt] = Box3dPrompter(mode="cvpr25", max_shift=5).volume_prompts(
            np.zeros_like(reference, np.uint8), reference, [1], 0, np.random.default_rng(seed)
        )
        b = int(np.random.default_rng(seed).integers(0, 6))
        seen.add(b)
        assert prompt.box == (max(3 - int(2.5 * b), 0), 100 - b, 299 + int(2.5 * b), 119 + b)
        assert prompt.clipped == (int(2.5 * b) > 3)
    assert seen == set(range(6))


def test_bad_params_are_one_line():
    with pytest.raises(PluginError, match="key_slice: 'first' is not one of largest, middle, median_voxel, median_slice"):
        Box3dPrompter(key_slice="first")
    with pytest.raises(PluginError, match="max_shift: 2.5 must be a whole number with mode = \"cvpr25\""):
        Box3dPrompter(mode="cvpr25", max_shift=2.5)
    with pytest.raises(PluginError, match="leave resolution = \"original\""):
        Box3dPrompter(mode="cvpr25", max_shift=5, resolution="model_1024")


def test_per_slice_view_repeats_the_key_box_over_the_extent():
    reference = reference_along(0)
    prompts = Box3dPrompter().volume_prompts(np.zeros_like(reference, np.uint8), reference, [2], 0,
                                             np.random.default_rng(0))
    view = per_slice_boxes(prompts)
    assert sorted(view) == [1, 2, 3, 4]
    assert all(p.kind == "box" and p.box == (3.0, 2.0, 6.0, 4.0) and p.label == 2 for ps in view.values() for p in ps)


def test_clicks_builds_its_box3d_with_the_key_slice_and_jitter_asked_for():
    from mskbench.interaction.clicks import ClicksPrompter
    from mskbench_builtins import prompters

    registered = {}
    prompters.mskbench_register_prompters(lambda name, factory, **kw: registered.update({name: (factory, kw)}))
    factory, info = registered["clicks"]
    assert {"key_slice", "mode", "max_shift"} <= set(info["params"])
    clicks = factory(initial="box3d", key_slice="median_voxel", mode="cvpr25", max_shift=5.0)
    box3d = clicks.initial_prompter
    assert (box3d.key_slice, box3d.mode, box3d.max_shift) == ("median_voxel", "cvpr25", 5.0)
    with pytest.raises(PluginError, match="they shape the box3d initial prompt; with initial = 'box' leave them"):
        ClicksPrompter(initial="box", max_shift=3)

"""Oracle prompters and `none`: targets, instance mode, points, registration."""

from __future__ import annotations

import numpy as np
import pytest

from mskbench.errors import PluginError
from mskbench.params import validate_params
from mskbench.prompting.boxes import box_iou, clip_box, tight_box
from mskbench.prompting.points import negative_points, positive_points, snapped_centroid
from mskbench.prompting.targets import find_targets
from mskbench.types import SliceRef
from mskbench_builtins.prompters import mskbench_register_prompters

WHERE = SliceRef("ds", "s1", 3, (0.5, 0.5))


@pytest.fixture(scope="module")
def registry():
    entries = {}

    def register(name, factory, *, description, params=None, version=None, requires=()):
        entries[name] = (factory, params or {})

    mskbench_register_prompters(register)
    return entries


def make(registry, name, **given):
    factory, schema = registry[name]
    return factory(**validate_params(schema, given, f"prompters.{name}.params"))


def two_blobs() -> np.ndarray:
    """Label 2: a 10x6 block and a 3x3 block; label 5: a ring whose centroid is a hole."""
    ref = np.zeros((48, 64), dtype=np.int16)
    ref[5:11, 4:14] = 2  # rows 5..10, cols 4..13
    ref[30:33, 50:53] = 2  # rows 30..32, cols 50..52
    yy, xx = np.mgrid[:48, :64]
    r = np.hypot(yy - 30, xx - 20)
    ref[(r >= 6) & (r <= 9)] = 5
    return ref


def test_registered_names_and_kinds(registry):
    assert set(registry) >= {"none", "gt_box", "jitter_box", "points", "box_point"}
    kinds = {name: make(registry, name).produces for name in ("none", "gt_box", "jitter_box", "points", "box_point")}
    assert kinds == {
        "none": {"none"},
        "gt_box": {"box"},
        "jitter_box": {"box"},
        "points": {"point"},
        "box_point": {"box+point"},
    }


def test_unknown_param_is_rejected_with_suggestion(registry):
    with pytest.raises(PluginError, match="did you mean 'max_shift'"):
        make(registry, "jitter_box", max_shif=3)
    with pytest.raises(PluginError, match="below the minimum"):
        make(registry, "jitter_box", max_shift=-2)


def test_tight_box_is_inclusive_x_is_column():
    mask = np.zeros((20, 30), bool)
    mask[4:9, 10:21] = True
    assert tight_box(mask) == (10.0, 4.0, 20.0, 8.0)
    assert tight_box(np.zeros((5, 5), bool)) is None


def test_box_iou_against_hand_computed_values():
    assert box_iou((0, 0, 9, 9), (0, 0, 9, 9)) == 1.0
    # 10x10 and 10x10 shifted by 5 columns: intersection 5x10 = 50, union 150
    assert box_iou((0, 0, 9, 9), (5, 0, 14, 9)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 9, 9), (10, 0, 19, 9)) == 0.0
    assert box_iou((3, 3, 3, 3), (3, 3, 3, 3)) == 1.0  # a one-pixel box has area 1


def test_clip_box_reports_change():
    assert clip_box((-3.0, 2.0, 40.0, 7.0), (10, 32)) == ((0.0, 2.0, 31.0, 7.0), True)
    assert clip_box((1.0, 2.0, 3.0, 4.0), (10, 32)) == ((1.0, 2.0, 3.0, 4.0), False)


def test_gt_box_per_label_and_absent_labels(registry):
    ref = two_blobs()
    prompts = make(registry, "gt_box").prompts(ref.astype(np.uint8), ref, [2, 7, 5], np.random.default_rng(0), WHERE)
    assert [(p.label, p.instance, p.kind) for p in prompts] == [(2, 0, "box"), (5, 0, "box")]
    assert prompts[0].box == (4.0, 5.0, 52.0, 32.0)  # spans both blobs
    assert prompts[1].box == (11.0, 21.0, 29.0, 39.0)
    assert all(p.prompter == "" and p.seed == 0 for p in prompts)


def test_instance_mode_splits_components_and_drops_small_ones(registry):
    ref = two_blobs()
    image = ref.astype(np.uint8)
    every = make(registry, "gt_box", instances=True).prompts(image, ref, [2], np.random.default_rng(0), WHERE)
    assert [(p.instance, p.box) for p in every] == [(1, (4.0, 5.0, 13.0, 10.0)), (2, (50.0, 30.0, 52.0, 32.0))]
    big = make(registry, "gt_box", instances=True, min_component_pixels=10)
    assert [(p.instance, p.box) for p in big.prompts(image, ref, [2], np.random.default_rng(0), WHERE)] == [
        (1, (4.0, 5.0, 13.0, 10.0))
    ]
    # per-label mode applies the floor to the whole label: 60 + 9 pixels
    floor = make(registry, "gt_box", min_component_pixels=70)
    assert floor.prompts(image, ref, [2], np.random.default_rng(0), WHERE) == []


def test_instance_mode_uses_eight_connectivity():
    ref = np.zeros((10, 10), dtype=np.int16)
    ref[2, 2] = ref[3, 3] = 1  # diagonal neighbours: one component
    ref[7, 7] = 1
    targets = find_targets(ref, [1], instances=True)
    assert [(t.instance, int(t.mask.sum())) for t in targets] == [(1, 2), (2, 1)]


def test_none_asks_for_every_requested_label(registry):
    ref = two_blobs()
    prompts = make(registry, "none").prompts(ref.astype(np.uint8), ref, [2, 7], np.random.default_rng(0), WHERE)
    assert [(p.kind, p.label, p.box, p.points) for p in prompts] == [("none", 2, None, ()), ("none", 7, None, ())]


def test_snapped_centroid_of_a_ring_lands_on_the_ring():
    ring = two_blobs() == 5
    x, y = snapped_centroid(ring)
    assert ring[int(y), int(x)]
    assert np.hypot(y - 30, x - 20) == pytest.approx(6.0, abs=0.5)  # nearest ring pixel to the centre
    block = np.zeros((20, 20), bool)
    block[4:9, 6:15] = True  # centre of mass (row 6, col 10)
    assert snapped_centroid(block) == (10.0, 6.0)


@pytest.mark.parametrize("strategy", ["centroid_snapped", "dt_max", "random_interior"])
def test_positive_points_are_distinct_and_inside(strategy):
    ref = two_blobs()
    for label in (2, 5):
        mask = ref == label
        points = positive_points(mask, 5, strategy, np.random.default_rng(11))
        assert len(set(points)) == 5
        assert all(mask[int(y), int(x)] for x, y in points)


def test_dt_max_picks_the_most_interior_pixel_and_spreads_further_points():
    mask = np.zeros((21, 41), bool)
    mask[1:20, 1:40] = True  # 19 x 39 rectangle: rows 1..19, cols 1..39
    first, second = positive_points(mask, 2, "dt_max", np.random.default_rng(0))
    assert first[1] == 10.0  # middle row; distance 10 from top/bottom
    assert 10.0 <= first[0] <= 30.0
    assert abs(second[0] - first[0]) >= 5  # not the neighbour of the first


def test_point_count_is_capped_by_mask_size():
    mask = np.zeros((5, 5), bool)
    mask[2, 2:4] = True
    assert len(positive_points(mask, 4, "random_interior", np.random.default_rng(0))) == 2
    assert len(positive_points(mask, 4, "dt_max", np.random.default_rng(0))) == 2


def test_negative_points_lie_outside_near_the_target():
    ref = two_blobs()
    (target,) = find_targets(ref, [2], instances=True, min_component_pixels=10)
    points = negative_points(target.mask, target.box, 30, 3, np.random.default_rng(2))
    assert len(set(points)) == 30
    for x, y in points:
        assert not target.mask[int(y), int(x)]
        assert 1 <= x <= 16 and 2 <= y <= 13  # box (4,5,13,10) grown by 3


def test_points_prompter_labels_positive_then_negative(registry):
    ref = two_blobs()
    prompter = make(registry, "points", positive=2, negative=3, strategy="random_interior")
    (prompt,) = prompter.prompts(ref.astype(np.uint8), ref, [5], np.random.default_rng(4), WHERE)
    assert prompt.kind == "point" and prompt.point_labels == (1, 1, 0, 0, 0)
    inside = [(ref == 5)[int(y), int(x)] for x, y in prompt.points]
    assert inside == [True, True, False, False, False]


def test_box_point_gives_tight_box_and_one_interior_point(registry):
    ref = two_blobs()
    prompts = make(registry, "box_point", instances=True).prompts(
        ref.astype(np.uint8), ref, [2], np.random.default_rng(0), WHERE
    )
    assert [p.kind for p in prompts] == ["box+point", "box+point"]
    for p in prompts:
        (x, y), = p.points
        x_min, y_min, x_max, y_max = p.box
        assert p.point_labels == (1,) and ref[int(y), int(x)] == 2
        assert x_min <= x <= x_max and y_min <= y <= y_max

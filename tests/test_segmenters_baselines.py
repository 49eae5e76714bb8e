"""Weight-free baselines: box_fill, otsu_box, grabcut_box (DESIGN §6)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage.filters import threshold_otsu

from mskbench.errors import DataError, PluginError
from mskbench.params import validate_params
from mskbench.protocols import Segmenter
from mskbench.segmenters.baselines import BoxFill, GrabCutBox, OtsuBox, clip_box
from mskbench.types import Prompt

H, W = 120, 150


def box_prompt(box, kind="box", points=(), point_labels=()):
    return Prompt(kind=kind, label=1, prompter="test", seed=0, box=box, points=points, point_labels=point_labels)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def disc_image(contrast=120, noise=12.0, seed=0, centre=(60, 75), radius=25, dark=False):
    """A bright (or dark) disc on a flat background with Gaussian noise; returns (image, disc mask)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    disc = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2
    sign = -1 if dark else 1
    image = np.clip(120 + sign * contrast / 2 * np.where(disc, 1, -1) + rng.normal(0, noise, (H, W)), 0, 255)
    return image.astype(np.uint8), disc


def tight_box(mask: np.ndarray, margin: int = 5):
    ys, xs = np.nonzero(mask)
    return (xs.min() - margin, ys.min() - margin, xs.max() + margin, ys.max() + margin)


@pytest.fixture(params=[BoxFill, OtsuBox, GrabCutBox], ids=["box_fill", "otsu_box", "grabcut_box"])
def model(request):
    return request.param()


# --- shared behaviour ---------------------------------------------------------------------------


def test_baselines_satisfy_the_segmenter_protocol(model):
    assert isinstance(model, Segmenter)
    assert model.supported_prompts == frozenset({"box", "box+point"})
    assert model.describe()["checkpoint"] is None


def test_decode_returns_one_bool_mask_per_prompt(model):
    image, disc = disc_image()
    embedding = model.encode([image])[0]
    masks = model.decode(embedding, [box_prompt(tight_box(disc)), box_prompt((0, 0, 20, 10)), box_prompt((5, 5, 40, 40))])
    assert masks.shape == (3, H, W) and masks.dtype == bool


def test_boxes_outside_or_degenerate_give_empty_masks(model):
    image, _ = disc_image()
    embedding = model.encode([image])[0]
    prompts = [box_prompt((-30, -30, -1, -1)), box_prompt((W, 10, W + 20, 30)), box_prompt((50, 60, 40, 70))]
    assert not model.decode(embedding, prompts).any()


def test_masks_never_leave_the_clipped_box(model):
    image, disc = disc_image()
    box = (-20, 20, 90, H + 40)  # sticks out left and below
    mask = model.decode(model.encode([image])[0], [box_prompt(box)])[0]
    assert not mask[:20].any() and not mask[:, 91:].any()


def test_unsupported_prompts_and_bad_input_are_clear_errors(model):
    image, _ = disc_image()
    embedding = model.encode([image])[0]
    with pytest.raises(PluginError, match="takes box or box\\+point prompts, got 'point'"):
        model.decode(embedding, [Prompt(kind="point", label=1, prompter="p", seed=0, points=((3, 3),), point_labels=(1,))])
    with pytest.raises(PluginError, match="has no box"):
        model.decode(embedding, [Prompt(kind="box", label=1, prompter="p", seed=0)])
    with pytest.raises(DataError, match="expected a uint8 H×W slice"):
        model.encode([image.astype(np.float32)])
    with pytest.raises(PluginError, match="needs no checkpoint"):
        type(model)(checkpoint="sam_vit_b_01ec64.pth")


def test_clip_box_rounds_and_clips():
    assert clip_box((-3.4, 2.6, 10.5, 200.0), (100, 50)) == (0, 3, 10, 99)
    assert clip_box((10, 10, 9, 20), (100, 100)) is None
    assert clip_box((120, 10, 130, 20), (100, 100)) is None


# --- box_fill -----------------------------------------------------------------------------------


def test_box_fill_is_exactly_the_inclusive_box():
    image, _ = disc_image()
    mask = BoxFill().decode({"image": image}, [box_prompt((10, 20, 30, 25))])[0]
    expected = np.zeros((H, W), bool)
    expected[20:26, 10:31] = True
    assert np.array_equal(mask, expected)
    assert mask.sum() == 21 * 6
    single = BoxFill().decode({"image": image}, [box_prompt((7, 8, 7, 8))])[0]
    assert single.sum() == 1 and single[8, 7]


# --- otsu_box -----------------------------------------------------------------------------------


def test_otsu_recovers_a_bright_disc():
    image, disc = disc_image()
    mask = OtsuBox().decode({"image": image}, [box_prompt(tight_box(disc, margin=12))])[0]
    assert dice(mask, disc) > 0.95


def test_otsu_auto_polarity_finds_a_dark_disc_and_forced_polarity_is_obeyed():
    image, disc = disc_image(dark=True)
    prompt = box_prompt(tight_box(disc, margin=12))
    assert dice(OtsuBox().decode({"image": image}, [prompt])[0], disc) > 0.95
    wrong = OtsuBox(polarity="bright", keep_largest=False).decode({"image": image}, [prompt])[0]
    assert dice(wrong, disc) < 0.05


def test_otsu_auto_polarity_handles_a_ring_whose_centre_is_background():
    yy, xx = np.mgrid[:H, :W]
    radius = np.hypot(yy - 60, xx - 75)
    ring = (radius >= 15) & (radius <= 28)  # like cortical bone around marrow
    image = np.where(ring, 200, 70).astype(np.uint8)
    mask = OtsuBox().decode({"image": image}, [box_prompt(tight_box(ring, margin=6))])[0]
    assert dice(mask, ring) > 0.99


def test_otsu_threshold_matches_scikit_image():
    rng = np.random.default_rng(3)
    image = cv2.GaussianBlur(rng.integers(0, 256, (H, W)).astype(np.uint8), (5, 5), 0)
    box = (20, 15, 110, 90)
    mask = OtsuBox(polarity="bright", keep_largest=False).decode({"image": image}, [box_prompt(box)])[0]
    roi = image[15:91, 20:111]
    assert np.array_equal(mask[15:91, 20:111], roi > threshold_otsu(roi))


def test_otsu_keep_largest_drops_a_second_blob():
    image = np.full((H, W), 50, np.uint8)
    image[30:60, 30:70] = 220  # 1200 px
    image[80:90, 100:110] = 220  # 100 px
    mask = OtsuBox().decode({"image": image}, [box_prompt((20, 20, 120, 100))])[0]
    assert mask.sum() == 1200 and mask[40, 40] and not mask[85, 105]


def test_otsu_on_a_uniform_box_returns_the_box():
    image = np.full((H, W), 77, np.uint8)
    mask = OtsuBox().decode({"image": image}, [box_prompt((10, 10, 19, 14))])[0]
    assert mask.sum() == 50


# --- grabcut_box --------------------------------------------------------------------------------


def test_grabcut_recovers_a_clear_object():
    image, disc = disc_image()
    mask = GrabCutBox().decode({"image": image}, [box_prompt(tight_box(disc, margin=10))])[0]
    assert dice(mask, disc) > 0.95


def test_grabcut_is_deterministic_for_a_seed_whatever_the_rng_state():
    image, disc = disc_image(contrast=60, noise=30, seed=0, centre=(48, 48), radius=20)
    prompt = box_prompt((25, 25, 71, 71))
    results = {}
    for seed in range(8):
        cv2.setRNGSeed(1000 + seed)  # disturb OpenCV's global RNG between calls
        cv2.randu(np.empty((50, 50)), 0, 1)
        results[seed] = GrabCutBox(seed=seed, iterations=1).decode({"image": image}, [prompt])[0]
    for seed in range(8):
        cv2.randu(np.empty((7, 7)), 0, 1)
        again = GrabCutBox(seed=seed, iterations=1).decode({"image": image}, [prompt])[0]
        assert np.array_equal(again, results[seed])


def test_grabcut_point_seeding_starts_from_the_rect_labelling():
    """With no points, GC_INIT_WITH_MASK on our labelling equals GC_INIT_WITH_RECT (the documented claim)."""
    image, disc = disc_image(contrast=70, noise=25)
    box = tight_box(disc, margin=8)
    model = GrabCutBox(iterations=3, seed=4)
    labels = model._labels_with_points(image.shape, clip_box(box, image.shape), box_prompt(box, "box+point"))
    colour = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    cv2.setRNGSeed(4)
    cv2.grabCut(colour, labels, None, np.zeros((1, 65)), np.zeros((1, 65)), 3, cv2.GC_INIT_WITH_MASK)
    via_mask = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    via_rect = model.decode({"image": image}, [box_prompt(box)])[0]
    assert np.array_equal(via_mask, via_rect)


def test_grabcut_box_plus_point_honours_point_labels():
    image, disc = disc_image()
    box = tight_box(disc, margin=10)
    model = GrabCutBox(point_radius=4)
    inside = model.decode({"image": image}, [box_prompt(box, "box+point", ((75, 60),), (1,))])[0]
    assert dice(inside, disc) > 0.95
    carved = model.decode({"image": image}, [box_prompt(box, "box+point", ((75, 60),), (0,))])[0]
    point_disc = cv2.circle(np.zeros((H, W), np.uint8), (75, 60), 4, 1, thickness=-1).astype(bool)
    assert point_disc.sum() > 40 and not carved[point_disc].any()  # fixed background around the point
    assert carved.sum() < inside.sum()


def test_grabcut_falls_back_to_the_box_when_there_is_no_background():
    image, _ = disc_image()
    mask = GrabCutBox().decode({"image": image}, [box_prompt((-5, -5, W + 5, H + 5)), box_prompt((3, 3, 4, 4))])
    assert mask[0].all() and mask[1].sum() == 4


# --- plugin registration ------------------------------------------------------------------------


def _registered():
    from mskbench_builtins.models.baselines import register_plugin

    entries = {}
    register_plugin(lambda name, factory, **meta: entries.__setitem__(name, (factory, meta)))
    return entries


def test_plugin_registers_the_baselines_with_valid_schemas():
    entries = _registered()
    assert set(entries) == {"box_fill", "otsu_box", "grabcut_box", "random_walker_clicks", "region_growing_3d"}
    for name, (factory, meta) in entries.items():
        params = validate_params(meta.get("params") or {}, {}, f"models.{name}.params")
        model = factory(**params, device="cpu", checkpoint=None)
        assert model.describe()["name"] == name
    with pytest.raises(PluginError, match="did you mean 'iterations'"):
        validate_params(entries["grabcut_box"][1]["params"], {"iteration": 3}, "models[0].params")
    with pytest.raises(PluginError, match="not one of"):
        validate_params(entries["otsu_box"][1]["params"], {"polarity": "brite"}, "models[0].params")


def test_builtin_models_hook_registers_baselines_and_the_sam_family():
    from mskbench.plugin_manager import load_registry
    from mskbench.segmenters.baselines import BOX_PROMPTS

    registry = load_registry()
    assert {"box_fill", "otsu_box", "grabcut_box", "sam", "medsam", "sam2", "samri"} <= set(registry.names("model"))
    assert not [f for f in registry.failures if f.kind == "model" or f.entry_point == "models"]
    for name in ("box_fill", "otsu_box", "grabcut_box"):
        info = registry.get("model", name, "test")
        assert info.distribution == "mskbench" and info.requires == ()
        assert info.factory.supported_prompts == BOX_PROMPTS  # what the planner reads without building
    model = registry.create("model", "otsu_box", {"polarity": "dark"}, "models[0]", device="cpu", checkpoint=None)
    assert model.describe()["params"] == {"polarity": "dark", "keep_largest": True}


@pytest.mark.parametrize("context_margin", [None, 100.0])
def test_grabcut_on_the_whole_slice_equals_opencv_on_the_full_image(context_margin):
    image, truth = disc_image(seed=3)
    box = tight_box(truth)
    segmenter = GrabCutBox(iterations=4, seed=7, context_margin=context_margin)
    ours = segmenter.decode({"image": image}, [box_prompt(box)])[0]
    labels = np.zeros(image.shape, np.uint8)
    cv2.setRNGSeed(7)
    x0, y0, x1, y1 = box
    cv2.grabCut(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), labels, (x0, y0, x1 - x0 + 1, y1 - y0 + 1),
                np.zeros((1, 65)), np.zeros((1, 65)), 4, cv2.GC_INIT_WITH_RECT)
    np.testing.assert_array_equal(ours, (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD))


def test_grabcut_local_context_keeps_the_mask_in_slice_coordinates():
    image, truth = disc_image(seed=4, centre=(40, 100))
    mask = GrabCutBox(context_margin=0.2).decode({"image": image}, [box_prompt(tight_box(truth))])[0]
    assert mask.shape == image.shape
    assert dice(mask, truth) > 0.9

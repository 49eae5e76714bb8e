"""The `samri` segmenter follows SAMRI's own code (wangzhaomxy/SAMRI), checked against upstream SamPredictor.

SAMRI's evaluation (``utils/visual.py``: ``get_test_record_from_ds``,
``save_infer_outputs_from_ds``) feeds ``SamPredictor.set_image`` the slice
that ``utils/dataloader.py`` ``NiiDataset._preprocess`` made (min-max stretch
of the 2D slice to [0, 255]), and predicts every prompt, the single point
included, with ``multimask_output=False`` (as ``inference.py`` ``run_predict``
does too). Its box+point's point is ``utils/utils.py`` ``gen_points``. The
helpers below restate those steps from SAMRI's code; the segmenter must match.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sam_family_tiny import assert_same_decision, phantom, prompt, single_torch_thread, tiny_sam  # noqa: F401
from segment_anything import SamPredictor

from mskbench.prompting.oracle import BoxPointPrompter
from mskbench.segmenters.sam import SamriSegmenter, samri_stretch
from mskbench.types import SliceRef

SHAPE = (220, 310)


def samri_nii_preprocess(image: np.ndarray) -> np.ndarray:
    """NiiDataset._preprocess + __getitem__'s cast, on one (H, W) slice: the HxWx3 uint8 given to set_image."""
    sig_chann = image.astype(np.float64)
    np_3c = np.array([sig_chann, sig_chann, sig_chann]).transpose(1, 2, 0)
    np_3c = (np_3c - np_3c.min()) / (np_3c.max() - np_3c.min() + 1e-8)
    np_3c = np.round(np_3c * 255)
    return np_3c.astype(np.uint8)


def samri_predict(predictor: SamPredictor, p) -> np.ndarray:
    """SAMRI's predictor.predict call for one prompt (multimask_output=False always), as logits."""
    logits, _, _ = predictor.predict(
        point_coords=np.array(p.points) if p.points else None,
        point_labels=np.array(p.point_labels) if p.points else None,
        box=np.array(p.box)[None, :] if p.box is not None else None,
        multimask_output=False,
        return_logits=True,
    )
    return logits[0]


@pytest.fixture(scope="module")
def model():
    return tiny_sam(seed=4)


@pytest.fixture(scope="module")
def image():
    """A slice using only part of the uint8 range, as a dataset-normalised MRI slice often does."""
    raw = phantom(*SHAPE, seed=7).astype(np.float64)
    return np.round(30 + raw * 0.6).astype(np.uint8)  # 30..183


@pytest.fixture(scope="module")
def segmenter(model):
    return SamriSegmenter(model, device="cpu", precision="fp32", variant="bp")


@pytest.fixture(scope="module")
def embedding(segmenter, image):
    return segmenter.encode([image])[0]


@pytest.fixture(scope="module")
def upstream(model, image):
    predictor = SamPredictor(model)
    predictor.set_image(samri_nii_preprocess(image))
    return predictor


def samri_prompts():
    h, w = SHAPE
    return [
        prompt("box+point", 1, box=(20, 30, 150, 200), points=[(80, 100)], point_labels=[1], prompter="samri"),
        prompt("box+point", 2, box=(100, 10, 300, 120), points=[(200, 60)], point_labels=[1], prompter="samri"),
        prompt("box", 3, box=(0, 0, w - 1, h - 1), prompter="box"),
        prompt("point", 1, points=[(w // 3, h // 3)], point_labels=[1], prompter="click"),
        prompt("point", 2, points=[(w // 2, h // 2)], point_labels=[1], prompter="click"),
        prompt("point", 3, points=[(w // 2, h // 2), (5, 5)], point_labels=[1, 0], prompter="two_clicks"),
    ]


def test_stretch_is_samri_nii_dataset_preprocessing(image):
    stretched = samri_stretch(image)
    np.testing.assert_array_equal(np.repeat(stretched[:, :, None], 3, axis=2), samri_nii_preprocess(image))
    assert stretched.min() == 0 and stretched.max() == 255 and image.max() < 255
    uniform = np.full((9, 11), 77, np.uint8)
    np.testing.assert_array_equal(samri_stretch(uniform), samri_nii_preprocess(uniform)[..., 0])
    assert not samri_stretch(uniform).any()


def test_encode_equals_set_image_of_the_stretched_slice(embedding, upstream, model, image):
    assert torch.equal(embedding["features"], upstream.features[0])
    plain = SamPredictor(model)
    plain.set_image(np.repeat(image[:, :, None], 3, axis=2))
    assert not torch.allclose(embedding["features"], plain.features[0], atol=1e-3)  # the stretch matters


def test_each_prompt_alone_is_bit_identical_to_samri_predict(segmenter, embedding, upstream):
    for p in samri_prompts():
        np.testing.assert_array_equal(segmenter.decode_scores(embedding, [p])[0], samri_predict(upstream, p))


def test_single_click_takes_the_one_mask_not_the_multimask_pick(segmenter, embedding, upstream):
    changed = 0
    for p in samri_prompts()[3:5]:
        scores = segmenter.decode_scores(embedding, [p])[0]
        logits, iou, _ = upstream.predict(
            point_coords=np.array(p.points), point_labels=np.array(p.point_labels), multimask_output=True,
            return_logits=True,
        )
        changed += int(((scores > 0) != (logits[int(np.argmax(iou))] > 0)).sum())
    assert changed > 0  # with SAM's multimask rule these clicks would give other masks


def test_all_prompts_of_a_slice_in_one_call_match_one_samri_call_each(segmenter, embedding, upstream):
    prompts = samri_prompts()
    scores = segmenter.decode_scores(embedding, prompts)
    assert_same_decision(scores, np.stack([samri_predict(upstream, p) for p in prompts]), threshold=0.0)
    masks = segmenter.decode(embedding, prompts)
    assert masks.any(axis=(1, 2)).all() and not masks.all(axis=(1, 2)).any()


def test_describe_records_samri_conventions(segmenter):
    described = segmenter.describe()
    assert described["architecture"] == "samri" and described["single_click_multimask"] is False
    assert described["preprocessing"].startswith("SAMRI NiiDataset: per-slice min-max stretch")


# --- the box+point prompter's SAMRI point -------------------------------------------------------


def gen_points_window(mask: np.ndarray) -> set[tuple[float, float]]:
    """Every point SAMRI's gen_points can return: (w[i], h[i]) for randint(int(.45 n), int(.55 n))."""
    h, w = np.nonzero(mask)
    low, high = int(len(h) * 0.45), int(len(h) * 0.55)
    return {(float(w[i]), float(h[i])) for i in range(low, high + 1)}


def test_box_point_raster_middle_draws_samri_gen_points():
    yy, xx = np.mgrid[:60, :80]
    reference = np.zeros((60, 80), np.int32)
    reference[((yy - 30) / 6) ** 2 + ((xx - 35) / 9) ** 2 < 1] = 1
    reference[5:12, 60:78] = 2
    prompter = BoxPointPrompter(strategy="raster_middle")
    where = SliceRef("d", "s", 0, (1.0, 1.0))
    seen = {1: set(), 2: set()}
    for seed in range(200):
        for p in prompter.prompts(np.zeros((60, 80), np.uint8), reference, [1, 2], np.random.default_rng(seed), where):
            mask = reference == p.label
            rows, cols = np.nonzero(mask)
            assert p.kind == "box+point" and p.point_labels == (1,)
            assert p.box == (cols.min(), rows.min(), cols.max(), rows.max())  # SAMRI's gen_bboxes(jitter=0)
            assert p.points[0] in gen_points_window(mask)
            seen[p.label].add(p.points[0])
    for label in (1, 2):  # uniform over the window: 200 draws cover a window of this size
        window = gen_points_window(reference == label)
        assert seen[label] == window, (label, len(seen[label]), len(window))


def test_raster_middle_on_tiny_masks():
    from mskbench.prompting.points import positive_points

    for n_pixels in (1, 2, 3, 10):
        mask = np.zeros((4, 8), bool)
        mask.flat[:n_pixels] = True
        for seed in range(20):
            (point,) = positive_points(mask, 1, "raster_middle", np.random.default_rng(seed))
            assert point in gen_points_window(mask)

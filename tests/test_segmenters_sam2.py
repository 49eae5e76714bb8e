"""The `sam2` segmenter equals sam2's SAM2ImagePredictor (small random SAM 2.0 and 2.1 models)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam_family_tiny import assert_same_decision, phantom, prompt, single_torch_thread, tiny_sam2  # noqa: F401

from mskbench.errors import PluginError
from mskbench.segmenters.sam2_image import Sam2Segmenter
from mskbench.segmenters.sam_catalog import sam2_config

SHAPES = [(300, 200), (180, 320)]


@pytest.fixture(scope="module", params=["2.0", "2.1"])
def model(request):
    return tiny_sam2(seed=5, config=sam2_config(request.param, "tiny"))


@pytest.fixture(scope="module")
def segmenter(model):
    return Sam2Segmenter(model, device="cpu", precision="fp32", variant="tiny")


@pytest.fixture(scope="module")
def images():
    return [phantom(h, w, seed=20 + i) for i, (h, w) in enumerate(SHAPES)]


@pytest.fixture(scope="module")
def embeddings(segmenter, images):
    return segmenter.encode(images)


@pytest.fixture(scope="module")
def upstream(model, images):
    predictors = []
    for image in images:
        predictor = SAM2ImagePredictor(model)
        predictor.set_image(np.repeat(image[:, :, None], 3, axis=2))
        predictors.append(predictor)
    return predictors


def upstream_scores(predictor: SAM2ImagePredictor, p) -> np.ndarray:
    """SAM2ImagePredictor.predict for one prompt, multimask for a single click as its docs advise."""
    single_click = p.kind == "point" and len(p.points) == 1
    logits, iou, _ = predictor.predict(
        point_coords=np.array(p.points) if p.points else None,
        point_labels=np.array(p.point_labels) if p.points else None,
        box=np.array(p.box) if p.box is not None else None,
        multimask_output=single_click,
        return_logits=True,
    )
    return logits[int(np.argmax(iou))] if single_click else logits[0]


def prompts_for(shape):
    h, w = shape
    return [
        prompt("box", 1, box=(10, 20, w // 2, h - 30), prompter="gt_box"),
        prompt("point", 2, points=[(w // 3, h // 3)], point_labels=[1], prompter="click"),
        prompt("box", 2, box=(w // 4, h // 4, w - 1, h - 1), prompter="jitter"),
        prompt("box+point", 1, box=(5, 5, w - 20, h // 2), points=[(w // 2, h // 4)], point_labels=[1], prompter="bp"),
        prompt("point", 3, points=[(w // 2, h // 2), (5, 5)], point_labels=[1, 0], prompter="two_clicks"),
        prompt("box", 3, box=(0, 0, w - 1, h - 1), prompter="gt_box"),
    ]


def test_encode_equals_set_image(embeddings, upstream):
    for embedding, predictor in zip(embeddings, upstream):
        assert torch.equal(embedding["image_embed"], predictor._features["image_embed"][0])
        for i, level in enumerate(predictor._features["high_res_feats"]):
            assert torch.equal(embedding[f"high_res_feats_{i}"], level[0])
        assert embedding["original_size"] == predictor._orig_hw[0]


def test_each_prompt_alone_is_bit_identical_to_predict(segmenter, embeddings, upstream, images):
    for p in prompts_for(images[0].shape):
        np.testing.assert_array_equal(segmenter.decode_scores(embeddings[0], [p])[0], upstream_scores(upstream[0], p))


def test_one_batched_decode_matches_one_call_per_prompt(segmenter, embeddings, upstream, images):
    foreground = []
    for embedding, predictor, image in zip(embeddings, upstream, images):
        prompts = prompts_for(image.shape)
        scores = segmenter.decode_scores(embedding, prompts)
        reference = np.stack([upstream_scores(predictor, p) for p in prompts])
        assert_same_decision(scores, reference, threshold=0.0)
        masks = segmenter.decode(embedding, prompts)
        np.testing.assert_array_equal(masks, scores > 0)
        foreground.extend(masks.reshape(len(prompts), -1).mean(axis=1))
    assert np.mean([0.02 < f < 0.98 for f in foreground]) > 0.5


def test_embedding_survives_torch_save_with_weights_only(segmenter, embeddings, images, tmp_path):
    torch.save(embeddings[0], tmp_path / "e.pt")
    loaded = torch.load(tmp_path / "e.pt", weights_only=True)
    prompts = prompts_for(images[0].shape)
    np.testing.assert_array_equal(segmenter.decode(loaded, prompts), segmenter.decode(embeddings[0], prompts))


def test_sam2_rejects_automatic_mode(segmenter, embeddings):
    with pytest.raises(PluginError, match="does not take none prompts"):
        segmenter.decode(embeddings[0], [prompt("none")])

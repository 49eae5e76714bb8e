"""The `medsam` segmenter equals MedSAM's published inference (MedSAM_Inference.py), small random model."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sam_family_tiny import assert_same_decision, phantom, prompt, single_torch_thread, tiny_sam  # noqa: F401
from skimage import transform

from mskbench.errors import PluginError
from mskbench.segmenters.medsam import MedSamSegmenter

SHAPES = [(300, 200), (180, 320)]


def published_embedding(model, image: np.ndarray) -> torch.Tensor:
    """MedSAM_Inference.py's preprocessing and encoder call, step by step, for a grayscale slice."""
    img_3c = np.repeat(image[:, :, None], 3, axis=-1)
    img_1024 = transform.resize(img_3c, (1024, 1024), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
    img_1024 = (img_1024 - img_1024.min()) / np.clip(img_1024.max() - img_1024.min(), a_min=1e-8, a_max=None)
    img_1024_tensor = torch.tensor(img_1024).float().permute(2, 0, 1).unsqueeze(0)
    with torch.no_grad():
        return model.image_encoder(img_1024_tensor)


def published_probabilities(
    model, img_embed: torch.Tensor, box: tuple, height: int, width: int, cast=int
) -> np.ndarray:
    """MedSAM_Inference.py: box to 1024 space, then ``medsam_inference`` up to its > 0.5 threshold.

    The script builds ``box_np`` with ``int()`` of each number of its ``--box`` string; ``cast=float``
    is the same steps with the box kept as it is.
    """
    box_np = np.array([[cast(v) for v in box]])
    box_1024 = box_np / np.array([width, height, width, height]) * 1024
    with torch.no_grad():
        box_torch = torch.as_tensor(box_1024, dtype=torch.float)[:, None, :]
        sparse, dense = model.prompt_encoder(points=None, boxes=box_torch, masks=None)
        logits, _ = model.mask_decoder(
            image_embeddings=img_embed,
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        probabilities = F.interpolate(torch.sigmoid(logits), size=(height, width), mode="bilinear", align_corners=False)
    return probabilities.squeeze().numpy()


@pytest.fixture(scope="module")
def model():
    return tiny_sam(seed=3)


@pytest.fixture(scope="module")
def segmenter(model):
    return MedSamSegmenter(model, device="cpu", precision="fp32", variant="tiny")


@pytest.fixture(scope="module")
def images():
    return [phantom(h, w, seed=10 + i) for i, (h, w) in enumerate(SHAPES)]


@pytest.fixture(scope="module")
def embeddings(segmenter, images):
    return segmenter.encode(images)


def boxes_for(shape):
    h, w = shape
    return [(10, 20, w // 2, h - 30), (w // 4, h // 4, w - 1, h - 1), (0, 0, w - 1, h - 1), (w // 3, h // 3, w // 3 + 4, h // 3 + 9)]


def test_encode_equals_published_preprocessing_and_encoder(model, embeddings, images):
    for embedding, image in zip(embeddings, images):
        assert torch.equal(embedding["features"], published_embedding(model, image)[0])
        assert embedding["original_size"] == image.shape


def test_one_box_is_bit_identical_to_medsam_inference(model, segmenter, embeddings, images):
    image, embedding = images[0], embeddings[0]
    reference_embed = published_embedding(model, image)
    for box in boxes_for(image.shape):
        scores = segmenter.decode_scores(embedding, [prompt("box", box=box)])[0]
        np.testing.assert_array_equal(scores, published_probabilities(model, reference_embed, box, *image.shape))


def test_batched_boxes_match_one_call_per_box(model, segmenter, embeddings, images):
    foreground = []
    for embedding, image in zip(embeddings, images):
        reference_embed = published_embedding(model, image)
        boxes = boxes_for(image.shape)
        prompts = [prompt("box", label, box=box, prompter=name) for label, box in enumerate(boxes) for name in ("a", "b")]
        scores = segmenter.decode_scores(embedding, prompts)
        reference = np.stack([published_probabilities(model, reference_embed, p.box, *image.shape) for p in prompts])
        assert_same_decision(scores, reference, threshold=0.5)
        masks = segmenter.decode(embedding, prompts)
        np.testing.assert_array_equal(masks, scores > 0.5)
        foreground.extend(masks.reshape(len(prompts), -1).mean(axis=1))
    assert np.mean([0.02 < f < 0.98 for f in foreground]) > 0.5


def test_fractional_boxes_are_used_exactly_not_truncated(model, segmenter, embeddings, images):
    """Issue 12, item 3: jittered and detector boxes reach MedSAM unrounded, as they reach SAM and SAM 2
    (MedSAM_Inference.py takes integer boxes only, so it has no rounding rule to follow)."""
    image, embedding = images[1], embeddings[1]
    height, width = image.shape
    reference_embed = published_embedding(model, image)
    boxes = [(10.6, 20.4, 150.7, 140.9), (width / 4 + 0.5, height / 4 + 0.25, width - 1.5, height - 1.2)]
    prompts = [prompt("box", label, box=box) for label, box in enumerate(boxes, start=1)]
    for p in prompts:
        scores = segmenter.decode_scores(embedding, [p])[0]
        np.testing.assert_array_equal(scores, published_probabilities(model, reference_embed, p.box, height, width, float))
        truncated = published_probabilities(model, reference_embed, p.box, height, width, int)
        assert not np.array_equal(scores, truncated)  # the decision is visible: truncation gives other scores
    whole = [published_probabilities(model, reference_embed, p.box, height, width, float) for p in prompts]
    assert_same_decision(segmenter.decode_scores(embedding, prompts), np.stack(whole), threshold=0.5)


def test_uniform_slice_does_not_divide_by_zero(segmenter):
    embedding = segmenter.encode([np.full((40, 50), 7, dtype=np.uint8)])[0]
    assert torch.isfinite(embedding["features"]).all()


@pytest.mark.parametrize("kind", ["point", "box+point", "none"])
def test_medsam_takes_boxes_only(segmenter, embeddings, kind):
    bad = prompt(kind, box=(0, 0, 5, 5) if "box" in kind else None,
                 points=[(3, 3)] if "point" in kind else (), point_labels=[1] if "point" in kind else ())
    with pytest.raises(PluginError, match=re.escape(f"does not take {kind} prompts")):
        segmenter.decode(embeddings[0], [bad])


def test_describe_names_medsam_recipe(segmenter):
    described = segmenter.describe()
    assert described["architecture"] == "medsam" and described["supported_prompts"] == ["box"]
    assert "min-max" in described["preprocessing"]

"""``input_convention = "medsam"`` on ``sam`` and ``sam2``: SAM-family weights through MedSAM's published recipe.

The reference is the recipe itself (MedSAM_Inference.py: 1024² cubic
resize, [0, 1], no mean/std, box / [W, H, W, H] * 1024, sigmoid -> bilinear
-> > 0.5) applied step by step to the upstream components of each model,
and for SAM the ``medsam`` plugin's segmenter given the same weights.
Small random models, non-square slices.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sam_family_tiny import assert_same_decision, phantom, prompt, single_torch_thread, tiny_sam, tiny_sam2  # noqa: F401
from test_segmenters_medsam import published_embedding, published_probabilities

from mskbench.params import validate_params
from mskbench.segmenters.medsam import MedSamSegmenter, SamMedsamInput
from mskbench.segmenters.sam2_image import Sam2MedsamInput, Sam2Segmenter
from mskbench_builtins.models import sam, sam2

SHAPES = [(300, 200), (180, 320)]
BOXES = {(300, 200): (20.0, 30.0, 150.0, 260.0), (180, 320): (40.0, 25.0, 290.0, 160.0)}
CLICKS = {(300, 200): ((90.0, 140.0), (30.0, 40.0)), (180, 320): ((160.0, 90.0), (300.0, 170.0))}


@pytest.fixture(scope="module")
def images():
    return [phantom(h, w, seed=20 + i) for i, (h, w) in enumerate(SHAPES)]


@pytest.fixture(scope="module")
def sam_model():
    return tiny_sam(seed=5)


def recipe_points_probabilities(model, embedding, points, labels, height, width) -> np.ndarray:
    """The recipe's steps with clicks in place of the box: points / [W, H] * 1024, no box."""
    coords = torch.as_tensor(np.asarray(points) / np.array([width, height]) * 1024, dtype=torch.float)[None]
    with torch.no_grad():
        sparse, dense = model.prompt_encoder(points=(coords, torch.as_tensor([labels], dtype=torch.int)), boxes=None, masks=None)
        logits, _ = model.mask_decoder(
            image_embeddings=embedding, image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False,
        )
        return F.interpolate(torch.sigmoid(logits), size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()


def test_sam_medsam_convention_equals_the_medsam_plugin_and_the_published_recipe(sam_model, images):
    ours = SamMedsamInput(sam_model, device="cpu", precision="fp32", variant="tiny")
    medsam = MedSamSegmenter(sam_model, device="cpu", precision="fp32", variant="tiny")
    embeddings, medsam_embeddings = ours.encode(images), medsam.encode(images)
    for image, embedding, medsam_embedding in zip(images, embeddings, medsam_embeddings):
        height, width = image.shape
        box = BOXES[image.shape]
        np.testing.assert_array_equal(embedding["features"].numpy(), medsam_embedding["features"].numpy())
        published = published_embedding(sam_model, image)
        np.testing.assert_allclose(embedding["features"].numpy(), published[0].numpy(), atol=1e-5)
        scores = ours.decode_scores(embedding, [prompt("box", box=box)])[0]
        np.testing.assert_array_equal(scores, medsam.decode_scores(medsam_embedding, [prompt("box", box=box)])[0])
        assert_same_decision(scores, published_probabilities(sam_model, published, box, height, width, cast=float), 0.5)


def test_sam_medsam_convention_takes_clicks_scaled_like_the_box(sam_model, images):
    ours = SamMedsamInput(sam_model, device="cpu", precision="fp32", variant="tiny")
    for image, embedding in zip(images, ours.encode(images)):
        height, width = image.shape
        points = CLICKS[image.shape]
        reference = recipe_points_probabilities(sam_model, published_embedding(sam_model, image), points, [1, 0], height, width)
        scores = ours.decode_scores(embedding, [prompt("point", points=points, point_labels=(1, 0))])[0]
        assert_same_decision(scores, reference, 0.5)
        refined = ours.refine(embedding, prompt("point", points=points, point_labels=(1, 0)), None)
        np.testing.assert_array_equal(refined.mask, scores > 0.5)
        assert refined.logits.shape == (1, 256, 256)


@pytest.fixture(scope="module")
def sam2_model():
    return tiny_sam2(seed=6)


def recipe_sam2(model, image: np.ndarray, box) -> np.ndarray:
    """The recipe on SAM 2's own components, as a MedSAM-style script drives them: the [0, 1] 1024² image
    through forward_image (no mean/std), no_mem_embed, the box as two corner points (labels 2, 3) scaled
    by / [W, H] * 1024, one mask, sigmoid -> bilinear."""
    height, width = image.shape
    img = np.repeat(image[:, :, None], 3, axis=-1)
    from skimage import transform

    img = transform.resize(img, (1024, 1024), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
    img = (img - img.min()) / np.clip(img.max() - img.min(), a_min=1e-8, a_max=None)
    tensor = torch.tensor(img).float().permute(2, 0, 1)[None]
    with torch.no_grad():
        _, feats, _, sizes = model._prepare_backbone_features(model.forward_image(tensor))
        feats[-1] = feats[-1] + model.no_mem_embed
        maps = [f.permute(1, 2, 0).view(1, -1, h, w) for f, (h, w) in zip(feats, sizes)]
        corners = torch.tensor([[[box[0], box[1]], [box[2], box[3]]]], dtype=torch.float) / torch.tensor([width, height]) * 1024
        sparse, dense = model.sam_prompt_encoder(points=(corners, torch.tensor([[2, 3]], dtype=torch.int)), boxes=None, masks=None)
        logits, *_ = model.sam_mask_decoder(
            image_embeddings=maps[-1], image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=False,
            repeat_image=False, high_res_features=maps[:-1],
        )
        logits = torch.clamp(logits, -32.0, 32.0)
        return F.interpolate(torch.sigmoid(logits), size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()


def test_sam2_medsam_convention_equals_the_recipe_on_sam2_components(sam2_model, images):
    ours = Sam2MedsamInput(sam2_model, device="cpu", precision="fp32", variant="tiny")
    for image, embedding in zip(images, ours.encode(images)):
        box = BOXES[image.shape]
        scores = ours.decode_scores(embedding, [prompt("box", box=box)])[0]
        assert_same_decision(scores, recipe_sam2(sam2_model, image, box), 0.5)
        refined = ours.refine(embedding, prompt("box", box=box), None)
        np.testing.assert_array_equal(refined.mask, scores > 0.5)


def test_the_upstream_convention_is_unchanged_and_differs(sam2_model, images):
    """The default predictor path still normalises by ImageNet mean/std: the two conventions must disagree."""
    upstream = Sam2Segmenter(sam2_model, device="cpu", precision="fp32", variant="tiny")
    medsam_input = Sam2MedsamInput(sam2_model, device="cpu", precision="fp32", variant="tiny")
    image = images[0]
    a, b = upstream.encode([image])[0], medsam_input.encode([image])[0]
    assert not torch.allclose(a["image_embed"], b["image_embed"])
    assert upstream.describe()["preprocessing"] != medsam_input.describe()["preprocessing"]  # distinct cache keys


@pytest.mark.parametrize("plugin", [sam, sam2])
def test_input_convention_is_validated_with_the_allowed_values(plugin):
    from mskbench.errors import UserError

    assert validate_params(plugin.PARAMS, {}, "models[0].params")["input_convention"] == "upstream"
    with pytest.raises(UserError, match="input_convention: 'meds' is not one of 'upstream', 'medsam'"):
        validate_params(plugin.PARAMS, {"input_convention": "meds"}, "models[0].params")

"""Training sees what evaluation sees: the trainer's encoder input and logits are the segmenters' own.

For each input convention the differentiable path `mskbench train` uses
(``encoder_input`` -> image encoder, ``low_res_logits`` -> ``full_size_logits``)
is compared with the segmenter's inference (``encode`` / ``decode_scores``),
which tests/test_segmenters_sam.py and test_segmenters_medsam.py hold to the
upstream predictors and MedSAM's published script.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam_family_tiny import phantom, prompt, single_torch_thread, tiny_sam  # noqa: F401  (autouse fixture)


def segmenter(kind: str):
    from mskbench.segmenters.medsam import MedSamSegmenter, medsam_probabilities
    from mskbench.segmenters.sam import SamriSegmenter, SamSegmenter

    cls = {"sam": SamSegmenter, "samri": SamriSegmenter, "medsam": MedSamSegmenter}[kind]
    return cls(tiny_sam(seed=5), device="cpu", precision="fp32", variant="vit_b"), medsam_probabilities


@pytest.mark.parametrize("kind", ["sam", "samri", "medsam"])
def test_the_training_path_equals_inference(kind):
    from mskbench.training.trainer import _prompt_arrays

    model, medsam_probabilities = segmenter(kind)
    image = phantom(150, 230, seed=3)  # non-square: the resize and padding matter
    embedding = model.encode([image])[0]
    live = model.trainable_embeddings([image])[0]
    assert live["features"].requires_grad
    torch.testing.assert_close(live["features"].detach(), embedding["features"], rtol=0, atol=1e-5)
    assert {k: v for k, v in live.items() if k != "features"} == {k: v for k, v in embedding.items() if k != "features"}
    for box_prompt in (prompt("box", box=(30, 20, 180, 120)), ):
        reference = model.decode_scores(embedding, [box_prompt])[0]
        with torch.no_grad():
            low_res = model.low_res_logits(live, *_prompt_arrays(box_prompt))
            if kind == "medsam":  # the recipe's output: sigmoid, then bilinear
                scores = medsam_probabilities(low_res, *image.shape)[0, 0].numpy()
            else:
                scores = model.full_size_logits(low_res, live)[0, 0].numpy()
        np.testing.assert_allclose(scores, reference, rtol=0, atol=1e-4)
        if kind == "medsam":  # the loss's logits are those of the recipe's probabilities
            logits = model.full_size_logits(low_res, live)[0, 0]
            np.testing.assert_allclose(torch.sigmoid(logits).numpy(), np.clip(reference, 1e-6, 1 - 1e-6), atol=1e-5)


def test_points_take_the_same_path():
    from mskbench.training.trainer import _prompt_arrays

    model, _ = segmenter("sam")
    image = phantom(150, 230, seed=4)
    embedding = model.encode([image])[0]
    click = prompt("box+point", box=(30, 20, 180, 120), points=[(90, 70)], point_labels=[1])
    reference = model.decode_scores(embedding, [click])[0]
    with torch.no_grad():
        scores = model.full_size_logits(model.low_res_logits(embedding, *_prompt_arrays(click)), embedding)[0, 0].numpy()
    np.testing.assert_allclose(scores, reference, rtol=0, atol=1e-4)


@pytest.mark.parametrize("convention", ["upstream", "medsam"])
def test_the_sam2_training_path_equals_inference(convention):
    from mskbench.segmenters.medsam import medsam_probabilities
    from mskbench.segmenters.sam2_image import Sam2MedsamInput, Sam2Segmenter
    from mskbench.training.trainer import _prompt_arrays
    from sam_family_tiny import tiny_sam2

    cls = Sam2MedsamInput if convention == "medsam" else Sam2Segmenter
    model = cls(tiny_sam2(seed=5), device="cpu", precision="fp32", variant="2.1/tiny")
    image = phantom(150, 230, seed=3)
    embedding = model.encode([image])[0]
    live = model.trainable_embeddings([image])[0]
    assert live["image_embed"].requires_grad
    for key in ("image_embed", "high_res_feats_0", "high_res_feats_1"):
        torch.testing.assert_close(live[key].detach(), embedding[key], rtol=0, atol=1e-5)
    for click in (prompt("box", box=(30, 20, 180, 120)),
                  prompt("box+point", box=(30, 20, 180, 120), points=[(90, 70)], point_labels=[1])):
        reference = model.decode_scores(embedding, [click])[0]
        low_res = model.low_res_logits(live, *_prompt_arrays(click))
        assert low_res.requires_grad
        with torch.no_grad():
            if convention == "medsam":
                scores = medsam_probabilities(low_res, *image.shape)[0, 0].numpy()
            else:
                scores = model.full_size_logits(low_res, live)[0, 0].numpy()
        np.testing.assert_allclose(scores, reference, rtol=0, atol=1e-4)

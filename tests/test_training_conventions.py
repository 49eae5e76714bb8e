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
    from mskbench.training.trainer import _embedding, _prompt_arrays

    model, medsam_probabilities = segmenter(kind)
    image = phantom(150, 230, seed=3)  # non-square: the resize and padding matter
    embedding = model.encode([image])[0]
    with torch.no_grad():
        features = model.model.image_encoder(model.encoder_input([image]))[0]
    torch.testing.assert_close(features, embedding["features"], rtol=0, atol=1e-5)

    live = _embedding(model, features, image.shape)
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
    from mskbench.training.trainer import _embedding, _prompt_arrays

    model, _ = segmenter("sam")
    image = phantom(150, 230, seed=4)
    embedding = model.encode([image])[0]
    click = prompt("box+point", box=(30, 20, 180, 120), points=[(90, 70)], point_labels=[1])
    reference = model.decode_scores(embedding, [click])[0]
    with torch.no_grad():
        live = _embedding(model, embedding["features"], image.shape)
        scores = model.full_size_logits(model.low_res_logits(live, *_prompt_arrays(click)), live)[0, 0].numpy()
    np.testing.assert_allclose(scores, reference, rtol=0, atol=1e-4)

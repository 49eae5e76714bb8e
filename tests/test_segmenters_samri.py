"""The `samri` segmenter equals SAMRI's published inference call (SamPredictor, box + one point)."""

from __future__ import annotations

import numpy as np
import pytest
from sam_family_tiny import assert_same_decision, phantom, prompt, single_torch_thread, tiny_sam  # noqa: F401
from segment_anything import SamPredictor

from mskbench.segmenters.sam import SamriSegmenter


@pytest.fixture(scope="module")
def model():
    return tiny_sam(seed=4)


def test_box_plus_point_equals_samri_inference(model):
    image = phantom(220, 310, seed=7)
    segmenter = SamriSegmenter(model, device="cpu", precision="fp32", variant="bp")
    embedding = segmenter.encode([image])[0]
    predictor = SamPredictor(model)
    predictor.set_image(np.repeat(image[:, :, None], 3, axis=2))
    targets = [((20, 30, 150, 200), (80, 100)), ((100, 10, 300, 120), (200, 60)), ((0, 0, 309, 219), (150, 110))]
    prompts = [prompt("box+point", label, box=box, points=[point], point_labels=[1], prompter="samri")
               for label, (box, point) in enumerate(targets, start=1)]
    scores = segmenter.decode_scores(embedding, prompts)
    reference = []
    for box, point in targets:
        # SAMRI's save_infer_outputs_from_ds: one point, label 1, box[None, :], multimask_output=False
        logits, _, _ = predictor.predict(
            point_coords=np.array([point]), point_labels=np.array([1]), box=np.array(box)[None, :],
            multimask_output=False, return_logits=True,
        )
        reference.append(logits[0])
    assert_same_decision(scores, np.stack(reference), threshold=0.0)
    masks = segmenter.decode(embedding, prompts)
    assert segmenter.describe()["architecture"] == "samri"
    assert masks.any(axis=(1, 2)).all() and not masks.all(axis=(1, 2)).any()

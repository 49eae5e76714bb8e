"""An interactive step equals the upstream predictor's predict(points, labels, box, mask_input=previous
low-res logits, multimask_output=False): SamPredictor for `sam`, SAM2ImagePredictor for `sam2`."""

from __future__ import annotations

import numpy as np
import pytest
from sam_family_tiny import phantom, prompt, single_torch_thread, tiny_sam, tiny_sam2  # noqa: F401


def sam():
    from segment_anything import SamPredictor

    from mskbench.segmenters.sam import SamSegmenter

    model = tiny_sam(seed=5)
    return SamSegmenter(model, device="cpu", precision="fp32", variant="tiny"), SamPredictor(model)


def sam2():
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    from mskbench.segmenters.sam2_image import Sam2Segmenter

    model = tiny_sam2(seed=5)
    return Sam2Segmenter(model, device="cpu", precision="fp32", variant="tiny"), SAM2ImagePredictor(model)


def steps(h: int, w: int) -> list:
    box = (0.2 * w, 0.25 * h, 0.7 * w, 0.8 * h)
    return [
        prompt("box", box=box),
        prompt("box+point", box=box, points=[(0.5 * w, 0.5 * h)], point_labels=[0]),
        prompt("box+point", box=box, points=[(0.5 * w, 0.5 * h), (0.3 * w, 0.4 * h)], point_labels=[0, 1]),
        prompt("point", points=[(0.3 * w, 0.4 * h), (0.8 * w, 0.2 * h)], point_labels=[1, 0]),
    ]


@pytest.mark.parametrize("build", [sam, sam2])
def test_rounds_equal_the_upstream_predictor(build):
    segmenter, predictor = build()
    shape = (150, 230)  # non-square
    image = phantom(*shape, seed=7)
    [embedding] = segmenter.encode([image])
    predictor.set_image(np.repeat(image[:, :, None], 3, axis=2))
    ours_previous = upstream_previous = None
    for step in steps(*shape):
        ours = segmenter.refine(embedding, step, ours_previous)
        logits, _, low_res = predictor.predict(
            point_coords=np.array(step.points) if step.points else None,
            point_labels=np.array(step.point_labels) if step.points else None,
            box=None if step.box is None else np.array(step.box),
            mask_input=upstream_previous, multimask_output=False, return_logits=True,
        )
        np.testing.assert_allclose(ours.logits, low_res, rtol=0, atol=1e-4)
        decided = np.abs(logits[0] - segmenter.threshold) > 1e-4
        assert decided.mean() > 0.999
        np.testing.assert_array_equal(ours.mask[decided], (logits[0] > segmenter.threshold)[decided])
        assert ours.mask.shape == shape
        ours_previous, upstream_previous = ours.logits, low_res
    # the feedback is used: the last step without the previous logits differs
    assert not np.array_equal(segmenter.refine(embedding, steps(*shape)[-1], None).logits, ours_previous)

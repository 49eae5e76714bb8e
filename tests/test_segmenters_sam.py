"""The `sam` segmenter equals segment_anything's SamPredictor (small random model, no weights needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sam_family_tiny import assert_same_decision, phantom, prompt, single_torch_thread, tiny_sam  # noqa: F401
from segment_anything import SamPredictor

from mskbench.errors import PluginError
from mskbench.segmenters.sam import SamSegmenter

SHAPES = [(300, 200), (180, 320), (256, 256)]


@pytest.fixture(scope="module")
def model():
    return tiny_sam(seed=3)


@pytest.fixture(scope="module")
def segmenter(model):
    return SamSegmenter(model, device="cpu", precision="fp32", variant="tiny")


@pytest.fixture(scope="module")
def images():
    return [phantom(h, w, seed=i) for i, (h, w) in enumerate(SHAPES)]


@pytest.fixture(scope="module")
def embeddings(segmenter, images):
    return segmenter.encode(images)


@pytest.fixture(scope="module")
def upstream(model, images):
    """One SamPredictor per image, after the documented set_image on the RGB slice."""
    predictors = []
    for image in images:
        predictor = SamPredictor(model)
        predictor.set_image(np.repeat(image[:, :, None], 3, axis=2))
        predictors.append(predictor)
    return predictors


def upstream_scores(predictor: SamPredictor, p) -> np.ndarray:
    """What a user gets from SamPredictor.predict for one prompt, following its documented multimask advice."""
    coords = np.array(p.points) if p.points else None
    labels = np.array(p.point_labels) if p.points else None
    box = np.array(p.box) if p.box is not None else None
    single_click = p.kind == "point" and len(p.points) == 1
    logits, iou, _ = predictor.predict(
        point_coords=coords, point_labels=labels, box=box, multimask_output=single_click, return_logits=True
    )
    return logits[int(np.argmax(iou))] if single_click else logits[0]


def prompts_for(shape: tuple[int, int]) -> list:
    """Several labels and prompters on one slice, every kind, mixed order."""
    h, w = shape
    return [
        prompt("box", 1, box=(10, 20, w // 2, h - 30), prompter="gt_box"),
        prompt("point", 2, points=[(w // 3, h // 3)], point_labels=[1], prompter="click"),
        prompt("box", 2, box=(w // 4, h // 4, w - 1, h - 1), prompter="jitter"),
        prompt("box+point", 1, box=(5, 5, w - 20, h // 2), points=[(w // 2, h // 4)], point_labels=[1], prompter="bp"),
        prompt("point", 3, points=[(w // 2, h // 2), (5, 5)], point_labels=[1, 0], prompter="two_clicks"),
        prompt("box", 3, box=(0, 0, w - 1, h - 1), prompter="gt_box"),
        prompt("box", 4, box=(w // 2, h // 2, w // 2, h // 2), prompter="gt_box"),  # one-pixel box
    ]


def test_encode_equals_set_image(embeddings, upstream, images):
    for embedding, predictor, image in zip(embeddings, upstream, images):
        assert torch.equal(embedding["features"], predictor.features[0])
        assert embedding["original_size"] == image.shape
        assert embedding["input_size"] == predictor.input_size


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
        assert masks.dtype == bool and masks.shape == (len(prompts), *image.shape)
        np.testing.assert_array_equal(masks, scores > 0)
        foreground.extend(masks.reshape(len(prompts), -1).mean(axis=1))
    # the comparison is not vacuous: most masks are neither empty nor full
    assert np.mean([0.02 < f < 0.98 for f in foreground]) > 0.5


def test_decoder_runs_once_per_prompt_layout(segmenter, embeddings, images):
    calls = []
    handle = segmenter.model.mask_decoder.register_forward_hook(lambda *args: calls.append(1))
    try:
        h, w = images[0].shape
        boxes = [prompt("box", label, box=(label, label, w - 1 - label, h - 1), prompter=name)
                 for label in (1, 2, 3) for name in ("gt", "jitter", "detector")]
        segmenter.decode(embeddings[0], boxes)
        assert len(calls) == 1
        calls.clear()
        segmenter.decode(embeddings[0], prompts_for(images[0].shape))
        assert len(calls) == 4  # box, single click, box+point, two clicks
    finally:
        handle.remove()


def test_embedding_survives_torch_save_with_weights_only(segmenter, embeddings, images, tmp_path):
    path = tmp_path / "embedding.pt"
    torch.save(embeddings[1], path)
    loaded = torch.load(path, weights_only=True)
    prompts = prompts_for(images[1].shape)
    np.testing.assert_array_equal(segmenter.decode(loaded, prompts), segmenter.decode(embeddings[1], prompts))
    # one slice's embedding holds only its own features, not the batch it was encoded in
    assert path.stat().st_size < 1.5 * embeddings[1]["features"].numel() * 4


def test_encode_order_and_sizes_survive_mixed_batches(segmenter, images, embeddings):
    again = segmenter.encode([images[2], images[0], images[2]])
    assert torch.equal(again[0]["features"], embeddings[2]["features"])
    assert torch.equal(again[1]["features"], embeddings[0]["features"])
    assert torch.equal(again[2]["features"], embeddings[2]["features"])


def test_empty_prompt_list_gives_no_masks(segmenter, embeddings, images):
    assert segmenter.decode(embeddings[0], []).shape == (0, *images[0].shape)


@pytest.mark.parametrize(
    "bad, message",
    [
        (prompt("none", 1), "does not take none prompts"),
        (prompt("box", 1, box=(50, 10, 40, 20)), "empty box"),
        (prompt("box", 1, box=(0, 0, 200, 100)), "outside"),
        (prompt("point", 1, points=[(10, 400)], point_labels=[1]), "outside"),
        (prompt("box+point", 1, box=(0, 0, 10, 10)), "needs points"),
        (prompt("point", 1, points=[(3, 3)], point_labels=[2]), "needs points"),
    ],
)
def test_bad_prompts_are_one_line_errors(segmenter, embeddings, bad, message):
    with pytest.raises(PluginError, match=message) as info:
        segmenter.decode(embeddings[0], [prompt("box", 1, box=(0, 0, 10, 10)), bad])
    assert "\n" not in str(info.value) and "prompt 1" in str(info.value)


def test_non_uint8_slices_are_rejected(segmenter):
    with pytest.raises(ValueError, match="uint8"):
        segmenter.encode([np.zeros((8, 8), dtype=np.float32)])


def test_describe_records_what_ran(segmenter):
    described = segmenter.describe()
    assert described["architecture"] == "sam" and described["variant"] == "tiny"
    assert described["device"] == "cpu" and described["precision"] == "fp32"
    assert described["checkpoint"] is None and "ResizeLongestSide" in described["preprocessing"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_half_precision_on_cpu_is_refused_with_one_line(model, precision):
    """Issue 12, item 5: not silently run in fp32 under a bf16 config; describe() records what ran."""
    with pytest.raises(PluginError, match=f'precision = "{precision}" runs on CUDA only') as info:
        SamSegmenter(model, device="cpu", precision=precision, variant="tiny")
    assert "\n" not in str(info.value) and 'set precision = "fp32"' in str(info.value)
    assert SamSegmenter(model, device="cpu", precision="fp32", variant="tiny").describe()["precision"] == "fp32"


def test_half_precision_on_cpu_is_refused_before_building_the_model(monkeypatch):
    from segment_anything import sam_model_registry

    monkeypatch.setitem(sam_model_registry, "vit_b", lambda *a, **k: pytest.fail("built before the precision check"))
    with pytest.raises(PluginError, match="runs on CUDA only"):
        SamSegmenter.from_checkpoint("vit_b", "bf16", "cpu", None)

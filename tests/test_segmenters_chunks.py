"""Chunk wiring: several *different* slices of one size share an encoder call, as in every real run.

For `sam`, `samri`, `medsam` and `sam2` (2.0 and 2.1 configs), one ``encode``
call gets five distinct 150x230 slices (with the default ``encode_batch`` of
4: one chunk of 4, then a chunk of 1) interleaved with a slice of the same
height and one of the same width. Each embedding, its sizes, and the masks
decoded from it must equal what the upstream single-image path gives for
*that* slice (``SamPredictor.set_image``, ``SAM2ImagePredictor.set_image``,
MedSAM_Inference.py's steps; SAMRI's stretch first). This is what catches a
chunk returned in the wrong order, every slice of a chunk given the first
slice's features, or slices grouped for encoding by one side only.

A batched encoder call rounds differently in the last bits than a
single-image call, so tensors are compared to a tolerance far below the
difference between two slices (checked: the slices' own embeddings differ by
orders of magnitude more), and masks with :func:`assert_same_decision`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam_family_tiny import assert_same_decision, phantom, prompt, single_torch_thread, tiny_sam, tiny_sam2  # noqa: F401
from segment_anything import SamPredictor
from test_segmenters_medsam import published_embedding, published_probabilities
from test_segmenters_samri import samri_nii_preprocess

from mskbench.segmenters.medsam import MedSamSegmenter
from mskbench.segmenters.sam import SamriSegmenter, SamSegmenter
from mskbench.segmenters.sam2_image import Sam2Segmenter
from mskbench.segmenters.sam_catalog import sam2_config

HEIGHT, WIDTH = 150, 230
#: tolerance on embeddings, batched call vs single-image call (bit-identical on one CPU thread; not promised)
ATOL = 1e-5


def slices() -> list[np.ndarray]:
    """Five distinct HEIGHT x WIDTH slices and two that share only one side, interleaved."""
    same = [phantom(HEIGHT, WIDTH, seed=100 + i) for i in range(5)]
    same_height, same_width = phantom(HEIGHT, 190, seed=110), phantom(120, WIDTH, seed=111)
    return [same[0], same_height, same[1], same[2], same_width, same[3], same[4]]


def rgb(image: np.ndarray) -> np.ndarray:
    return np.repeat(image[:, :, None], 3, axis=2)


@dataclass
class Reference:
    """Upstream's single-image result for one slice: its embedding tensors, sizes, and a decoder for prompts."""

    tensors: dict[str, torch.Tensor]
    sizes: dict[str, tuple[int, int]]
    scores: Callable[[object], np.ndarray]


def sam_reference(model, image: np.ndarray, stretch: bool) -> Reference:
    predictor = SamPredictor(model)
    predictor.set_image(samri_nii_preprocess(image) if stretch else rgb(image))

    def scores(p):
        logits, _, _ = predictor.predict(
            point_coords=np.array(p.points) if p.points else None,
            point_labels=np.array(p.point_labels) if p.points else None,
            box=np.array(p.box), multimask_output=False, return_logits=True,
        )
        return logits[0]

    sizes = {"original_size": tuple(predictor.original_size), "input_size": tuple(predictor.input_size)}
    return Reference({"features": predictor.features[0]}, sizes, scores)


def medsam_reference(model, image: np.ndarray) -> Reference:
    embed = published_embedding(model, image)
    return Reference(
        {"features": embed[0]}, {"original_size": image.shape},
        lambda p: published_probabilities(model, embed, p.box, *image.shape),
    )


def sam2_reference(model, image: np.ndarray) -> Reference:
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(rgb(image))
    features = predictor._features
    tensors = {"image_embed": features["image_embed"][0]}
    tensors.update({f"high_res_feats_{i}": level[0] for i, level in enumerate(features["high_res_feats"])})

    def scores(p):
        logits, _, _ = predictor.predict(
            point_coords=np.array(p.points) if p.points else None,
            point_labels=np.array(p.point_labels) if p.points else None,
            box=np.array(p.box), multimask_output=False, return_logits=True,
        )
        return logits[0]

    return Reference(tensors, {"original_size": tuple(predictor._orig_hw[0])}, scores)


def build(name: str):
    """(segmenter, reference function, threshold) for one model on a small random network."""
    if name in ("sam", "samri"):
        model = tiny_sam(seed=6)
        cls = SamSegmenter if name == "sam" else SamriSegmenter
        return cls(model, device="cpu", precision="fp32", variant="tiny"), (
            lambda image: sam_reference(model, image, stretch=name == "samri")
        ), 0.0
    if name == "medsam":
        model = tiny_sam(seed=7)
        return MedSamSegmenter(model, device="cpu", precision="fp32", variant="tiny"), (
            lambda image: medsam_reference(model, image)
        ), 0.5
    version = name.removeprefix("sam")
    model = tiny_sam2(seed=8, config=sam2_config(version, "tiny"))
    return Sam2Segmenter(model, device="cpu", precision="fp32", variant="tiny"), (
        lambda image: sam2_reference(model, image)
    ), 0.0


def prompts_for(name: str, shape: tuple[int, int]) -> list:
    h, w = shape
    boxes = [prompt("box", 1, box=(10, 12, w // 2, h - 20)), prompt("box", 2, box=(w // 3, h // 4, w - 1, h - 1))]
    if name == "medsam":
        return boxes
    return boxes + [prompt("box+point", 3, box=(5, 5, w - 30, h // 2), points=[(w // 3, h // 4)], point_labels=[1])]


#: MedSAM's published cubic resize to 1024² and SAM 2's Hiera make 14 encodes take 10-20 s: marked slow
SLOW = pytest.mark.slow


@pytest.fixture(scope="module", params=[
    "sam", "samri", pytest.param("medsam", marks=SLOW), pytest.param("sam2.0", marks=SLOW),
    pytest.param("sam2.1", marks=SLOW),
])
def case(request):
    name = request.param
    segmenter, reference, threshold = build(name)
    images = slices()
    calls = []
    hook = segmenter.model.image_encoder.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    try:
        embeddings = segmenter.encode(images)
    finally:
        hook.remove()
    references = [reference(image) for image in images]
    return name, segmenter, images, embeddings, references, threshold, calls


def test_chunks_are_four_plus_one_and_one_per_other_size(case):
    *_, calls = case
    assert sorted(calls) == [1, 1, 1, 4]


def test_each_slice_of_a_chunk_gets_its_own_embedding(case):
    name, segmenter, images, embeddings, references, _, _ = case
    assert len(embeddings) == len(images)
    for index, (image, embedding, reference) in enumerate(zip(images, embeddings, references)):
        for key, size in reference.sizes.items():
            assert tuple(embedding[key]) == size, (name, index, key)
        for key, tensor in reference.tensors.items():
            got = embedding[key]
            assert got.shape == tensor.shape, (name, index, key)
            torch.testing.assert_close(got, tensor, rtol=0, atol=ATOL, msg=f"{name} slice {index} {key}")
    # the tolerance is meaningful: distinct slices' embeddings are far apart
    first = next(iter(references[0].tensors))
    assert (embeddings[0][first] - embeddings[2][first]).abs().max() > 1000 * ATOL


def test_masks_decoded_from_chunked_embeddings_equal_upstream(case):
    name, segmenter, images, embeddings, references, threshold, _ = case
    for index, (image, embedding, reference) in enumerate(zip(images, embeddings, references)):
        prompts = prompts_for(name, image.shape)
        scores = segmenter.decode_scores(embedding, prompts)
        assert scores.shape == (len(prompts), *image.shape), (name, index)
        expected = np.stack([reference.scores(p) for p in prompts])
        assert_same_decision(scores, expected, threshold)

"""SAM (segment-anything ViT-B/L/H) and SAMRI as mskbench segmenters, run through ``SamPredictor``.

Encoding is ``SamPredictor.set_image`` for a batch: RGB uint8, its
``ResizeLongestSide`` transform, then ``set_torch_image`` (pixel mean/std,
pad to 1024, image encoder). Decoding restores the predictor's state from the
embedding and calls its batched ``predict_torch``, so masks are those of
``SamPredictor.predict`` with the same prompt (checked in
tests/test_segmenters_sam.py).

SAMRI (Wang et al., https://github.com/wangzhaomxy/SAMRI) fine-tunes only
SAM ViT-B's mask decoder on MRI and runs inference through the same
``SamPredictor``; its headline prompt is a box plus one interior point.
Following SAMRI's own code (``utils/dataloader.py`` ``NiiDataset._preprocess``,
``utils/visual.py``, ``inference.py`` ``run_predict``), the ``samri``
segmenter differs from ``sam`` in two ways: each slice is stretched to
[0, 255] on its own before ``set_image`` (:func:`samri_stretch`), and every
prompt, a single click included, is decoded with ``multimask_output=False``.
"""

from __future__ import annotations

import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from mskbench.protocols import Refinement
from mskbench.segmenters.prompt_batch import SAM_PROMPTS, PromptGroup, check_prompts
from mskbench.segmenters.sam_catalog import sam_checkpoint_key, samri_checkpoint_key
from mskbench.segmenters.sam_family import (
    Embedding,
    PromptableSegmenter,
    pick_masks,
    sam_decoder_logits,
    sam_from_checkpoint,
    to_rgb,
)
from mskbench.segmenters.torch_utils import inference_context, to_device
from mskbench.types import Prompt

class SamSegmenter(PromptableSegmenter):
    """SAM through its own predictor; see the module docstring. Interactive: :meth:`refine`."""

    supported_prompts = SAM_PROMPTS
    feedback = frozenset({"logits"})
    architecture = "sam"
    preprocessing = "segment_anything.SamPredictor: RGB, ResizeLongestSide(1024), pixel mean/std, pad"

    def __init__(self, model: Sam, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.predictor = SamPredictor(self.model)
        self._encoder = SamPredictor(self.model)  # encode's own state: see PromptableSegmenter.concurrent_encode
        self.threshold = float(model.mask_threshold)

    @classmethod
    def from_checkpoint(cls, variant: str, precision: str, device: str, checkpoint: str | None) -> SamSegmenter:
        """The plugin factory path: upstream builder, then the verified checkpoint."""
        return sam_from_checkpoint(cls, variant, sam_checkpoint_key(variant), f"SAM {variant}", variant, precision,
                                   device, checkpoint)

    def _model_image(self, image: np.ndarray) -> np.ndarray:
        """One slice as the RGB uint8 image ``set_image`` takes (SAMRI stretches it first)."""
        return to_rgb(image)

    def _resized_batch(self, images: list[np.ndarray]) -> torch.Tensor:
        """Equally sized slices as the uint8 NCHW batch ``set_torch_image`` takes (``ResizeLongestSide``)."""
        resized = np.stack([self.predictor.transform.apply_image(self._model_image(image)) for image in images])
        return to_device(torch.from_numpy(resized), self.device).permute(0, 3, 1, 2).contiguous()

    def trainable_embeddings(self, images: list[np.ndarray]) -> list[Embedding]:
        """Embeddings of equally sized slices with gradients, for `mskbench train`'s full mode: the image encoder
        on the input ``set_torch_image`` computes (mean/std, pad); the dicts of :meth:`encode`, left on the device."""
        batch = self._resized_batch(images)
        features = self.model.image_encoder(self.model.preprocess(batch))
        original_size, input_size = tuple(int(v) for v in images[0].shape), tuple(int(v) for v in batch.shape[-2:])
        return [{"features": item, "original_size": original_size, "input_size": input_size} for item in features]

    def _encode_batch(self, images: list[np.ndarray]) -> list[Embedding]:
        predictor = self._encoder
        batch = self._resized_batch(images)
        original_size = tuple(int(v) for v in images[0].shape)
        predictor.set_torch_image(batch, original_size)
        features, input_size = predictor.features.cpu(), tuple(int(v) for v in predictor.input_size)
        predictor.reset_image()
        # clone: a view would drag the whole batch's storage into each cached embedding
        return [
            {"features": item.clone(), "original_size": original_size, "input_size": input_size}
            for item in features
        ]

    def _restore(self, embedding: Embedding) -> tuple[int, int]:
        """Put the predictor in the state ``set_image`` left it in for this slice."""
        predictor = self.predictor
        original_size = tuple(int(v) for v in embedding["original_size"])
        predictor.features = embedding["features"][None].to(self.device)
        predictor.original_size = original_size
        predictor.input_size = tuple(int(v) for v in embedding["input_size"])
        predictor.is_image_set = True
        return original_size

    def refine(self, embedding: Embedding, prompt: Prompt, previous: np.ndarray | None) -> Refinement:
        """One interactive step: ``SamPredictor.predict(points, labels, box, mask_input=previous, multimask_output=False)``.

        ``previous`` is the 1×256×256 low-resolution logits of the previous
        step, returned here as :attr:`Refinement.logits`.
        """
        check_prompts([prompt], self.supported_prompts, tuple(int(v) for v in embedding["original_size"]), self.architecture)
        predictor, device = self.predictor, self.device
        original_size = self._restore(embedding)
        coords = labels = box = mask_input = None  # as SamPredictor.predict builds them, kept in float32 under autocast
        if prompt.points:
            points = predictor.transform.apply_coords(np.asarray(prompt.points, dtype=np.float64), original_size)
            coords = torch.as_tensor(points, dtype=torch.float, device=device)[None]
            labels = torch.as_tensor(np.asarray(prompt.point_labels), dtype=torch.int, device=device)[None]
        if prompt.box is not None:
            boxes = predictor.transform.apply_boxes(np.asarray(prompt.box, dtype=np.float64), original_size)
            box = torch.as_tensor(boxes, dtype=torch.float, device=device)[None]
        if previous is not None:
            mask_input = torch.as_tensor(previous, dtype=torch.float, device=device)[None]
        try:
            with inference_context(device, self.precision):
                scores, _, low_res = predictor.predict_torch(
                    coords, labels, box, mask_input, multimask_output=False, return_logits=True
                )
        finally:
            predictor.reset_image()
        scores, low_res = scores[0].float().cpu().numpy(), low_res[0].float().cpu().numpy()
        return Refinement(scores[0] > self.threshold, low_res.astype(np.float32))

    def low_res_logits(self, embedding: Embedding, points: np.ndarray | None, point_labels: np.ndarray | None,
                       boxes: np.ndarray | None) -> torch.Tensor:
        """The decoder's (n, 1, 256, 256) logits for n prompts in the slice's pixels, with gradients (training).

        The steps of ``SamPredictor.predict_torch`` with ``multimask_output=False``, the predictor's own
        prompt transforms, and ``embedding["features"]`` (C, h, w) as given, so a trained image encoder's
        output keeps its graph.
        """
        model: Sam = self.model  # type: ignore[assignment]
        transform, original_size = self.predictor.transform, tuple(int(v) for v in embedding["original_size"])
        sparse_points = box_torch = None
        if points is not None:
            coords = torch.as_tensor(transform.apply_coords(points, original_size), dtype=torch.float, device=self.device)
            sparse_points = (coords, torch.as_tensor(point_labels, dtype=torch.int, device=self.device))
        if boxes is not None:
            box_torch = torch.as_tensor(transform.apply_boxes(boxes, original_size), dtype=torch.float, device=self.device)
        return sam_decoder_logits(model, embedding["features"].to(self.device), sparse_points, box_torch, None)

    def full_size_logits(self, low_res: torch.Tensor, embedding: Embedding) -> torch.Tensor:
        """Low-resolution logits at the slice's size, as the predictor maps them (``Sam.postprocess_masks``)."""
        return self.model.postprocess_masks(low_res, tuple(int(v) for v in embedding["input_size"]),
                                            tuple(int(v) for v in embedding["original_size"]))

    def _decode_group(self, embedding: Embedding, group: PromptGroup) -> np.ndarray:
        predictor, device = self.predictor, self.device
        original_size = self._restore(embedding)
        coords = labels = boxes = None
        if group.points is not None:
            coords = torch.as_tensor(
                predictor.transform.apply_coords(group.points, original_size), dtype=torch.float, device=device
            )
            labels = torch.as_tensor(group.point_labels, dtype=torch.int, device=device)
        if group.boxes is not None:
            boxes = torch.as_tensor(
                predictor.transform.apply_boxes(group.boxes, original_size), dtype=torch.float, device=device
            )
        multimask = self._multimask(group)
        try:
            logits, iou_predictions, _ = predictor.predict_torch(
                coords, labels, boxes, multimask_output=multimask, return_logits=True
            )
        finally:
            predictor.reset_image()
        return pick_masks(logits.float().cpu().numpy(), iou_predictions.float().cpu().numpy(), multimask)


def samri_stretch(image: np.ndarray) -> np.ndarray:
    """SAMRI's per-slice intensity stretch (``NiiDataset._preprocess``): min-max to [0, 1] with a
    1e-8 guard, times 255, rounded half to even, uint8. A uniform slice becomes all zeros."""
    values = image.astype(np.float64)
    low, high = values.min(), values.max()
    return np.round((values - low) / (high - low + 1e-8) * 255).astype(np.uint8)


class SamriSegmenter(SamSegmenter):
    """SAMRI: SAM ViT-B with an MRI-tuned mask decoder, through ``SamPredictor`` with SAMRI's own conventions."""

    architecture = "samri"
    single_click_multimask = False  # SAMRI predicts with multimask_output=False for every prompt
    preprocessing = (
        "SAMRI NiiDataset: per-slice min-max stretch to [0, 255] (round); then " + SamSegmenter.preprocessing
    )

    def _model_image(self, image: np.ndarray) -> np.ndarray:
        return to_rgb(samri_stretch(image))

    @classmethod
    def from_checkpoint(cls, variant: str, precision: str, device: str, checkpoint: str | None) -> SamriSegmenter:
        return sam_from_checkpoint(cls, "vit_b", samri_checkpoint_key(variant), "SAM vit_b (SAMRI)", variant,
                                   precision, device, checkpoint)

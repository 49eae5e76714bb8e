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
"""

from __future__ import annotations

import numpy as np
import torch
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import Sam

from mskbench.segmenters.prompt_batch import SAM_PROMPTS, PromptGroup
from mskbench.segmenters.sam_catalog import sam_checkpoint_key, samri_checkpoint_key
from mskbench.segmenters.sam_family import (
    Embedding,
    PromptableSegmenter,
    load_weights,
    pick_masks,
    to_rgb,
)

class SamSegmenter(PromptableSegmenter):
    """SAM through its own predictor; see the module docstring."""

    supported_prompts = SAM_PROMPTS
    architecture = "sam"
    preprocessing = "segment_anything.SamPredictor: RGB, ResizeLongestSide(1024), pixel mean/std, pad"

    def __init__(self, model: Sam, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.predictor = SamPredictor(self.model)
        self.threshold = float(model.mask_threshold)

    @classmethod
    def from_checkpoint(cls, variant: str, precision: str, device: str, checkpoint: str | None) -> SamSegmenter:
        """The plugin factory path: upstream builder, then the verified checkpoint."""
        model = sam_model_registry[variant]()
        weights = load_weights(model, sam_checkpoint_key(variant), checkpoint, arch=f"SAM {variant}")
        return cls(model, device=device, precision=precision, variant=variant, weights=weights)

    def _encode_batch(self, images: list[np.ndarray]) -> list[Embedding]:
        predictor = self.predictor
        resized = np.stack([predictor.transform.apply_image(to_rgb(image)) for image in images])
        batch = torch.as_tensor(resized, device=self.device).permute(0, 3, 1, 2).contiguous()
        original_size = tuple(int(v) for v in images[0].shape)
        predictor.set_torch_image(batch, original_size)
        features, input_size = predictor.features.cpu(), tuple(int(v) for v in predictor.input_size)
        predictor.reset_image()
        # clone: a view would drag the whole batch's storage into each cached embedding
        return [
            {"features": item.clone(), "original_size": original_size, "input_size": input_size}
            for item in features
        ]

    def _decode_group(self, embedding: Embedding, group: PromptGroup) -> np.ndarray:
        predictor, device = self.predictor, self.device
        original_size = tuple(int(v) for v in embedding["original_size"])
        predictor.features = embedding["features"][None].to(device)
        predictor.original_size = original_size
        predictor.input_size = tuple(int(v) for v in embedding["input_size"])
        predictor.is_image_set = True
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
        try:
            logits, iou_predictions, _ = predictor.predict_torch(
                coords, labels, boxes, multimask_output=group.multimask, return_logits=True
            )
        finally:
            predictor.reset_image()
        return pick_masks(logits.float().cpu().numpy(), iou_predictions.float().cpu().numpy(), group.multimask)


class SamriSegmenter(SamSegmenter):
    """SAMRI: SAM ViT-B with an MRI-tuned mask decoder, same predictor and prompt conventions."""

    architecture = "samri"

    @classmethod
    def from_checkpoint(cls, variant: str, precision: str, device: str, checkpoint: str | None) -> SamriSegmenter:
        model = sam_model_registry["vit_b"]()
        weights = load_weights(model, samri_checkpoint_key(variant), checkpoint, arch="SAM vit_b (SAMRI)")
        return cls(model, device=device, precision=precision, variant=variant, weights=weights)

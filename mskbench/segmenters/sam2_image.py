"""SAM 2 / SAM 2.1 image models (Hiera tiny/small/base+/large) run through ``SAM2ImagePredictor``.

The model is built by ``sam2.build_sam.build_sam2`` from the packaged hydra
config (with its default post-processing overrides). Encoding is
``SAM2ImagePredictor.set_image_batch`` (its own ``SAM2Transforms``: square
resize, ImageNet mean/std; backbone features plus ``no_mem_embed``);
decoding restores the predictor's features and calls its batched ``predict``,
so coordinates, the box-as-two-points encoding, mask post-processing and the
threshold are upstream's own.
"""

from __future__ import annotations

import numpy as np
from sam2.build_sam import build_sam2
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor

from mskbench.protocols import Refinement
from mskbench.segmenters.prompt_batch import SAM_PROMPTS, PromptGroup, check_prompts
from mskbench.segmenters.sam_catalog import sam2_checkpoint_key, sam2_config
from mskbench.segmenters.sam_family import Embedding, PromptableSegmenter, load_weights, pick_masks, to_rgb
from mskbench.segmenters.torch_utils import check_precision, inference_context
from mskbench.types import Prompt

_HIGH_RES_KEYS = ("high_res_feats_0", "high_res_feats_1")


class Sam2Segmenter(PromptableSegmenter):
    """SAM 2 through its own image predictor; see the module docstring. Interactive: :meth:`refine`."""

    supported_prompts = SAM_PROMPTS
    feedback = frozenset({"logits"})
    architecture = "sam2"
    preprocessing = "sam2.SAM2ImagePredictor: RGB, SAM2Transforms (square resize, ImageNet mean/std)"

    def __init__(self, model: SAM2Base, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.predictor = SAM2ImagePredictor(self.model)
        self.threshold = float(self.predictor.mask_threshold)

    @classmethod
    def from_checkpoint(
        cls, version: str, variant: str, precision: str, device: str, checkpoint: str | None
    ) -> Sam2Segmenter:
        check_precision(device, precision, cls.architecture)
        config = sam2_config(version, variant)
        model = build_sam2(config, ckpt_path=None, device="cpu")
        weights = load_weights(model, sam2_checkpoint_key(version, variant), checkpoint, arch=config)
        return cls(model, device=device, precision=precision, variant=f"{version}/{variant}", weights=weights)

    def _encode_batch(self, images: list[np.ndarray]) -> list[Embedding]:
        predictor = self.predictor
        predictor.set_image_batch([to_rgb(image) for image in images])
        features = predictor._features
        image_embed = features["image_embed"].cpu()
        high_res = [level.cpu() for level in features["high_res_feats"]]
        predictor.reset_predictor()
        original_size = tuple(int(v) for v in images[0].shape)
        return [
            {
                "image_embed": image_embed[i].clone(),
                **{key: level[i].clone() for key, level in zip(_HIGH_RES_KEYS, high_res)},
                "original_size": original_size,
            }
            for i in range(len(images))
        ]

    def _restore(self, embedding: Embedding) -> None:
        """The predictor's state after set_image, restored from the cached embedding."""
        predictor, device = self.predictor, self.device
        predictor._features = {
            "image_embed": embedding["image_embed"][None].to(device),
            "high_res_feats": [embedding[key][None].to(device) for key in _HIGH_RES_KEYS],
        }
        predictor._orig_hw = [tuple(int(v) for v in embedding["original_size"])]
        predictor._is_image_set, predictor._is_batch = True, False

    def refine(self, embedding: Embedding, prompt: Prompt, previous: np.ndarray | None) -> Refinement:
        """One interactive step: ``SAM2ImagePredictor.predict(points, labels, box, mask_input=previous,
        multimask_output=False)``; ``previous`` is the 1×256×256 low-resolution logits of the last step."""
        check_prompts([prompt], self.supported_prompts, tuple(int(v) for v in embedding["original_size"]), self.architecture)
        predictor = self.predictor
        self._restore(embedding)
        try:
            with inference_context(self.device, self.precision):
                logits, _, low_res = predictor.predict(
                    point_coords=np.asarray(prompt.points, dtype=np.float32) if prompt.points else None,
                    point_labels=np.asarray(prompt.point_labels) if prompt.points else None,
                    box=None if prompt.box is None else np.asarray(prompt.box, dtype=np.float32),
                    mask_input=previous,
                    multimask_output=False,
                    return_logits=True,
                )
        finally:
            predictor.reset_predictor()
        return Refinement(logits[0] > self.threshold, np.asarray(low_res, dtype=np.float32))

    def _decode_group(self, embedding: Embedding, group: PromptGroup) -> np.ndarray:
        predictor = self.predictor
        self._restore(embedding)
        multimask = self._multimask(group)
        try:
            logits, iou_predictions, _ = predictor.predict(
                point_coords=group.points,
                point_labels=group.point_labels,
                box=group.boxes,
                multimask_output=multimask,
                return_logits=True,
            )
        finally:
            predictor.reset_predictor()
        # predict() drops the prompt axis when there is one prompt
        n = len(group.indices)
        logits = logits.reshape(n, -1, *logits.shape[-2:])
        return pick_masks(logits, iou_predictions.reshape(n, -1), multimask)

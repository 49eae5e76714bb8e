"""SAM 2 / SAM 2.1 image models (Hiera tiny/small/base+/large) run through ``SAM2ImagePredictor``.

The model is built by ``sam2.build_sam.build_sam2`` from the packaged hydra
config (with its default post-processing overrides). Encoding is
``SAM2ImagePredictor.set_image_batch`` (its own ``SAM2Transforms``: square
resize, ImageNet mean/std; backbone features plus ``no_mem_embed``);
decoding restores the predictor's features and calls its batched ``predict``,
so coordinates, the box-as-two-points encoding, mask post-processing and the
threshold are upstream's own.

:class:`Sam2MedsamInput` (the ``sam2`` plugin's ``input_convention =
"medsam"``) runs the same weights with MedSAM's recipe instead
(:mod:`mskbench.segmenters.medsam`): the recipe's 1024² [0, 1] image, no
mean/std, prompts scaled by ``/ [W, H] * 1024`` (which is what
``SAM2Transforms.transform_coords`` already does), ``multimask_output=False``,
and sigmoid -> bilinear -> > 0.5 on the low-resolution logits.
"""

from __future__ import annotations

import numpy as np
import torch
from sam2.build_sam import build_sam2  # noqa: F401 (architecture.sam2_model builds through this name)
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor

from mskbench.protocols import Refinement
from mskbench.segmenters.medsam import MEDSAM_THRESHOLD, medsam_image, medsam_probabilities
from mskbench.segmenters.prompt_batch import SAM_PROMPTS, PromptGroup, check_prompts
from mskbench.segmenters.sam_catalog import sam2_checkpoint_key, sam2_config
from mskbench.segmenters.sam_family import (
    Embedding,
    PromptableSegmenter,
    load_card_architecture,
    pick_masks,
    to_rgb,
)
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
        self._encoder = SAM2ImagePredictor(self.model)  # encode's own state: see PromptableSegmenter.concurrent_encode
        self.threshold = float(self.predictor.mask_threshold)

    @classmethod
    def from_checkpoint(
        cls, version: str, variant: str, precision: str, device: str, checkpoint: str | None
    ) -> Sam2Segmenter:
        from mskbench.segmenters.architecture import sam2_model

        check_precision(device, precision, cls.architecture)
        config = sam2_config(version, variant)
        model, weights = load_card_architecture(lambda architecture: sam2_model(config, architecture),
                                                sam2_checkpoint_key(version, variant), checkpoint, config)
        return cls(model, device=device, precision=precision, variant=f"{version}/{variant}", weights=weights)

    def _model_inputs(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """The slices as the images ``set_image_batch`` takes (RGB uint8; MedSAM's recipe: its [0, 1] image)."""
        return [to_rgb(image) for image in images]

    def _encode_batch(self, images: list[np.ndarray]) -> list[Embedding]:
        return self._encode_inputs(self._model_inputs(images), images[0].shape)

    def trainable_embeddings(self, images: list[np.ndarray]) -> list[Embedding]:
        """Embeddings of equally sized slices with gradients, for `mskbench train`: ``set_image_batch``'s own
        steps (upstream's function without its ``no_grad``), features left on the device."""
        return self._encode_inputs(self._model_inputs(images), images[0].shape, with_grad=True)

    def _encode_inputs(self, inputs: list[np.ndarray], slice_shape: tuple[int, ...],
                       with_grad: bool = False) -> list[Embedding]:
        """``set_image_batch`` on the model inputs; embeddings remember the slice's own size."""
        predictor = self._encoder
        if with_grad:
            type(predictor).set_image_batch.__wrapped__(predictor, inputs)
        else:
            predictor.set_image_batch(inputs)
        keep = (lambda tensor: tensor) if with_grad else (lambda tensor: tensor.cpu())
        features = predictor._features
        image_embed = keep(features["image_embed"])
        high_res = [keep(level) for level in features["high_res_feats"]]
        predictor.reset_predictor()
        original_size = tuple(int(v) for v in slice_shape)
        return [
            {
                "image_embed": image_embed[i].clone(),
                **{key: level[i].clone() for key, level in zip(_HIGH_RES_KEYS, high_res)},
                "original_size": original_size,
            }
            for i in range(len(inputs))
        ]

    def low_res_logits(self, embedding: Embedding, points: np.ndarray | None, point_labels: np.ndarray | None,
                       boxes: np.ndarray | None) -> torch.Tensor:
        """The decoder's (n, 1, 256, 256) logits with gradients, for `mskbench train`: the predictor's own prompt
        transforms and ``_predict`` (upstream's function without its ``no_grad``), ``multimask_output=False``."""
        predictor = self.predictor
        self._restore(embedding)
        try:
            _, coords, labels, box = predictor._prep_prompts(points, point_labels, boxes, None, normalize_coords=True)
            _, _, low_res = type(predictor)._predict.__wrapped__(
                predictor, coords, labels, box, None, multimask_output=False, return_logits=True
            )
        finally:
            predictor.reset_predictor()
        return low_res

    def full_size_logits(self, low_res: torch.Tensor, embedding: Embedding) -> torch.Tensor:
        """Low-resolution logits at the slice's size, as the predictor maps them (``postprocess_masks``)."""
        return self.predictor._transforms.postprocess_masks(low_res, tuple(int(v) for v in embedding["original_size"]))

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


class _AlreadyPrepared(torch.nn.Module):
    """Stands in for ``SAM2Transforms.transforms`` when the image is already the model's input (float32 cast only)."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image.float()


class Sam2MedsamInput(Sam2Segmenter):
    """SAM 2 weights through MedSAM's recipe; see the module docstring.

    Upstream's predictor still runs the encoder, prompt encoding and decoder;
    only its image transform is replaced (the recipe's image is already
    1024² in [0, 1]) and its output step (the recipe takes the sigmoid before
    resizing, upstream resizes logits).
    """

    threshold = MEDSAM_THRESHOLD
    single_click_multimask = False  # the recipe decodes with multimask_output=False
    preprocessing = (
        "MedSAM_Inference recipe on SAM 2: 3ch, skimage cubic resize to 1024^2, uint8, min-max [0,1]; "
        "prompts/[W,H]*1024; multimask_output=False; sigmoid, bilinear, > 0.5"
    )

    def __init__(self, model: SAM2Base, **kwargs) -> None:
        super().__init__(model, **kwargs)
        self.threshold = MEDSAM_THRESHOLD
        self._encoder._transforms.transforms = _AlreadyPrepared()

    def _model_inputs(self, images: list[np.ndarray]) -> list[np.ndarray]:
        size = self.predictor.model.image_size
        return [medsam_image(image, size) for image in images]

    def full_size_logits(self, low_res: torch.Tensor, embedding: Embedding) -> torch.Tensor:
        """The logits of the recipe's probabilities (sigmoid, then bilinear), clamped 1e-6 from 0 and 1."""
        height, width = (int(v) for v in embedding["original_size"])
        return torch.logit(medsam_probabilities(low_res, height, width), eps=1e-6)

    def _probabilities(self, low_res: np.ndarray, n: int, embedding: Embedding) -> torch.Tensor:
        height, width = (int(v) for v in embedding["original_size"])
        logits = torch.as_tensor(np.asarray(low_res, dtype=np.float32)).reshape(n, 1, *low_res.shape[-2:])
        return medsam_probabilities(logits, height, width)[:, 0]

    def refine(self, embedding: Embedding, prompt: Prompt, previous: np.ndarray | None) -> Refinement:
        step = super().refine(embedding, prompt, previous)
        probabilities = self._probabilities(step.logits, 1, embedding)[0].numpy()
        return Refinement(probabilities > self.threshold, step.logits)

    def _decode_group(self, embedding: Embedding, group: PromptGroup) -> np.ndarray:
        predictor = self.predictor
        self._restore(embedding)
        try:
            _, _, low_res = predictor.predict(
                point_coords=group.points, point_labels=group.point_labels, box=group.boxes,
                multimask_output=False, return_logits=True,
            )
        finally:
            predictor.reset_predictor()
        return self._probabilities(low_res, len(group.indices), embedding).numpy()

"""MedSAM's published inference recipe, for MedSAM's weights and, as ``input_convention = "medsam"``, SAM's.

MedSAM does not use ``SamPredictor``. Its ``MedSAM_Inference.py`` (Ma et al.,
https://github.com/bowang-lab/MedSAM) does, and so does this module:

- image: grayscale repeated to 3 channels; ``skimage.transform.resize`` to
  1024 x 1024 (order 3, preserve_range, anti_aliasing), cast to uint8,
  min-max scaled to [0, 1] per image; no mean/std, no padding; straight
  into the image encoder;
- box: ``box / [W, H, W, H] * 1024``, with the box exactly as recorded.
  The published script reads integer boxes only (``int()`` of each number
  typed on its command line; ``int("95.5")`` is an error, not a
  truncation), so it sets no rule for the fractional boxes of ``jitter_box``
  and detectors. They are passed unrounded, as ``sam``, ``sam2`` and
  ``samri`` receive them, so every model of a cell gets the very same box
  (truncating would move each box by up to a pixel, always towards the
  origin, for MedSAM alone). Integer boxes give exactly the published result;
- output: 256 x 256 logits -> sigmoid -> bilinear to H x W -> > 0.5.

MedSAM was trained on boxes only, so boxes are all the ``medsam`` model
takes. SAM weights run through the same recipe (:class:`SamMedsamInput`,
the ``sam`` plugin's ``input_convention = "medsam"``) also take points,
scaled like the box corners (``point / [W, H] * 1024``; the recipe has no
points of its own), with every prompt decoded with ``multimask_output=False``
as the recipe decodes boxes, and refine from their previous low-resolution
logits as ``mask_input``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.modeling import Sam
from skimage import transform

from mskbench.protocols import Refinement
from mskbench.segmenters.prompt_batch import BOX_PROMPTS, SAM_PROMPTS, PromptGroup, check_prompts
from mskbench.segmenters.sam_catalog import MEDSAM_CHECKPOINT_KEY, sam_checkpoint_key
from mskbench.segmenters.sam_family import (
    Embedding,
    PromptableSegmenter,
    sam_decoder_logits,
    sam_from_checkpoint,
    to_rgb,
)
from mskbench.segmenters.torch_utils import inference_context, to_device
from mskbench.types import Prompt

#: the recipe's probability threshold (``medsam_inference``), also used by ``sam2``'s medsam convention.
MEDSAM_THRESHOLD = 0.5


def medsam_image(image: np.ndarray, size: int) -> np.ndarray:
    """MedSAM's image preprocessing: (size, size, 3) float64 in [0, 1]."""
    resized = transform.resize(
        to_rgb(image), (size, size), order=3, preserve_range=True, anti_aliasing=True
    ).astype(np.uint8)
    low, high = resized.min(), resized.max()
    return (resized - low) / np.clip(high - low, a_min=1e-8, a_max=None)


def medsam_probabilities(low_res_logits: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The recipe's output step: sigmoid first, then bilinear to the slice's size (not the other way round)."""
    return F.interpolate(torch.sigmoid(low_res_logits), size=(height, width), mode="bilinear", align_corners=False)


def to_model_space(coords: np.ndarray, height: int, width: int, size: int) -> np.ndarray:
    """Pixel (x, y) coordinates of the original slice, as the recipe scales its box: ``/ [W, H] * size``."""
    return coords / np.array([width, height]) * size


class MedsamRecipeSegmenter(PromptableSegmenter):
    """A SAM-architecture model run through MedSAM's published steps; see the module docstring."""

    threshold = MEDSAM_THRESHOLD  # on sigmoid probabilities, as medsam_inference
    single_click_multimask = False  # the recipe decodes with multimask_output=False

    @property
    def _size(self) -> int:
        model: Sam = self.model  # type: ignore[assignment]
        return model.image_encoder.img_size

    def encoder_input(self, images: list[np.ndarray]) -> torch.Tensor:
        """The image encoder's input for equally sized slices (the recipe's resize and [0, 1] scaling)."""
        batch = np.stack([medsam_image(image, self._size) for image in images])
        # contiguous NCHW: a channels-last view sends the patch-embedding conv down another kernel
        return to_device(torch.tensor(batch).float().permute(0, 3, 1, 2).contiguous(), self.device)

    def trainable_embeddings(self, images: list[np.ndarray]) -> list[Embedding]:
        """Embeddings with gradients, for `mskbench train`'s full mode; features left on the device."""
        original_size = tuple(int(v) for v in images[0].shape)
        return [{"features": item, "original_size": original_size}
                for item in self.model.image_encoder(self.encoder_input(images))]

    def _encode_batch(self, images: list[np.ndarray]) -> list[Embedding]:
        features = self.model.image_encoder(self.encoder_input(images)).cpu()
        original_size = tuple(int(v) for v in images[0].shape)
        return [{"features": item.clone(), "original_size": original_size} for item in features]

    def low_res_logits(self, embedding: Embedding, points: np.ndarray | None, point_labels: np.ndarray | None,
                       boxes: np.ndarray | None) -> torch.Tensor:
        """The decoder's (n, 1, 256, 256) logits with gradients, for `mskbench train`."""
        return self._low_res_logits(embedding, points, point_labels, boxes, None)

    def full_size_logits(self, low_res: torch.Tensor, embedding: Embedding) -> torch.Tensor:
        """The logits of the recipe's probabilities at the slice's size (sigmoid, then bilinear), so a training
        loss sees exactly the map inference thresholds at 0.5 (clamped 1e-6 from 0 and 1)."""
        height, width = (int(v) for v in embedding["original_size"])
        return torch.logit(medsam_probabilities(low_res, height, width), eps=1e-6)

    def _low_res_logits(
        self, embedding: Embedding, points: np.ndarray | None, point_labels: np.ndarray | None,
        boxes: np.ndarray | None, mask_input: torch.Tensor | None,
    ) -> torch.Tensor:
        """The decoder's (n, 1, 256, 256) logits for n prompts given in the slice's pixels."""
        model: Sam = self.model  # type: ignore[assignment]
        height, width = (int(v) for v in embedding["original_size"])
        sparse_points = box_torch = None
        if points is not None:
            coords = to_model_space(points, height, width, self._size)
            sparse_points = (
                torch.as_tensor(coords, dtype=torch.float, device=self.device),
                torch.as_tensor(point_labels, dtype=torch.int, device=self.device),
            )
        if boxes is not None:
            box_1024 = boxes / np.array([width, height, width, height]) * self._size
            box_torch = torch.as_tensor(box_1024, dtype=torch.float, device=self.device)[:, None, :]
        return sam_decoder_logits(model, embedding["features"].to(self.device), sparse_points, box_torch, mask_input)

    def _decode_group(self, embedding: Embedding, group: PromptGroup) -> np.ndarray:
        height, width = (int(v) for v in embedding["original_size"])
        logits = self._low_res_logits(embedding, group.points, group.point_labels, group.boxes, None)
        return medsam_probabilities(logits, height, width)[:, 0].float().cpu().numpy()

    def refine(self, embedding: Embedding, prompt: Prompt, previous: np.ndarray | None) -> Refinement:
        """One interactive step: all clicks so far (and the box), the previous 1×256×256 logits as mask input."""
        height, width = (int(v) for v in embedding["original_size"])
        check_prompts([prompt], self.supported_prompts, (height, width), self.architecture)
        points = np.asarray(prompt.points, dtype=np.float64)[None] if prompt.points else None
        labels = np.asarray(prompt.point_labels)[None] if prompt.points else None
        boxes = None if prompt.box is None else np.asarray(prompt.box, dtype=np.float64)[None]
        mask_input = None if previous is None else torch.as_tensor(previous, dtype=torch.float, device=self.device)[None]
        with inference_context(self.device, self.precision):
            logits = self._low_res_logits(embedding, points, labels, boxes, mask_input)
            probabilities = medsam_probabilities(logits.float(), height, width)
        mask = probabilities[0, 0].float().cpu().numpy() > self.threshold
        return Refinement(mask, logits[0].float().cpu().numpy().astype(np.float32))


class MedSamSegmenter(MedsamRecipeSegmenter):
    """MedSAM's weights through its published steps; boxes only, as it was trained."""

    supported_prompts = BOX_PROMPTS
    architecture = "medsam"
    preprocessing = "MedSAM_Inference: 3ch, skimage cubic resize to 1024^2, uint8, min-max [0,1]; box/[W,H,W,H]*1024"

    @classmethod
    def from_checkpoint(cls, precision: str, device: str, checkpoint: str | None) -> MedSamSegmenter:
        return sam_from_checkpoint(cls, "vit_b", MEDSAM_CHECKPOINT_KEY, "SAM vit_b (MedSAM)", "vit_b", precision,
                                   device, checkpoint)


class SamMedsamInput(MedsamRecipeSegmenter):
    """SAM's weights through MedSAM's recipe (``sam`` with ``input_convention = "medsam"``); boxes and points."""

    supported_prompts = SAM_PROMPTS
    feedback = frozenset({"logits"})
    architecture = "sam"
    preprocessing = MedSamSegmenter.preprocessing + "; points/[W,H]*1024; multimask_output=False"

    @classmethod
    def from_checkpoint(cls, variant: str, precision: str, device: str, checkpoint: str | None) -> SamMedsamInput:
        return sam_from_checkpoint(cls, variant, sam_checkpoint_key(variant), f"SAM {variant}", variant, precision,
                                   device, checkpoint)

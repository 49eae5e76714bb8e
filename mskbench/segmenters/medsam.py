"""MedSAM (MedSAM ViT-B weights on SAM code) with MedSAM's own published inference recipe.

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

MedSAM was trained on boxes only, so boxes are all it takes here.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything import sam_model_registry
from segment_anything.modeling import Sam
from skimage import transform

from mskbench.segmenters.prompt_batch import BOX_PROMPTS, PromptGroup
from mskbench.segmenters.sam_catalog import MEDSAM_CHECKPOINT_KEY
from mskbench.segmenters.sam_family import Embedding, PromptableSegmenter, load_weights, to_rgb
from mskbench.segmenters.torch_utils import check_precision

def medsam_image(image: np.ndarray, size: int) -> np.ndarray:
    """MedSAM's image preprocessing: (size, size, 3) float64 in [0, 1]."""
    resized = transform.resize(
        to_rgb(image), (size, size), order=3, preserve_range=True, anti_aliasing=True
    ).astype(np.uint8)
    low, high = resized.min(), resized.max()
    return (resized - low) / np.clip(high - low, a_min=1e-8, a_max=None)


class MedSamSegmenter(PromptableSegmenter):
    """MedSAM through its published inference steps; see the module docstring."""

    supported_prompts = BOX_PROMPTS
    architecture = "medsam"
    threshold = 0.5  # on sigmoid probabilities, as medsam_inference
    preprocessing = "MedSAM_Inference: 3ch, skimage cubic resize to 1024^2, uint8, min-max [0,1]; box/[W,H,W,H]*1024"

    @classmethod
    def from_checkpoint(cls, precision: str, device: str, checkpoint: str | None) -> MedSamSegmenter:
        check_precision(device, precision, cls.architecture)
        model = sam_model_registry["vit_b"]()
        weights = load_weights(model, MEDSAM_CHECKPOINT_KEY, checkpoint, arch="SAM vit_b (MedSAM)")
        return cls(model, device=device, precision=precision, variant="vit_b", weights=weights)

    @property
    def _size(self) -> int:
        model: Sam = self.model  # type: ignore[assignment]
        return model.image_encoder.img_size

    def _encode_batch(self, images: list[np.ndarray]) -> list[Embedding]:
        batch = np.stack([medsam_image(image, self._size) for image in images])
        # contiguous NCHW: a channels-last view sends the patch-embedding conv down another kernel
        tensor = torch.tensor(batch).float().permute(0, 3, 1, 2).contiguous().to(self.device)
        features = self.model.image_encoder(tensor).cpu()
        original_size = tuple(int(v) for v in images[0].shape)
        return [{"features": item.clone(), "original_size": original_size} for item in features]

    def _decode_group(self, embedding: Embedding, group: PromptGroup) -> np.ndarray:
        model: Sam = self.model  # type: ignore[assignment]
        height, width = (int(v) for v in embedding["original_size"])
        assert group.boxes is not None  # MedSAM takes boxes only (checked before grouping)
        box_1024 = group.boxes / np.array([width, height, width, height]) * self._size
        box_torch = torch.as_tensor(box_1024, dtype=torch.float, device=self.device)[:, None, :]
        sparse, dense = model.prompt_encoder(points=None, boxes=box_torch, masks=None)
        logits, _ = model.mask_decoder(
            image_embeddings=embedding["features"][None].to(self.device),
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=False,
        )
        probabilities = F.interpolate(torch.sigmoid(logits), size=(height, width), mode="bilinear", align_corners=False)
        return probabilities[:, 0].float().cpu().numpy()

"""`segmentanybone`: SegmentAnyBone as a volume model that runs slice by slice, as its released inference does.

Per subject (mazurowski-lab/SegmentAnyBone ``demo.ipynb`` ``predictVolume``):
the raw intensities are clipped to their 1st-99th percentiles and scaled to
0..1; the depth network (MONAI's ``VNet``, ``atten.pth``) turns the volume
resampled to 64³ into a bone probability; per slice the probability slab
around it becomes a 64×64 attention map that gates the image embedding
(:mod:`mskbench.segmenters.segmentanybone_preprocess`), and the decoder's bone
channel, thresholded at 0 and resized to the slice by nearest neighbour, is
the slice's mask. The slicing axis is the plan's (upstream slices along the
file's third voxel axis).

Labels: the model knows one class, bone. Automatic mode (the ``none``
prompter) writes it to the one evaluated bone label (several bone labels must
be merged in the suite, as the model cannot tell them apart). Prompted mode
(box / point / box+point on a slice) writes each prompt's mask to the
prompt's label, on the prompt's slice only; prompts are scaled to the
1024×1024 frame the slice is stretched to, as upstream's non-square resize.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from mskbench.errors import PluginError
from mskbench.protocols import VolumeInput
from mskbench.segmenters.prompt_batch import check_prompts, group_prompts
from mskbench.segmenters.sam_family import Weights, load_weights
from mskbench.segmenters.segmentanybone_net import RELEASED, SegmentAnyBoneNet
from mskbench.segmenters.segmentanybone_preprocess import (
    IMAGE_SIZE,
    attention_map,
    depth_input,
    normalise_volume,
    slice_image,
)
from mskbench.segmenters.torch_utils import torch_device
from mskbench.types import Prompt, TissueClass

MODEL_NAME = "segmentanybone"
PROMPTS = frozenset({"none", "box", "point", "box+point"})
NET_KEY, DEPTH_KEY = "segmentanybone", "segmentanybone_depth"
NET_ARCH, DEPTH_ARCH = "SegmentAnyBone", "SegmentAnyBone depth-attention VNet"


def depth_network() -> torch.nn.Module:
    """The depth branch as upstream builds it: ``monai.networks.nets.VNet()`` with its defaults."""
    from monai.networks.nets import VNet

    return VNet()


def bone_label(volume: VolumeInput) -> int:
    """The one evaluated bone label automatic mode writes to; none or several is one line."""
    bones = [label for label in volume.labels if volume.label_tissues.get(label) == TissueClass.BONE]
    if len(bones) != 1:
        names = ", ".join(volume.label_names.get(label, str(label)) for label in bones) or "none"
        raise PluginError(
            f"model '{MODEL_NAME}' in automatic mode segments one class, bone, and needs exactly one evaluated bone "
            f"label (evaluated bone labels: {names}); merge them in the suite (merge = {{ bone = [\"bone\"] }}) "
            "or use a box or point prompter, whose prompts name the bone"
        )
    return bones[0]


class SegmentAnyBone:
    """See the module docstring; ``net`` and ``depth_net`` are built modules (tests pass small ones)."""

    supported_prompts = PROMPTS

    def __init__(self, net: SegmentAnyBoneNet, depth_net: torch.nn.Module, device: str = "cpu",
                 weights: tuple[Weights, Weights] = (Weights(), Weights())) -> None:
        self.device = torch_device(device)
        self.net = net.to(self.device).eval()
        self.depth_net = depth_net.to(self.device).eval()
        self.weights = weights

    @classmethod
    def from_checkpoints(cls, device: str, checkpoint: str | None, depth_checkpoint: str | None) -> SegmentAnyBone:
        net, depth_net = SegmentAnyBoneNet(RELEASED), depth_network()
        weights = (load_weights(net, NET_KEY, checkpoint, NET_ARCH),
                   load_weights(depth_net, DEPTH_KEY, depth_checkpoint, DEPTH_ARCH))
        return cls(net, depth_net, device, weights)

    def describe(self) -> dict[str, Any]:
        net, depth = self.weights
        return {"name": MODEL_NAME, "checkpoint": net.path, "checkpoint_sha256": net.sha256,
                "depth_checkpoint": depth.path, "depth_checkpoint_sha256": depth.sha256}

    @torch.no_grad()
    def predict(self, volume: VolumeInput, prompts: Sequence[Prompt]) -> np.ndarray:
        source = volume.raw if volume.raw is not None else volume.image
        stack = normalise_volume(np.moveaxis(np.asarray(source, dtype=np.float32), volume.axis, -1))
        depth = stack.shape[2]
        probability = torch.sigmoid(self.depth_net(depth_input(stack).to(self.device)))[0, 0].float().cpu().numpy()
        labels = np.zeros(stack.shape, dtype=np.int32)
        if prompts:
            for index, own in _by_slice(prompts, depth).items():
                check_prompts(own, PROMPTS - {"none"}, stack.shape[:2], MODEL_NAME)
                masks = self._prompted(stack, index, self._attention(probability, index, depth), own)
                for prompt, mask in zip(own, masks):
                    labels[:, :, index][mask] = prompt.label
        else:
            label = bone_label(volume)
            for index in range(depth):
                embedding = self._embed(stack, index)
                logits = self.net.decode(embedding, self._attention(probability, index, depth))
                labels[:, :, index][_to_slice(logits[0], stack.shape[:2])] = label
        return np.moveaxis(labels, -1, volume.axis)

    def _embed(self, stack: np.ndarray, index: int) -> torch.Tensor:
        return self.net.image_encoder(slice_image(stack, index)[None].to(self.device))

    def _attention(self, probability: np.ndarray, index: int, depth: int) -> torch.Tensor:
        return torch.from_numpy(attention_map(probability, index, depth)).float()[None].to(self.device)

    def _prompted(self, stack: np.ndarray, index: int, gate: torch.Tensor, prompts: Sequence[Prompt]) -> list[np.ndarray]:
        """One mask per prompt of one slice; prompts of one token layout share a decoder call."""
        embedding = self._embed(stack, index)
        rows, cols = stack.shape[:2]
        scale = np.array([IMAGE_SIZE / cols, IMAGE_SIZE / rows])
        masks: list[np.ndarray] = [np.zeros((rows, cols), bool)] * len(prompts)
        for group in group_prompts(prompts):
            n = len(group.indices)
            boxes = points = None
            if group.boxes is not None:
                boxes = torch.as_tensor(group.boxes.reshape(n, 2, 2) * scale, dtype=torch.float32).reshape(n, 4)
            if group.points is not None:
                points = (torch.as_tensor(group.points * scale, dtype=torch.float32).to(self.device),
                          torch.as_tensor(group.point_labels, dtype=torch.int64).to(self.device))
            logits = self.net.decode(embedding.expand(n, -1, -1, -1), gate.expand(n, -1, -1), points=points,
                                     boxes=None if boxes is None else boxes.to(self.device))
            for i, where in enumerate(group.indices):
                masks[where] = _to_slice(logits[i], (rows, cols))
        return masks


def _by_slice(prompts: Sequence[Prompt], depth: int) -> dict[int, list[Prompt]]:
    """Prompts grouped by the slice they lie on; a prompt without a slice is a harness bug named in one line."""
    grouped: dict[int, list[Prompt]] = {}
    for prompt in prompts:
        if prompt.slice_index is None or not 0 <= prompt.slice_index < depth:
            raise PluginError(
                f"model '{MODEL_NAME}': a {prompt.kind} prompt for label {prompt.label} has slice_index "
                f"{prompt.slice_index}; a prompt must lie on one of the volume's {depth} slices"
            )
        grouped.setdefault(prompt.slice_index, []).append(prompt)
    return grouped


def _to_slice(logits: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """Logits > 0 resized to the slice by nearest neighbour (upstream: PIL NEAREST of the 256² mask)."""
    mask = (logits > 0).cpu().numpy().astype(np.uint8)
    return np.asarray(Image.fromarray(mask, "L").resize((shape[1], shape[0]), Image.Resampling.NEAREST)) > 0

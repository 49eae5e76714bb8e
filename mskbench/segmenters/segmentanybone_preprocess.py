"""SegmentAnyBone's preprocessing and depth-attention map, as its released inference code does them.

Written from a reading of mazurowski-lab/SegmentAnyBone ``demo.ipynb``
(``predictVolume``: percentile clipping of the volume), ``predict_funs.py``
(``torch_percentile``, ``pred_attention`` with its ``prob_rescale`` and
``view_attention_2d``, ``evaluate_1_volume_withattention``) and ``funcs.py``
(``min_max_normalize``). Arrays here hold the slicing axis last, as upstream's
torchio volumes do (slices are ``volume[:, :, k]``).

Upstream's 64³ resampling is torchio's ``Resize``; here it is trilinear
interpolation with voxel centres aligned the same way (``align_corners=False``),
which differs from torchio's SimpleITK resampler only within half a voxel of
the volume's faces.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

DEPTH_GRID = 64  # the depth network's input is resampled to 64³
SLAB_HALF = 8  # slices [s - 8, s + 8) of the 64³ prediction around the current slice
SLAB_THRESHOLD = 0.1  # probabilities at or below it do not count towards the slab sum
IMAGE_SIZE = 1024
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DARK_MEAN = 0.1  # a slice darker than this on average gets gamma 0.8
DARK_GAMMA = 0.8


def percentile_value(values: np.ndarray, percentile: float) -> float:
    """Upstream's ``torch_percentile``: the k-th smallest value, k = 1 + round(p/100 * (n - 1))."""
    flat = values.reshape(-1)
    k = 1 + round(0.01 * float(percentile) * (flat.size - 1))
    return float(np.partition(flat, k - 1)[k - 1])


def normalise_volume(volume: np.ndarray, lower: float = 1, upper: float = 99) -> np.ndarray:
    """Clip to the volume's ``lower`` and ``upper`` percentiles and scale to 0..1 (float32)."""
    low, high = percentile_value(volume, lower), percentile_value(volume, upper)
    if high <= low:
        return np.zeros(volume.shape, dtype=np.float32)
    return ((np.clip(volume, low, high) - low) / (high - low)).astype(np.float32)


def depth_input(volume01: np.ndarray) -> torch.Tensor:
    """The depth network's input (1, 1, 64, 64, 64): resampled, then (x - 0.5) / 0.5."""
    tensor = torch.from_numpy(np.ascontiguousarray(volume01, dtype=np.float32))[None, None]
    resized = F.interpolate(tensor, size=(DEPTH_GRID,) * 3, mode="trilinear", align_corners=False)
    return (resized - 0.5) / 0.5


def slab_bounds(slice_index: int, depth: int) -> tuple[int, int]:
    """The half-open range of 64³ slices summed for ``slice_index`` of ``depth``: clipped at the ends."""
    centre = int(slice_index * DEPTH_GRID / depth)
    return max(centre - SLAB_HALF, 0), min(centre + SLAB_HALF, DEPTH_GRID)


def rescale_probability(prob: np.ndarray, x_thres: float = 0.05, y_thres: float = 0.8, eps: float = 1e-3) -> np.ndarray:
    """Upstream's ``prob_rescale``: 0 up to ``eps``, ×16 up to 0.05 (to 0.8), then linearly to 1 at 1."""
    out = np.zeros_like(prob)
    low = (prob > eps) & (prob <= x_thres)
    high = prob > x_thres
    out[low] = prob[low] * (y_thres / x_thres)
    out[high] = (prob[high] - x_thres) * ((1 - y_thres) / (1 - x_thres)) + y_thres
    return out


def attention_map(probability: np.ndarray, slice_index: int, depth: int) -> np.ndarray:
    """(64, 64) attention for one slice from the sigmoid output (64, 64, 64) of the depth network.

    The slab's probabilities above 0.1 are summed through the slab, divided
    by their maximum (+1e-8) and rescaled by :func:`rescale_probability`.
    """
    start, stop = slab_bounds(slice_index, depth)
    slab = np.where(probability[:, :, start:stop] > SLAB_THRESHOLD, probability[:, :, start:stop], 0)
    summed = slab.sum(axis=2)
    return rescale_probability(summed / (summed.max() + 1e-8))


def slice_image(volume01: np.ndarray, slice_index: int) -> torch.Tensor:
    """The encoder's input (3, 1024, 1024) for one slice, as ``evaluate_1_volume_withattention`` makes it.

    The slice is min-max scaled to uint8 (truncating), made RGB, resized
    bilinearly to 1024², clipped to its 1st and 99th percentiles (``funcs.min_max_normalize``),
    brightened with gamma 0.8 when its mean is under 0.1, and normalised
    with ImageNet's mean and standard deviation.
    """
    peak = float(volume01.max())
    plane = volume01[:, :, slice_index] / (peak if peak > 0 else 1.0)
    span = plane.max() - plane.min()
    grey = np.array((plane - plane.min()) / (span + 1e-5) * 255, dtype=np.uint8)
    rgb = Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2), "RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
    image = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)
    image = image.clamp(torch.quantile(image, 0.01).item(), torch.quantile(image, 0.99).item())
    if image.mean() < DARK_MEAN:
        low, span = image.min(), image.max() - image.min()
        image = ((image - low) / (span + 1e-7)) ** DARK_GAMMA * span + low
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    return (image - mean) / std

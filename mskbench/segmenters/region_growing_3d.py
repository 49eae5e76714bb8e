"""`region_growing_3d`: a weight-free 3D volume baseline, automatic from a box3d and interactive with 3D clicks.

Per label: the 3D box is its extent along the slicing axis × its 2D box.

- foreground samples: cubes of half-width ``point_radius`` around positive
  clicks and the central third of the 2D box on the box's key slice;
  background samples: cubes around negative clicks and the shell of
  ``margin`` voxels around the 3D box;
- the region is the 3D box plus cubes of half-width 2 × ``margin`` around
  positive clicks outside it (such a click claims its neighbourhood);
- a voxel of the region is a candidate when its intensity is closer to the
  foreground median than to the background median (without background
  samples: within ``tolerance`` × the foreground samples' standard deviation
  + 1); foreground samples are always candidates;
- the mask is the 6-connected candidate components holding a foreground
  sample, with the cubes around negative clicks removed.

It takes no previous prediction (``feedback`` is empty): each round re-grows
from the box and every click so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from mskbench.errors import PluginError
from mskbench.protocols import Refinement, VolumeInput
from mskbench.segmenters.one_shot import predict_by_refining
from mskbench.types import Prompt

VOLUME_PROMPTS = frozenset({"box3d", "point"})


class RegionGrowing3D:
    """3D baseline; see the module docstring."""

    supported_prompts = VOLUME_PROMPTS
    feedback: frozenset[str] = frozenset()

    def __init__(self, margin: int = 5, point_radius: int = 1, tolerance: float = 2.5,
                 device: str = "cpu", checkpoint: str | None = None) -> None:
        self.margin, self.point_radius, self.tolerance = int(margin), int(point_radius), float(tolerance)

    def predict(self, volume: VolumeInput, prompts: Sequence[Prompt]) -> np.ndarray:
        """Each label grown once from all its prompts, as round 0 of :meth:`refine`."""
        return predict_by_refining(self, volume, prompts)

    def refine(self, volume: VolumeInput, prompts: Sequence[Prompt], previous: np.ndarray | None) -> Refinement:
        image, axis = volume.image.astype(np.float32), volume.axis
        boxes = [p for p in prompts if p.kind == "box3d"]
        for p in prompts:
            if p.kind not in VOLUME_PROMPTS:
                raise PluginError(f"region_growing_3d takes box3d and point prompts, got '{p.kind}'")
        clicks = [(self._voxel(p, axis, x, y), label) for p in prompts if p.kind == "point"
                  for (x, y), label in zip(p.points, p.point_labels)]
        box = self._box(boxes[0], axis, image.shape) if boxes else None
        fg = np.zeros(image.shape, dtype=bool)
        bg = np.zeros(image.shape, dtype=bool)
        for voxel, label in clicks:
            (fg if label == 1 else bg)[self._ball(image.shape, voxel, self.point_radius)] = True
        region = None
        if box is not None:
            region = box.copy()
            for voxel, label in clicks:
                if label == 1 and not box[voxel]:  # a positive click outside the box claims its neighbourhood
                    region[self._ball(image.shape, voxel, 2 * self.margin)] = True
            bg |= ndimage.binary_dilation(box, iterations=self.margin) & ~region if self.margin else False
            fg |= self._core(boxes[0], axis, image.shape)
        if not fg.any():
            return Refinement(np.zeros(image.shape, dtype=bool))
        fg_mean = float(np.median(image[fg]))
        if bg.any():
            bg_mean = float(np.median(image[bg]))
            candidate = np.abs(image - fg_mean) < np.abs(image - bg_mean)
        else:
            candidate = np.abs(image - fg_mean) <= self.tolerance * float(image[fg].std()) + 1.0
        if region is not None:
            candidate &= region
        candidate |= fg
        for voxel, label in clicks:
            if label == 0:
                candidate[self._ball(image.shape, voxel, self.point_radius)] = False
        components, _ = ndimage.label(candidate)
        keep = np.unique(components[fg & candidate])
        return Refinement(np.isin(components, keep[keep > 0]))

    @staticmethod
    def _voxel(prompt: Prompt, axis: int, x: float, y: float) -> tuple[int, int, int]:
        rest = iter((int(round(y)), int(round(x))))
        return tuple(int(prompt.slice_index) if a == axis else next(rest) for a in range(3))

    @staticmethod
    def _box(prompt: Prompt, axis: int, shape: tuple[int, ...]) -> np.ndarray:
        box = np.zeros(shape, dtype=bool)
        x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
        ranges = iter((slice(y0, y1 + 1), slice(x0, x1 + 1)))
        first, last = prompt.extent
        box[tuple(slice(first, last + 1) if a == axis else next(ranges) for a in range(3))] = True
        return box

    def _core(self, prompt: Prompt, axis: int, shape: tuple[int, ...]) -> np.ndarray:
        core = np.zeros(shape, dtype=bool)
        x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
        h, w = y1 - y0 + 1, x1 - x0 + 1
        ranges = iter((slice(y0 + h // 3, y1 + 1 - h // 3), slice(x0 + w // 3, x1 + 1 - w // 3)))
        k = int(prompt.slice_index)
        core[tuple(slice(k, k + 1) if a == axis else next(ranges) for a in range(3))] = True
        return core

    @staticmethod
    def _ball(shape: tuple[int, ...], voxel: tuple[int, int, int], r: int) -> tuple[slice, ...]:
        return tuple(slice(max(v - r, 0), min(v + r + 1, n)) for v, n in zip(voxel, shape))

    def describe(self) -> dict[str, Any]:
        return {
            "name": "region_growing_3d", "architecture": type(self).__name__, "checkpoint": None, "checkpoint_sha256": None,
            "dtype": "uint8", "device": "cpu", "preprocessing": "none",
            "params": {"margin": self.margin, "point_radius": self.point_radius, "tolerance": self.tolerance},
        }

"""`random_walker_clicks`: a weight-free interactive 2D baseline (scikit-image's random walker).

Seeds per refine step, inside a region of interest (the box grown by
``margin`` pixels, plus every click with the same margin; the whole slice
without a box):

- background: the ROI outside the box, except within 2 × ``margin`` of a
  positive click outside it; negative clicks (discs of ``point_radius``);
- foreground: positive clicks; with no positive click, the central third of
  the box (the prompt's claim that the object is inside it, as in GrabCut);
- the previous mask (``feedback``): its pixels farther than ``band`` pixels
  from its boundary and from every click keep their label, so a round
  re-decides only the band around the old boundary and the clicked places.

No foreground seed gives an empty mask; no background seed makes the ROI's
border background. The random walker runs with ``beta`` on the ROI scaled to
[0, 1] (scikit-image's default beta is 130), solved directly (``mode =
"bf"``: a slice ROI is small, and the iterative solvers are 20-100× slower there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from mskbench.errors import PluginError
from mskbench.protocols import Refinement
from mskbench.segmenters.baselines import clip_box
from mskbench.types import Prompt

CLICK_PROMPTS = frozenset({"box", "point", "box+point"})
FOREGROUND, BACKGROUND = 1, 2


def _disc(shape: tuple[int, int], row: int, col: int, radius: int) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - row) ** 2 + (cols - col) ** 2 <= radius * radius


class RandomWalkerClicks:
    """Interactive slice baseline; see the module docstring."""

    supported_prompts = CLICK_PROMPTS
    feedback = frozenset({"mask"})

    def __init__(self, beta: float = 130.0, margin: int = 10, point_radius: int = 2, band: int = 3,
                 device: str = "cpu", checkpoint: str | None = None) -> None:
        self.beta, self.margin, self.point_radius, self.band = float(beta), int(margin), int(point_radius), int(band)

    def encode(self, images: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
        return [{"image": np.asarray(image)} for image in images]

    def decode(self, embedding: dict[str, np.ndarray], prompts: Sequence[Prompt]) -> np.ndarray:
        shape = embedding["image"].shape
        return np.stack([self.refine(embedding, p, None).mask for p in prompts]) if prompts else np.zeros((0, *shape), bool)

    def refine(self, embedding: dict[str, np.ndarray], prompt: Prompt, previous: np.ndarray | None) -> Refinement:
        image = embedding["image"]
        if prompt.kind not in CLICK_PROMPTS:
            raise PluginError(f"random_walker_clicks takes box, point or box+point prompts, got '{prompt.kind}'")
        box = None if prompt.box is None else clip_box(prompt.box, image.shape)
        clicks = [(int(round(y)), int(round(x)), label) for (x, y), label in zip(prompt.points, prompt.point_labels)]
        roi = self._roi(image.shape, box, clicks)
        seeds = self._seeds(image.shape, box, clicks, previous)[roi]
        mask = np.zeros(image.shape, dtype=bool)
        if not (seeds == FOREGROUND).any():
            return Refinement(mask)
        if not (seeds == BACKGROUND).any():
            border = np.ones(seeds.shape, dtype=bool)
            border[1:-1, 1:-1] = False
            seeds[border & (seeds == 0)] = BACKGROUND
        mask[roi] = self._walk(image[roi], seeds)
        return Refinement(mask)

    def _roi(self, shape: tuple[int, int], box, clicks) -> tuple[slice, slice]:
        if box is None and not clicks:
            return (slice(0, shape[0]), slice(0, shape[1]))
        rows = [r for r, _, _ in clicks] + ([box[1], box[3]] if box else [])
        cols = [c for _, c, _ in clicks] + ([box[0], box[2]] if box else [])
        m = 3 * self.margin  # positive clicks free 2 × margin around them, plus margin of context
        return (slice(max(min(rows) - m, 0), min(max(rows) + m, shape[0] - 1) + 1),
                slice(max(min(cols) - m, 0), min(max(cols) + m, shape[1] - 1) + 1))

    def _seeds(self, shape: tuple[int, int], box, clicks, previous: np.ndarray | None) -> np.ndarray:
        seeds = np.zeros(shape, dtype=np.int32)
        if box is not None:
            x0, y0, x1, y1 = box
            seeds[:] = BACKGROUND
            seeds[y0 : y1 + 1, x0 : x1 + 1] = 0
            for row, col, label in clicks:
                if label == 1 and not (x0 <= col <= x1 and y0 <= row <= y1):  # claims its neighbourhood
                    seeds[_disc(shape, row, col, 2 * self.margin)] = 0
        if previous is not None and previous.any():
            far = np.ones(shape, dtype=bool)
            for row, col, _ in clicks:
                far &= ~_disc(shape, row, col, 3 * self.band + self.point_radius)
            inside = ndimage.distance_transform_edt(previous) > self.band
            outside = ndimage.distance_transform_edt(~previous) > self.band
            seeds[inside & far] = FOREGROUND
            seeds[outside & far & (seeds == 0)] = BACKGROUND
        if box is not None and not any(label == 1 for _, _, label in clicks) and previous is None:
            x0, y0, x1, y1 = box
            h, w = y1 - y0 + 1, x1 - x0 + 1
            seeds[y0 + h // 3 : y1 + 1 - h // 3, x0 + w // 3 : x1 + 1 - w // 3] = FOREGROUND
        for row, col, label in clicks:
            seeds[_disc(shape, row, col, self.point_radius)] = FOREGROUND if label == 1 else BACKGROUND
        return seeds

    def _walk(self, image: np.ndarray, seeds: np.ndarray) -> np.ndarray:
        from skimage.segmentation import random_walker

        data = image.astype(np.float64)
        span = data.max() - data.min()
        data = (data - data.min()) / span if span > 0 else np.zeros_like(data)
        return random_walker(data, seeds, beta=self.beta, mode="bf") == FOREGROUND

    def describe(self) -> dict[str, Any]:
        return {
            "name": "random_walker_clicks", "architecture": type(self).__name__, "checkpoint": None, "checkpoint_sha256": None,
            "dtype": "uint8", "device": "cpu", "preprocessing": "none",
            "params": {"beta": self.beta, "margin": self.margin, "point_radius": self.point_radius, "band": self.band},
        }

"""Box geometry in the prompt convention: (x_min, y_min, x_max, y_max), inclusive, x = column.

An inclusive box of integer pixel indices covers the continuous extent
[x_min, x_max + 1) × [y_min, y_max + 1); IoU and the YOLO conversion use
that extent, so a one-pixel box has area 1 and a tight box of a mask has the
mask's bounding-rectangle area.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Box = tuple[float, float, float, float]


def tight_box(mask: np.ndarray) -> Box | None:
    """The smallest inclusive box holding every True pixel; None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (float(cols[0]), float(rows[0]), float(cols[-1]), float(rows[-1]))


def clip_box(box: Box, shape: tuple[int, int]) -> tuple[Box, bool]:
    """Clip a box to the pixel indices of an image of ``shape`` (H, W); report whether it changed.

    A box lying wholly outside the image collapses onto the nearest edge
    pixels rather than vanishing, so a prompt is never lost to clipping.
    """
    height, width = shape
    x_min, y_min, x_max, y_max = box
    clipped_box = (
        float(np.clip(x_min, 0, width - 1)),
        float(np.clip(y_min, 0, height - 1)),
        float(np.clip(x_max, 0, width - 1)),
        float(np.clip(y_max, 0, height - 1)),
    )
    return clipped_box, clipped_box != tuple(float(v) for v in box)


def box_area(box: Box) -> float:
    """Area of the continuous extent of an inclusive box."""
    x_min, y_min, x_max, y_max = box
    return max(0.0, x_max + 1 - x_min) * max(0.0, y_max + 1 - y_min)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two inclusive boxes (continuous extents)."""
    inter_w = min(a[2], b[2]) + 1 - max(a[0], b[0])
    inter_h = min(a[3], b[3]) + 1 - max(a[1], b[1])
    inter = max(0.0, inter_w) * max(0.0, inter_h)
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def to_continuous(box: Box) -> Box:
    """Corner coordinates (x0, y0, x1, y1) of the area an inclusive box covers, as detectors use."""
    x_min, y_min, x_max, y_max = box
    return (x_min, y_min, x_max + 1, y_max + 1)


def from_continuous(corners: Sequence[float]) -> Box:
    """The inclusive box of continuous corners; a box narrower than a pixel keeps one pixel."""
    x0, y0, x1, y1 = (float(v) for v in corners)
    return (x0, y0, max(x0, x1 - 1), max(y0, y1 - 1))

"""Point prompts inside (positive) and around (negative) a target mask.

Points are pixel centres, (x, y) = (column, row). Positive strategies:

- ``centroid_snapped``: the mask's centre of mass, moved to the nearest mask
  pixel when it falls outside (a crescent's centroid lies in the hole).
- ``dt_max``: the mask pixel farthest from the background (maximum of the
  Euclidean distance transform), the most interior point.
- ``random_interior``: distinct mask pixels drawn uniformly with the
  prompter's generator.
- ``raster_middle``: SAMRI's ``gen_points`` (wangzhaomxy/SAMRI,
  ``utils/utils.py``): the mask's pixels are listed in raster order (as
  ``np.nonzero`` lists them, row by row) and the point is drawn uniformly
  from ranks ``int(0.45 n)`` to ``int(0.55 n)`` inclusive, n = the mask's
  pixel count, so it lands at random in the middle tenth of the mask. SAMRI
  draws with Python's ``random.randint``; here the prompter's generator
  draws the same distribution. More than one point: distinct pixels from
  that window (fewer when the window is smaller).

For the two deterministic strategies, every further point is the mask pixel
farthest from the background *and* from the points already placed (the
maximum of the distance transform with those pixels removed), which spreads
the points through the structure. Ties go to the first pixel in raster order.
A mask with fewer pixels than requested points gives one point per pixel.
"""

from __future__ import annotations

import numpy as np

from mskbench.errors import PluginError
from mskbench.prompting.boxes import Box

POINT_STRATEGIES: tuple[str, ...] = ("centroid_snapped", "dt_max", "random_interior", "raster_middle")
Point = tuple[float, float]


def _xy(flat_index: int, width: int) -> Point:
    row, col = divmod(int(flat_index), width)
    return (float(col), float(row))


def snapped_centroid(mask: np.ndarray) -> Point:
    """Centre of mass of the mask, snapped to the nearest mask pixel (Euclidean)."""
    from scipy import ndimage

    row, col = (int(round(v)) for v in ndimage.center_of_mass(mask))
    if not mask[row, col]:
        _, (rows, cols) = ndimage.distance_transform_edt(~mask, return_indices=True)
        row, col = int(rows[row, col]), int(cols[row, col])
    return (float(col), float(row))


def _farthest_interior(mask: np.ndarray, taken: list[Point]) -> Point:
    """The mask pixel farthest from background and from the taken points."""
    from scipy import ndimage

    free = mask.copy()
    for x, y in taken:
        free[int(y), int(x)] = False
    # Pad so the image border counts as background: a mask touching the edge
    # should not put its "most interior" point on the edge.
    distance = ndimage.distance_transform_edt(np.pad(free, 1))[1:-1, 1:-1]
    return _xy(int(np.argmax(distance)), mask.shape[1])


def raster_middle_window(mask: np.ndarray) -> np.ndarray:
    """Flat indices of the mask pixels SAMRI's ``gen_points`` draws from: raster ranks int(0.45 n)..int(0.55 n)."""
    pixels = np.flatnonzero(mask)
    n = pixels.size
    return pixels[int(n * 0.45) : int(n * 0.55) + 1]


def positive_points(mask: np.ndarray, n: int, strategy: str, rng: np.random.Generator) -> list[Point]:
    """``n`` foreground points in ``mask`` by ``strategy`` (fewer if the mask is smaller)."""
    n = min(n, int(mask.sum()))
    if n <= 0:
        return []
    if strategy == "random_interior":
        chosen = rng.choice(np.flatnonzero(mask), size=n, replace=False)
        return [_xy(index, mask.shape[1]) for index in chosen]
    if strategy == "raster_middle":
        window = raster_middle_window(mask)
        if n == 1:  # randint(low, high) inclusive, as SAMRI's gen_points
            return [_xy(window[int(rng.integers(0, window.size))], mask.shape[1])]
        chosen = rng.choice(window, size=min(n, window.size), replace=False)
        return [_xy(index, mask.shape[1]) for index in chosen]
    if strategy == "centroid_snapped":
        points = [snapped_centroid(mask)]
    elif strategy == "dt_max":
        points = [_farthest_interior(mask, [])]
    else:
        raise PluginError(f"strategy: {strategy!r} is not one of {', '.join(POINT_STRATEGIES)}")
    while len(points) < n:
        points.append(_farthest_interior(mask, points))
    return points


def negative_points(
    mask: np.ndarray, box: Box, n: int, margin: int, rng: np.random.Generator
) -> list[Point]:
    """``n`` background points drawn uniformly outside ``mask`` near the target.

    "Near" is the target's tight ``box`` grown by ``margin`` pixels on each
    side (clipped to the image), where a user would click to cut a leak; when
    that region holds no pixel outside the mask, the whole image outside the
    mask is used. Fewer points come back when fewer such pixels exist.
    """
    if n <= 0:
        return []
    height, width = mask.shape
    x_min, y_min, x_max, y_max = (int(v) for v in box)
    region = np.zeros_like(mask)
    region[
        max(0, y_min - margin) : min(height, y_max + margin + 1),
        max(0, x_min - margin) : min(width, x_max + margin + 1),
    ] = True
    candidates = np.flatnonzero(region & ~mask)
    if candidates.size == 0:
        candidates = np.flatnonzero(~mask)
    chosen = rng.choice(candidates, size=min(n, candidates.size), replace=False)
    return [_xy(index, width) for index in chosen]

"""Box jitter with stated semantics (issue 6): the noise model of a prompt study.

``max_shift`` s is given in pixels at a resolution: ``original`` (the slice)
or ``model_1024`` (a SAM-style input whose longest side is 1024, so s is
scaled by longest_side / 1024 before it is applied to the slice).

- ``outward``: each side moves out by its own U[0, s] (MedSAM / AutoMedLabel training).
- ``symmetric``: each side moves by its own U[-s, s] (SAMRI); where a side
  crosses the opposite one the two are swapped, so the result is the box
  spanned by the two moved edges.
- ``fixed``: each side moves out by exactly s (no randomness).

Draws are made in the order x_min, y_min, x_max, y_max, one call per box.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from mskbench.errors import PluginError
from mskbench.prompting.boxes import Box

JitterMode = Literal["outward", "symmetric", "fixed"]
JITTER_MODES: tuple[str, ...] = ("outward", "symmetric", "fixed")
RESOLUTIONS: tuple[str, ...] = ("original", "model_1024")
MODEL_SIDE = 1024


def check_max_shift(max_shift: float, where: str = "max_shift") -> float:
    """Reject a negative, NaN or infinite shift with one clear line."""
    value = float(max_shift)
    if not math.isfinite(value) or value < 0:
        raise PluginError(f"{where}: {max_shift!r} is not a finite number >= 0; give the jitter in pixels, e.g. 10")
    return value


def shift_in_pixels(max_shift: float, resolution: str, shape: tuple[int, int]) -> float:
    """The shift in the slice's own pixels for a shift stated at ``resolution``."""
    if resolution == "original":
        return max_shift
    if resolution == "model_1024":
        return max_shift * max(shape) / MODEL_SIDE
    raise PluginError(f"resolution: {resolution!r} is not one of {', '.join(RESOLUTIONS)}")


def jitter_box(box: Box, mode: str, shift: float, rng: np.random.Generator) -> Box:
    """Move the sides of ``box`` by the mode's rule; the result is not clipped."""
    x_min, y_min, x_max, y_max = box
    if mode == "fixed":
        return (x_min - shift, y_min - shift, x_max + shift, y_max + shift)
    if mode == "outward":
        d = rng.uniform(0.0, shift, size=4)
        return (x_min - d[0], y_min - d[1], x_max + d[2], y_max + d[3])
    if mode == "symmetric":
        d = rng.uniform(-shift, shift, size=4)
        xs = sorted((x_min + d[0], x_max + d[2]))
        ys = sorted((y_min + d[1], y_max + d[3]))
        return (float(xs[0]), float(ys[0]), float(xs[1]), float(ys[1]))
    raise PluginError(f"mode: {mode!r} is not one of {', '.join(JITTER_MODES)}")

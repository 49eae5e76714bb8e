"""What a prompter prompts for: one target per label, or per connected component.

Per-label mode (instance 0) prompts a label as a whole, the usual SAM
benchmark. Instance mode (the source study's multi-instance mode) prompts
each 8-connected component of a label separately (``scipy.ndimage.label``)
and drops components smaller than ``min_component_pixels``; the kept ones
are numbered 1, 2, ... in raster order of their first pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mskbench.prompting.boxes import Box, tight_box

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Target:
    """One structure to prompt for: a label (instance 0) or one of its components (1, 2, ...)."""

    label: int
    instance: int
    mask: np.ndarray
    box: Box


def find_targets(
    reference: np.ndarray,
    labels: Sequence[int],
    *,
    instances: bool = False,
    min_component_pixels: int = 1,
) -> list[Target]:
    """The targets present in a reference slice, in the order of ``labels``.

    A label absent from the slice yields no target; so does a component
    below the size floor (in per-label mode the floor applies to the
    label's total area).
    """
    from scipy import ndimage

    targets: list[Target] = []
    for label in labels:
        mask = reference == label
        if not instances:
            if np.count_nonzero(mask) >= max(1, min_component_pixels):
                targets.append(Target(int(label), 0, mask, tight_box(mask)))
            continue
        components, count = ndimage.label(mask, structure=_EIGHT_CONNECTED)
        kept = 0
        for index in range(1, count + 1):
            component = components == index
            if np.count_nonzero(component) >= max(1, min_component_pixels):
                kept += 1
                targets.append(Target(int(label), kept, component, tight_box(component)))
    return targets

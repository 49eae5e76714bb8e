"""A one-shot prediction from an interactive volume model: round 0 of its ``refine``, label by label.

An interactive volume model (``refine(volume, prompts_of_one_label,
previous)``) answers a one-shot prompter the way its first interactive round
would, so a box3d cell and round 0 of a clicks cell agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mskbench.protocols import VolumeInput
from mskbench.types import Prompt


def predict_by_refining(model: Any, volume: VolumeInput, prompts: Sequence[Prompt]) -> np.ndarray:
    """The label volume of ``model.refine`` run once per label on all of that label's prompts (later labels win)."""
    labels = np.zeros(volume.image.shape, dtype=np.int32)
    by_label: dict[int, list[Prompt]] = {}
    for prompt in prompts:
        by_label.setdefault(prompt.label, []).append(prompt)
    for label, own in by_label.items():
        labels[model.refine(volume, own, None).mask] = label
    return labels

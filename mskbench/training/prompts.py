"""Training and validation prompts from a reference mask, with the recipe's box shift augmentation.

Training: the mask's tight box, each side moved outward by its own
U[0, max_shift] (:func:`mskbench.prompting.jitter.jitter_box`, ``outward``:
MedSAM's ``bbox_shift`` augmentation), the shift stated in the 1024-pixel
model input (``model_1024``, as MedSAM's training script applies it to its
1024 x 1024 images, and as the source study's 0 / 20 pixel shifts are meant)
or in the slice's pixels (``original``), then clipped to the slice; points
are random mask pixels (``random_interior``). Validation: the tight box and
the snapped centroid, no randomness, as the ``gt_box`` / ``gt_point``
prompters give them, so the val Dice is a fixed yardstick between epochs.
"""

from __future__ import annotations

import numpy as np

from mskbench.prompting.boxes import clip_box, tight_box
from mskbench.prompting.jitter import jitter_box, shift_in_pixels
from mskbench.prompting.points import positive_points
from mskbench.types import Prompt


def mask_prompt(mask: np.ndarray, label: int, kind: str, max_shift: float, shift_space: str,
                rng: np.random.Generator | None) -> Prompt:
    """The prompt of ``kind`` for ``mask``; ``rng`` None gives the unshifted validation prompt."""
    box = points = None
    if kind in ("box", "box+point"):
        box = tight_box(mask)
        if rng is not None and max_shift > 0:
            box = jitter_box(box, "outward", shift_in_pixels(max_shift, shift_space, mask.shape), rng)
            box = clip_box(box, mask.shape)[0]
    if kind in ("point", "box+point"):
        strategy = "centroid_snapped" if rng is None else "random_interior"
        points = positive_points(mask, 1, strategy, rng if rng is not None else np.random.default_rng(0))
    return Prompt(
        kind=kind, label=label, prompter="train", seed=0,
        box=None if box is None else tuple(float(v) for v in box),
        points=tuple((float(x), float(y)) for x, y in points or ()),
        point_labels=(1,) * len(points or ()),
    )

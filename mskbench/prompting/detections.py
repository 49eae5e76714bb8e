"""Detector error, recorded apart from segmenter error (the `detections` table).

One record per (slice, requested label). The detector *hits* a label when
its top-scoring box for that label overlaps the tight box of the whole
reference label with box IoU >= 0.5, the PASCAL VOC / COCO AP50 criterion
for a correct detection. A detection of an absent label is a false
positive (``detected`` and not ``reference_present``, IoU NaN); a present
label without a box is a miss (score and IoU NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mskbench.prompting.boxes import box_iou, tight_box
from mskbench.types import Prompt

HIT_IOU = 0.5


@dataclass(frozen=True)
class DetectionRecord:
    """Whether the detector found one label on one slice, and how well."""

    label: int
    reference_present: bool
    detected: bool
    score: float
    box_iou: float
    hit: bool


def detection_records(
    prompts: Sequence[Prompt], reference: np.ndarray, labels: Sequence[int]
) -> list[DetectionRecord]:
    """The detection record of each label in ``labels`` for one slice's prompts."""
    records = []
    for label in labels:
        reference_box = tight_box(reference == label)
        boxes = [p for p in prompts if p.label == label and p.box is not None]
        top = max(boxes, key=lambda p: -math.inf if p.score is None else p.score, default=None)
        iou = math.nan
        if top is not None and reference_box is not None:
            iou = box_iou(top.box, reference_box)
        score = math.nan if top is None or top.score is None else float(top.score)
        records.append(
            DetectionRecord(
                label=int(label),
                reference_present=reference_box is not None,
                detected=top is not None,
                score=score,
                box_iou=iou,
                hit=bool(iou >= HIT_IOU),
            )
        )
    return records

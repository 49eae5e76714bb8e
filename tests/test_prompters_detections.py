"""detection_records: hit / miss / false positive and box IoU against the reference box."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mskbench.prompting.boxes import from_continuous, to_continuous
from mskbench.prompting.detections import detection_records
from mskbench.types import Prompt


def box_prompt(label, box, score):
    return Prompt(kind="box", label=label, prompter="yolo", seed=1, box=box, score=score, detector_class=label - 1)


@pytest.fixture
def reference():
    ref = np.zeros((50, 60), dtype=np.int16)
    ref[10:20, 10:20] = 1  # tight box (10, 10, 19, 19)
    ref[30:40, 30:50] = 2  # tight box (30, 30, 49, 39)
    return ref


def test_hit_miss_false_positive_and_both_empty(reference):
    prompts = [
        box_prompt(1, (10.0, 10.0, 19.0, 19.0), 0.9),  # exact: IoU 1
        box_prompt(3, (0.0, 0.0, 5.0, 5.0), 0.4),  # label 3 absent: false positive
    ]
    records = {r.label: r for r in detection_records(prompts, reference, [1, 2, 3, 4])}
    assert records[1].hit and records[1].box_iou == 1.0 and records[1].score == pytest.approx(0.9)
    miss = records[2]
    assert miss.reference_present and not miss.detected and not miss.hit
    assert math.isnan(miss.score) and math.isnan(miss.box_iou)
    fp = records[3]
    assert not fp.reference_present and fp.detected and not fp.hit and math.isnan(fp.box_iou)
    assert fp.score == pytest.approx(0.4)
    empty = records[4]
    assert not empty.reference_present and not empty.detected and not empty.hit


def test_hit_threshold_is_iou_half(reference):
    # reference box of label 2 covers 20 x 10 = 200 px; shift right by s columns:
    # intersection (20 - s) * 10, union 200 + s * 10 -> IoU = (20 - s) / (20 + s)
    for shift, expect_hit in ((6, True), (7, False)):
        prompt = box_prompt(2, (30.0 + shift, 30.0, 49.0 + shift, 39.0), 0.8)
        (record,) = detection_records([prompt], reference, [2])
        assert record.box_iou == pytest.approx((20 - shift) / (20 + shift))
        assert record.hit is expect_hit


def test_top_scoring_box_is_judged(reference):
    good, bad = (10.0, 10.0, 19.0, 19.0), (40.0, 40.0, 45.0, 45.0)
    (record,) = detection_records([box_prompt(1, bad, 0.3), box_prompt(1, good, 0.7)], reference, [1])
    assert record.hit and record.score == pytest.approx(0.7)
    (record,) = detection_records([box_prompt(1, bad, 0.9), box_prompt(1, good, 0.7)], reference, [1])
    assert not record.hit and record.box_iou == 0.0


def test_continuous_round_trip():
    assert to_continuous((3.0, 4.0, 9.0, 12.0)) == (3.0, 4.0, 10.0, 13.0)
    assert from_continuous((3.0, 4.0, 10.0, 13.0)) == (3.0, 4.0, 9.0, 12.0)
    assert from_continuous((3.0, 4.0, 3.5, 4.2)) == (3.0, 4.0, 3.0, 4.0)  # sub-pixel box keeps a pixel

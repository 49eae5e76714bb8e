"""Detector data, file format and prompter plumbing (fast: random weights, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mskbench.cli.main import main
from mskbench.errors import PluginError
from mskbench.prompting.yolo_data import write_split, yolo_lines
from mskbench.prompting.yolo_train import check_train_args, dataset_slices, split_subjects
from mskbench.prompting.yolo_weights import read_card, save_detector, versioned_path
from mskbench.types import LabelInfo, SliceRef, Subject, TissueClass

LABELS = {1: LabelInfo(1, "femur", TissueClass.BONE), 2: LabelInfo(2, "femoral_cartilage", TissueClass.CARTILAGE)}
WHERE = SliceRef("fake", "a", 0, (1.0, 1.0))


class FakeDataset:
    """Blocks in a noisy volume: label 1 on slices 2..9, label 2 on slices 3..8, slices 0,1,10,11 empty."""

    label_map = LABELS
    slice_axis = "axial"

    def __init__(self, splits):
        self.splits = splits

    def subject_ids(self, split=None):
        return [s for s, sp in self.splits.items() if split is None or sp == split]

    def load(self, subject_id):
        rng = np.random.default_rng(len(subject_id))
        volume = rng.normal(100, 5, (48, 40, 12)).astype(np.float32)
        labels = np.zeros(volume.shape, dtype=np.int16)
        labels[5:30, 4:28, 2:10] = 1
        labels[32:44, 20:36, 3:9] = 2
        volume[labels == 1] = 300
        volume[labels == 2] = 200
        return Subject(subject_id, volume, labels, (1.0, 1.0, 2.0), np.eye(4), LABELS, split=self.splits[subject_id])


def test_yolo_lines_are_normalised_continuous_boxes():
    ref = np.zeros((40, 80), dtype=np.int16)
    ref[10:20, 20:60] = 4  # inclusive box cols 20..59, rows 10..19 -> continuous [20, 60] x [10, 20]
    assert yolo_lines(ref, {4: 0, 5: 1}) == ["0 0.500000 0.375000 0.500000 0.250000"]


def test_write_split_writes_png_and_empty_label_files(tmp_path):
    import cv2

    ref = np.zeros((16, 16), dtype=np.int16)
    ref[2:5, 3:9] = 1
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    n = write_split(tmp_path, "train", [("a_0001", image, ref), ("a_0002", image, np.zeros_like(ref))], {1: 0})
    assert n == 2
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "images/train/a_0001.png"), cv2.IMREAD_UNCHANGED), image)
    assert (tmp_path / "labels/train/a_0001.txt").read_text().startswith("0 ")
    assert (tmp_path / "labels/train/a_0002.txt").read_text() == ""


def test_split_subjects_prefers_val_split_then_holds_out():
    with_val = FakeDataset({"a": "train", "b": "train", "c": "val"})
    assert split_subjects(with_val, "train", "val")[:2] == (["a", "b"], ["c"])
    train, val, source = split_subjects(FakeDataset({"a": "train", "b": "train", "c": "test"}), "train", "val")
    assert (train, val) == (["a"], ["b"]) and "held-out" in source
    train, val, source = split_subjects(FakeDataset({"a": "train"}), "train", "val")
    assert train == val == ["a"] and "optimistic" in source


def test_dataset_slices_follow_the_runner_preprocessing():
    from mskbench.data.preprocess import PreprocessConfig

    ds = FakeDataset({"a": "train"})
    labelled = list(dataset_slices(ds, ["a"], "axial", PreprocessConfig()))
    assert [name for name, _, _ in labelled] == [f"a_{k:04d}" for k in range(2, 10)]
    every = list(dataset_slices(ds, ["a"], "axial", PreprocessConfig(include_empty_slices=True)))
    assert len(every) == 12
    name, image, ref = labelled[3]
    assert image.dtype == np.uint8 and image.shape == ref.shape == (48, 40)
    assert set(np.unique(ref)) == {0, 1, 2}


def test_versioned_path_counts_up(tmp_path):
    assert versioned_path(tmp_path, "phantom knee").name == "phantom_knee-yolov8n-v1.pt"
    (tmp_path / "phantom_knee-yolov8n-v1.pt").touch()
    (tmp_path / "phantom_knee-yolov8n-v7.pt").touch()
    assert versioned_path(tmp_path, "phantom knee").name == "phantom_knee-yolov8n-v8.pt"


def test_train_args_are_checked():
    check_train_args({"lr0": 0.01, "mosaic": 0.0})
    with pytest.raises(PluginError, match="set by mskbench"):
        check_train_args({"plots": True})
    with pytest.raises(PluginError, match="did you mean 'mosaic'"):
        check_train_args({"mosiac": 0.0})


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    """A detector file with randomly initialised yolov8n weights for two classes."""
    from mskbench.prompting.ultralytics_env import import_ultralytics

    import_ultralytics()
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    net = DetectionModel("yolov8n.yaml", nc=2, verbose=False)
    weights = tmp_path_factory.mktemp("det") / "fake-yolov8n-v1.pt"
    card = {
        "architecture": "yolov8n.yaml",
        "dataset": "fake",
        "classes": [{"class": 0, "label": 1, "name": "femur"}, {"class": 1, "label": 2, "name": "femoral_cartilage"}],
        "imgsz": 64,
        "metrics": {"mAP50": 0.0},
        "versions": {"ultralytics": "x"},
    }
    save_detector(weights, {k: v.float() for k, v in net.state_dict().items()}, card)
    return weights


def test_yolo_prompter_keeps_top_k_per_class_inside_the_image(detector):
    from mskbench.prompting.yolo import YoloPrompter

    prompter = YoloPrompter(str(detector), conf=0.0, top_k=2)
    assert prompter.is_detector and prompter.produces == {"box"}
    image = np.random.default_rng(0).integers(0, 255, (48, 40), dtype=np.uint8)
    prompts = prompter.prompts(image, np.zeros((48, 40), np.int16), [2, 1], np.random.default_rng(0), WHERE)
    assert [(p.label, p.instance, p.detector_class) for p in prompts] == [(2, 1, 1), (2, 2, 1), (1, 1, 0), (1, 2, 0)]
    for first, second in (prompts[:2], prompts[2:]):
        assert first.score >= second.score
    for p in prompts:
        x_min, y_min, x_max, y_max = p.box
        assert 0 <= x_min <= x_max <= 39 and 0 <= y_min <= y_max <= 47
    # the threshold: nothing from random weights reaches 0.99
    strict = YoloPrompter(str(detector), conf=0.99)
    assert strict.prompts(image, np.zeros((48, 40), np.int16), [1, 2], np.random.default_rng(0), WHERE) == []


def test_label_set_mismatch_is_one_line_naming_it(detector):
    from mskbench.prompting.yolo import YoloPrompter

    prompter = YoloPrompter(str(detector))
    image = np.zeros((32, 32), np.uint8)
    with pytest.raises(PluginError, match=r"no class for label 9; retrain") as caught:
        prompter.prompts(image, np.zeros((32, 32), np.int16), [1, 9], np.random.default_rng(0), WHERE)
    assert "\n" not in str(caught.value) and "1 (femur), 2 (femoral_cartilage)" in str(caught.value)
    renamed = {1: LABELS[1], 2: LabelInfo(2, "tibia", TissueClass.BONE)}
    with pytest.raises(PluginError, match=r"no class for label 2 \(tibia\)"):
        prompter.check_label_map(renamed)
    prompter.check_label_map(LABELS)


def test_card_problems_are_plugin_errors(detector, tmp_path):
    assert read_card(detector).class_of_label == {1: 0, 2: 1}
    with pytest.raises(PluginError, match="not found"):
        read_card(tmp_path / "missing.pt")
    lonely = tmp_path / "lonely.pt"
    lonely.write_bytes(detector.read_bytes())
    with pytest.raises(PluginError, match="card .*lonely.json not found"):
        read_card(lonely)
    card = json.loads(detector.with_suffix(".json").read_text())
    tampered = tmp_path / "tampered.pt"
    tampered.write_bytes(detector.read_bytes() + b"x")
    tampered.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(PluginError, match="sha256"):
        read_card(tampered)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(detector.read_bytes())
    broken.with_suffix(".json").write_text(json.dumps({**card, "classes": "nope"}))
    with pytest.raises(PluginError, match="malformed"):
        read_card(broken)


def test_cli_info_and_bad_input(detector, tmp_path, capsys):
    assert main(["detector", "info", str(detector)]) == 0
    assert "1 (femur), 2 (femoral_cartilage)" in capsys.readouterr().out
    assert main(["detector", "info", str(tmp_path / "none.pt")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["detector", "train", "--dataset", "x", "--out", str(tmp_path), "--train-args", "[1]"]) == 2
    assert "expected a JSON object" in capsys.readouterr().err
    assert main(["detector", "train", "--dataset", "x", "--out", str(tmp_path), "--imgsz", "100"]) == 2
    assert "multiple of 32" in capsys.readouterr().err

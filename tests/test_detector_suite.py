"""A suite comparing gt_box, jitter_box and yolo boxes runs end to end and fills `detections`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import duckdb
import pytest

from mskbench.cli.main import main

SUITE = """
[suite]
name = "prompt_quality"
seed = 3
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
split = "all"

[datasets.params]
anatomy = "knee"
subjects = 1
seed = 0
supersample = 1
pixel_spacing_min = 0.8
pixel_spacing_max = 0.8

[[models]]
name = "box_fill"
plugin = "box_fill"

[[prompters]]
name = "gt_box"
plugin = "gt_box"

[[prompters]]
name = "jitter"
plugin = "jitter_box"
params = {{ mode = "outward", max_shift = 8 }}

[[prompters]]
name = "yolo"
plugin = "yolo"
params = {{ weights = "{weights}", conf = 0.0 }}

[metrics]
names = ["dice"]
"""


def _detector(path: Path, classes: list[tuple[int, str]]) -> Path:
    """A yolov8n detector file with random weights: it boxes every class somewhere at conf 0."""
    from mskbench.prompting.ultralytics_env import import_ultralytics
    from mskbench.prompting.yolo_weights import save_detector

    import_ultralytics()
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    net = DetectionModel("yolov8n.yaml", nc=len(classes), verbose=False)
    card = {
        "architecture": "yolov8n.yaml",
        "dataset": "phantom",
        "classes": [{"class": i, "label": label, "name": name} for i, (label, name) in enumerate(classes)],
        "imgsz": 128,
    }
    save_detector(path, {k: v.float() for k, v in net.state_dict().items()}, card)
    return path


def _rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def knee_classes():
    from mskbench.phantom.generate import label_map

    return [(label, info.name) for label, info in sorted(label_map("knee").items())]


def test_suite_records_all_three_prompters_and_detections(tmp_path, knee_classes):
    weights = _detector(tmp_path / "knee-yolov8n-v1.pt", knee_classes)
    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE.format(weights=weights)))
    db = tmp_path / "r.duckdb"
    assert main(["run", str(suite), "--db", str(db)]) == 0

    assert _rows(db, "SELECT DISTINCT prompter FROM prompts ORDER BY 1") == [("gt_box",), ("jitter",), ("yolo",)]
    assert _rows(db, "SELECT count(*) FROM cells WHERE status = 'done'") == [(3,)]
    # detector prompts carry score and class; oracle prompts do not
    yolo_unscored = "SELECT count(*) FROM prompts WHERE prompter = 'yolo' AND (score IS NULL OR detector_class IS NULL)"
    assert _rows(db, yolo_unscored) == [(0,)]
    assert _rows(db, "SELECT count(*) FROM prompts WHERE prompter <> 'yolo' AND score IS NOT NULL") == [(0,)]
    # one detection row per (slice, label), only for the detector's cell
    n_slices = _rows(db, "SELECT count(DISTINCT slice_index) FROM prompts WHERE prompter = 'gt_box'")[0][0]
    cells = _rows(db, "SELECT DISTINCT c.prompter FROM detections d JOIN cells c USING (run_id, cell_id)")
    assert cells == [("yolo",)]
    assert _rows(db, "SELECT count(*) FROM detections")[0][0] == n_slices * len(knee_classes)
    # random weights at conf 0 box labels everywhere: hits are rare, false positives are not
    assert _rows(db, "SELECT count(*) FROM detections WHERE detected AND NOT reference_present")[0][0] > 0
    assert _rows(db, "SELECT count(*) FROM detections WHERE detected AND reference_present")[0][0] > 0
    # IoU is defined exactly when both boxes exist, and `hit` needs it >= 0.5
    # (DuckDB orders NaN above every number, so `box_iou >= 0.5` alone would be true for NaN)
    both = "detected AND reference_present"
    assert _rows(db, f"SELECT count(*) FROM detections WHERE isnan(box_iou) = ({both})") == [(0,)]
    assert _rows(db, "SELECT count(*) FROM detections WHERE hit <> (NOT isnan(box_iou) AND box_iou >= 0.5)") == [(0,)]


def test_detector_for_another_label_set_stops_the_run_with_one_line(tmp_path, knee_classes, capsys):
    weights = _detector(tmp_path / "other-yolov8n-v1.pt", knee_classes[:3])
    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE.format(weights=weights)))
    assert main(["run", str(suite), "--db", str(tmp_path / "r.duckdb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no class for labels 4 (femoral_cartilage), 5 (tibial_cartilage)" in err[0]
    assert "retrain" in err[0]
    assert not (tmp_path / "r.duckdb").exists(), "the mismatch must stop the plan before any run is written"

"""A detector trained on the phantom: `predict` on unseen subjects' exported NIfTI scores what the suite scores.

External references: the phantom exporter's NIfTI files (image and truth),
nibabel reading predict's masks back, and the suite's own `subject_metrics`
Dice rows for the same (dataset, model, prompter) cell.

The suite scores each label's own mask; predict writes one label per voxel,
so a label whose mask another (higher) label overlapped scores differently
from the file. Those labels are the ones the sidecar reports under
``voxels_lost_to_overlap``: every other label must match exactly, and the
overlapped ones must be reported (on this detector the femur's box overlaps
the patella's, which took part of the femur's mask on several slices).
"""

from __future__ import annotations

import json
import textwrap

import duckdb
import nibabel as nib
import numpy as np
import pytest

from mskbench.cli.main import main
from tests.test_detector_training import FAST

PHANTOM = {"anatomy": "knee", "subjects": 5, "seed": 0, "pixel_spacing_min": 0.8, "pixel_spacing_max": 0.8,
           "supersample": 1}  # splits: 3 train, 1 val, 1 test subject
CONF = 0.01

SUITE = """
[suite]
name = "trained_detector"
seed = 0
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {phantom}
split = "test"
preprocess = {{ include_empty_slices = true }}

[[models]]
name = "otsu_box"
plugin = "otsu_box"

[[prompters]]
name = "det"
plugin = "yolo"
params = {{ weights = "{weights}", conf = {conf} }}

[metrics]
names = ["dice"]

[biomarkers]
enabled = false
"""


def _toml_table(values: dict) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + " }"


def _dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    total = int(prediction.sum() + truth.sum())
    return 2.0 * int((prediction & truth).sum()) / total


@pytest.mark.slow
def test_predict_on_unseen_subjects_matches_the_suite_dice(tmp_path, capsys):
    from mskbench.phantom.export import write_phantom

    rc = main(["detector", "train", "--dataset", "phantom", "--params", json.dumps(PHANTOM), "--out", str(tmp_path),
               "--epochs", "2", "--imgsz", "64", "--batch", "8", "--no-empty-slices",
               "--train-args", json.dumps(FAST)])
    assert rc == 0, capsys.readouterr().err
    weights = tmp_path / "phantom-yolov8n-v1.pt"
    card = json.loads(weights.with_suffix(".json").read_text())

    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE.format(phantom=_toml_table(PHANTOM), weights=weights, conf=CONF)))
    db = tmp_path / "r.duckdb"
    assert main(["run", str(suite), "--db", str(db)]) == 0
    con = duckdb.connect(str(db), read_only=True)
    suite_dice = {(s, name): value for s, name, value in con.execute(
        "SELECT subject_id, label_name, value FROM subject_metrics WHERE metric = 'dice' AND NOT substituted"
    ).fetchall()}
    con.close()
    unseen = sorted({s for s, _ in suite_dice})
    assert unseen and not set(unseen) & set(card["train_subjects"])

    exported = write_phantom("knee", PHANTOM["subjects"], PHANTOM["seed"], tmp_path / "export",
                             pixel_spacing=(0.8, 0.8), supersample=1)
    out = tmp_path / "out"
    inputs = [arg for s in unseen for arg in ("--input", str(exported / f"{s}_image.nii.gz"))]
    assert main(["predict", "--model", "otsu_box", "--detector", str(weights), "--prompter-params",
                 json.dumps({"conf": CONF}), "--slice-axis", "sagittal", *inputs, "--out", str(out)]) == 0

    names = {int(c["label"]): c["name"] for c in card["classes"]}
    predict_dice, overlapped = {}, set()
    for s in unseen:
        sidecar = json.loads((out / f"{s}_image.json").read_text())
        overlapped |= {(s, info["name"]) for info in sidecar["labels"].values() if info["voxels_lost_to_overlap"]}
        mask = np.asanyarray(nib.load(out / f"{s}_image.nii.gz").dataobj)
        truth = np.asanyarray(nib.load(exported / f"{s}_labels.nii.gz").dataobj)
        for label, name in names.items():
            if (mask == label).any() or (truth == label).any():
                predict_dice[s, name] = _dice(mask == label, truth == label)
    differing = {key for key, value in suite_dice.items() if predict_dice[key] != pytest.approx(value, abs=1e-12)}
    assert differing <= overlapped, (differing - overlapped, predict_dice, suite_dice)  # every difference explained
    assert differing, "this detector's femur box overlaps the patella's: the check must see a reported overlap"
    assert max(suite_dice.values()) > 0.2, suite_dice  # the detector found something: the check is not 0 == 0

"""Bad-input corpus: nnU-Net model folders, caught by `validate` from their JSON files alone.

Each case writes a folder as nnUNetv2_train would (plans.json, dataset.json,
fold_0/checkpoint_final.pth; the checkpoint is never read at plan time) and
breaks one thing.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import BadInput, check
from nnunet_tiny import dataset_json, plans

SUITE = """
[suite]
name = "bad_nnunet"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
split = "all"
params = {{ anatomy = "knee", subjects = 1, supersample = 1 }}
labels = ["femur", "tibia"]

[[models]]
name = "nn"
plugin = "nnunet"
on_missing_checkpoint = "error"
params = {{ model_folder = "{folder}", configuration = "{configuration}" }}

[[prompters]]
name = "auto"
plugin = "none"

[metrics]
names = ["dice"]
"""
VALIDATE = ["validate", "{tmp}/suite.toml"]
#: the CLI runs in the case folder; this checkout's mskbench, not an installed one, must answer
SOURCE = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def _folder(breaks: Callable[[Path], None] = lambda folder: None, configuration: str = "3d_fullres"):
    """Setup: a complete model folder, then ``breaks`` applied to it."""

    def setup(tmp: Path) -> None:
        folder = tmp / "nnUNetTrainer__nnUNetPlans__3d_fullres"
        (folder / "fold_0").mkdir(parents=True)
        (folder / "plans.json").write_text(json.dumps(plans()))
        (folder / "dataset.json").write_text(json.dumps(dataset_json()))
        (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"PK\x03\x04")
        breaks(folder)
        (tmp / "suite.toml").write_text(SUITE.format(folder=folder, configuration=configuration))

    return setup


def _edit_plans(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def breaks(folder: Path) -> None:
        content = json.loads((folder / "plans.json").read_text())
        change(content)
        (folder / "plans.json").write_text(json.dumps(content))

    return breaks


def _network_class(name: str) -> Callable[[dict], None]:
    return lambda p: p["configurations"]["3d_fullres"]["architecture"].__setitem__("network_class_name", name)


CASES = [
    BadInput("nnunet-folder-missing", VALIDATE, _folder(shutil.rmtree), "does not exist"),
    BadInput("nnunet-no-plans", VALIDATE, _folder(lambda f: (f / "plans.json").unlink()), "has no plans.json"),
    BadInput("nnunet-plans-not-json", VALIDATE, _folder(lambda f: (f / "plans.json").write_text("{")),
             "cannot read plans.json"),
    BadInput("nnunet-no-dataset-json", VALIDATE, _folder(lambda f: (f / "dataset.json").unlink()), "has no dataset.json"),
    BadInput("nnunet-no-fold-checkpoint", VALIDATE, _folder(lambda f: (f / "fold_0" / "checkpoint_final.pth").unlink()),
             "fold_0/checkpoint_final.pth does not exist"),
    BadInput("nnunet-configuration-not-planned", VALIDATE, _folder(configuration="3d_lowres"),
             "configuration '3d_lowres' is not in"),
    BadInput("nnunet-plans-name-other-code", VALIDATE, _folder(_edit_plans(_network_class("subprocess.Popen"))),
             "names network class 'subprocess.Popen'"),
    BadInput("nnunet-unsupported-reader", VALIDATE,
             _folder(_edit_plans(lambda p: p.__setitem__("image_reader_writer", "Tiff3DIO"))),
             "image_reader_writer 'Tiff3DIO' is not supported"),
    BadInput("nnunet-label-names-differ", VALIDATE,
             _folder(lambda f: (f / "dataset.json").write_text(json.dumps(dataset_json({"background": 0, "bone": 1})))),
             "model's labels (bone) do not include the dataset's femur, tibia"),
]  # fmt: skip


CASES = [dataclasses.replace(case, env=SOURCE) for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, template_db):
    check(case, tmp_path, template_db)

"""Bad-input corpus: nnInteractive model folders and a missing nnInteractive package.

Each `validate` case writes a folder as nnInteractive releases it (plans.json, dataset.json,
inference_info.json, fold_0/checkpoint_final.pth; the checkpoint is never read at plan time) and
breaks one thing. A checkpoint whose unpickling would run code is only read by `run`; its marker
file must never appear.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from code_pickles import pickle_bytes
from harness import BadInput, check
from nninteractive_tiny import write_folder_files

SUITE = """
[suite]
name = "bad_nninteractive"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
split = "all"
params = {{ anatomy = "knee", subjects = 1, supersample = 1 }}
labels = ["femur"]

[[models]]
name = "nni"
plugin = "nninteractive"
on_missing_checkpoint = "error"
params = {{ model_folder = "{folder}" }}

[[prompters]]
name = "box3d"
plugin = "box3d"

[metrics]
names = ["dice"]
"""
VALIDATE = ["validate", "{tmp}/suite.toml"]
RUN = ["run", "{tmp}/suite.toml", "--db", "{db}"]
MARKER = "MARKER"
#: the CLI runs in the case folder; this checkout's mskbench, not an installed one, must answer
SOURCE = str(Path(__file__).resolve().parents[2])


def _folder(breaks: Callable[[Path], None] = lambda folder: None):
    """Setup: a complete model folder (a placeholder checkpoint), then ``breaks`` applied to it."""

    def setup(tmp: Path) -> None:
        folder = write_folder_files(tmp / "nnInteractive_v1.0")
        (folder / "fold_0" / "checkpoint_final.pth").write_bytes(b"PK\x03\x04")
        breaks(folder)
        (tmp / "suite.toml").write_text(SUITE.format(folder=folder))

    return setup


def _other_network_class(folder: Path) -> None:
    plans = json.loads((folder / "plans.json").read_text())
    plans["configurations"]["3d_fullres"]["architecture"]["network_class_name"] = "subprocess.Popen"
    (folder / "plans.json").write_text(json.dumps(plans))


def _package_missing(folder: Path) -> None:
    """A package named nnInteractive ahead of the installed one on PYTHONPATH, failing to import as a broken
    install does."""
    shadow = folder.parent / "site" / "nnInteractive"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('simulated: nnInteractive is not installed')\n")


def _code_pickle(folder: Path) -> None:
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(pickle_bytes(folder.parent / MARKER, "torch-zip"))


CASES = [
    BadInput("nninteractive-folder-missing", VALIDATE, _folder(shutil.rmtree), "does not exist"),
    BadInput("nninteractive-no-plans", VALIDATE, _folder(lambda f: (f / "plans.json").unlink()), "has no plans.json"),
    BadInput("nninteractive-no-dataset-json", VALIDATE, _folder(lambda f: (f / "dataset.json").unlink()),
             "has no dataset.json"),
    BadInput("nninteractive-no-capability-file", VALIDATE, _folder(lambda f: (f / "inference_info.json").unlink()),
             "has neither inference_info.json nor inference_session_class.json"),
    BadInput("nninteractive-capability-not-json", VALIDATE,
             _folder(lambda f: (f / "inference_info.json").write_text("{")), "inference_info.json: cannot read it"),
    BadInput("nninteractive-no-fold", VALIDATE, _folder(lambda f: shutil.rmtree(f / "fold_0")),
             "has no fold_<k> folder"),
    BadInput("nninteractive-no-checkpoint", VALIDATE,
             _folder(lambda f: (f / "fold_0" / "checkpoint_final.pth").unlink()),
             "fold_0/checkpoint_final.pth does not exist"),
    BadInput("nninteractive-plans-name-other-code", VALIDATE, _folder(_other_network_class),
             "names network class 'subprocess.Popen'"),
    BadInput("nninteractive-not-installed", VALIDATE, _folder(_package_missing),
             "needs the nnInteractive package (nninteractive>=2.6), which is not installed",
             env={"PYTHONPATH": "{tmp}/site:" + SOURCE}),
    BadInput("nninteractive-checkpoint-with-code", RUN, _folder(_code_pickle),
             "contains Python objects that mskbench will not load"),
]  # fmt: skip


CASES = [case if case.env else dataclasses.replace(case, env={"PYTHONPATH": SOURCE}) for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, template_db):
    check(case, tmp_path, template_db)
    assert not (tmp_path / MARKER).exists(), "a checkpoint ran code"

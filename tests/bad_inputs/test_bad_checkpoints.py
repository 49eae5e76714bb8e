"""Bad-input corpus: model checkpoints and detector files, through `validate` and `run`.

Most cases fail at `validate` (the checkpoint preflight and the detector
card need no torch); the three only loading can catch (a pickle with code
or objects, tensors for another architecture, in a file of the user's own
name, so no official hash applies) go through `run` with ``medsam``, the
cheapest checkpoint model to import. Cases whose file would run code check,
besides the corpus promise, that the marker it would write never appears.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from code_pickles import pickle_bytes, write_detector
from harness import BadInput, check

MARKER = "MARKER"

HEAD = """
[suite]
name = "bad_checkpoints"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
split = "all"
params = { anatomy = "knee", subjects = 1, supersample = 1 }

[metrics]
names = ["dice"]
"""

MODEL = """
[[models]]
name = "m"
plugin = "{plugin}"
on_missing_checkpoint = "error"
{checkpoint}
[[prompters]]
name = "gt_box"
plugin = "gt_box"
"""

DETECTOR = """
[[models]]
name = "box_fill"
plugin = "box_fill"

[[prompters]]
name = "yolo"
plugin = "yolo"
params = { weights = "det-yolov8n-v1.pt" }
"""


def _suite(folder: Path, body: str) -> None:
    (folder / "suite.toml").write_text(HEAD + body)


def _checkpoint(writer: Callable[[Path], None], *, plugin: str = "medsam", official: str | None = None):
    """Setup: a model whose checkpoint is what ``writer`` makes, at an explicit path or the official name."""

    def setup(folder: Path) -> None:
        if official is None:
            path = folder / "mine.pth"
            line = f'checkpoint = "{path}"\n'
        else:
            (folder / "ckpts").mkdir()
            path, line = folder / "ckpts" / official, ""
        writer(path)
        _suite(folder, MODEL.format(plugin=plugin, checkpoint=line))

    return setup


def _detector(**card_changes):
    """Setup: the yolo prompter with a detector file pair, its card edited by ``card_changes``."""

    def setup(folder: Path) -> None:
        write_detector(folder / "det-yolov8n-v1.pt", **card_changes)
        _suite(folder, DETECTOR)

    return setup


def _detector_then(change: Callable[[Path], None]):
    """Setup: a consistent detector pair, then ``change(weights)`` breaks it."""

    def setup(folder: Path) -> None:
        change(write_detector(folder / "det-yolov8n-v1.pt"))
        _suite(folder, DETECTOR)

    return setup


def _code_pickle(kind: str) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(pickle_bytes(path.parent / MARKER, kind))


def _truncated_zip(path: Path) -> None:
    import torch

    buffer = io.BytesIO()
    torch.save({"w": torch.ones(1000)}, buffer)
    path.write_bytes(buffer.getvalue()[:2000])


def _wrong_architecture(path: Path) -> None:
    import torch

    torch.save({"encoder.weight": torch.ones(3, 3)}, path)


def _card_architecture_is_a_pickle(folder: Path) -> None:
    hostile = folder / "yolov8n.pt"
    _code_pickle("torch-zip")(hostile)
    _detector(architecture=str(hostile))(folder)


def _weights_are_a_pickle(folder: Path) -> None:
    write_detector(folder / "det-yolov8n-v1.pt", weights_bytes=pickle_bytes(folder / MARKER, "torch-zip"))
    _suite(folder, DETECTOR)


VALIDATE = ["validate", "{tmp}/suite.toml"]
RUN = ["run", "{tmp}/suite.toml", "--db", "{db}"]
IN_FOLDER = {"MSKBENCH_CHECKPOINTS": "{tmp}/ckpts"}
REFUSED = "contains Python objects that mskbench will not load (only tensors are accepted"

CASES = [
    # checkpoints caught by `validate` (no torch needed)
    BadInput("ckpt-missing-file", VALIDATE, _checkpoint(lambda p: None, plugin="sam"), "does not exist"),
    BadInput("ckpt-is-a-directory", VALIDATE, _checkpoint(Path.mkdir, plugin="sam"), "is a directory, not a file"),
    BadInput("ckpt-official-name-is-a-directory", VALIDATE,
             _checkpoint(Path.mkdir, plugin="sam", official="sam_vit_b_01ec64.pth"), "is a directory, not a file",
             env=IN_FOLDER),
    BadInput("ckpt-official-name-empty", VALIDATE,
             _checkpoint(lambda p: p.write_bytes(b""), plugin="sam", official="sam_vit_b_01ec64.pth"),
             "does not have the official sha256", env=IN_FOLDER),
    BadInput("ckpt-official-name-truncated-zip", VALIDATE,
             _checkpoint(_truncated_zip, plugin="sam", official="sam_vit_b_01ec64.pth"),
             "does not have the official sha256", env=IN_FOLDER),
    BadInput("ckpt-own-file-empty", VALIDATE, _checkpoint(lambda p: p.write_bytes(b"")), "is an empty file"),
    BadInput("ckpt-own-file-is-text", VALIDATE, _checkpoint(lambda p: p.write_text("weights: see README\n")),
             "is not a PyTorch checkpoint"),
    # the user's own checkpoint file: only loading tells
    BadInput("ckpt-plain-pickle-with-code", RUN, _checkpoint(_code_pickle("plain")), REFUSED),
    BadInput("ckpt-torch-zip-with-objects", RUN, _checkpoint(_code_pickle("torch-zip")), REFUSED),
    BadInput("ckpt-wrong-architecture-keys", RUN, _checkpoint(_wrong_architecture), "does not fit the SAM vit_b"),
    # detector files
    BadInput("det-weights-missing", VALIDATE, lambda t: _suite(t, DETECTOR), "detector weights"),
    BadInput("det-card-missing", VALIDATE, _detector_then(lambda w: w.with_suffix(".json").unlink()),
             "detector card"),
    BadInput("det-card-malformed-json", VALIDATE,
             _detector_then(lambda w: w.with_suffix(".json").write_text("{not json")), "is malformed"),
    BadInput("det-card-wrong-format", VALIDATE, _detector(format="ultralytics"), "is not 'mskbench-yolo-detector'"),
    BadInput("det-card-sha-mismatch", VALIDATE,
             _detector_then(lambda w: w.write_bytes(w.read_bytes() + b"\0")), "do not match the sha256"),
    BadInput("det-card-architecture-is-a-pickle", VALIDATE, _card_architecture_is_a_pickle, "not one mskbench builds"),
    BadInput("det-card-architecture-not-allowed", VALIDATE, _detector(architecture="yolov8s.yaml"),
             "architecture 'yolov8s.yaml' is not one mskbench builds (yolov8n.yaml)"),
    BadInput("det-card-architecture-url", VALIDATE,
             _detector(architecture="https://example.invalid/yolov8n.pt"), "not one mskbench builds"),
    BadInput("det-weights-are-a-pickle", VALIDATE, _weights_are_a_pickle, REFUSED),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, template_db):
    check(case, tmp_path, template_db)
    assert not (tmp_path / MARKER).exists(), "a checkpoint or detector file ran code"

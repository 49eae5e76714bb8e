"""Hostile files for the loader security tests: pickles that run code when unpickled, and tiny detectors.

A :class:`WritesMarker` object, when unpickled by anything that is not
torch's weights-only unpickler, calls ``Path.write_text(marker, ...)``: a
harmless stand-in for arbitrary code whose effect a test can look for.
:func:`armed` proves the payload does fire under a plain ``pickle.loads``,
so a test that sees no marker has shown something.
"""

from __future__ import annotations

import functools
import io
import json
import pickle
from pathlib import Path


class WritesMarker:
    """Unpickles as ``Path(marker).write_text("code ran")``."""

    def __init__(self, marker: Path) -> None:
        self.marker = Path(marker)

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def pickle_bytes(marker: Path, kind: str) -> bytes:
    """The payload in one container format: ``plain`` pickle, ``torch-legacy`` or ``torch-zip`` (torch.save)."""
    payload = {"weight": WritesMarker(marker)}
    if kind == "plain":
        return pickle.dumps(payload, protocol=2)
    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer, _use_new_zipfile_serialization=(kind == "torch-zip"))
    return buffer.getvalue()


KINDS = ("plain", "torch-legacy", "torch-zip")


def armed(marker: Path, kind: str) -> bool:
    """True when unsafely unpickling the payload does write the marker (the marker is removed again)."""
    data = pickle_bytes(marker, kind)
    if kind == "plain":
        pickle.loads(data)
    else:
        import torch

        try:
            torch.load(io.BytesIO(data), weights_only=False)
        except Exception:  # the object is gone after reduce; only the side effect matters
            pass
    fired = marker.exists()
    marker.unlink(missing_ok=True)
    return fired


@functools.lru_cache(maxsize=None)
def _detector_state_bytes(n_classes: int) -> bytes:
    """``save_detector``'s weights file for a randomly initialised yolov8n, as bytes (built once)."""
    import tempfile

    from mskbench.prompting.ultralytics_env import import_ultralytics
    from mskbench.prompting.yolo_weights import packaged_config, save_detector

    import_ultralytics()
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    # the packaged file, not a bare name: a test may run this with planted yamls in its working directory
    net = DetectionModel(packaged_config("yolov8n.yaml"), nc=n_classes, verbose=False)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "d.pt"
        save_detector(weights, {k: v.float() for k, v in net.state_dict().items()}, {})
        return weights.read_bytes()


PHANTOM_CLASSES = [(1, "femur"), (2, "tibia")]


def write_detector(weights: Path, *, weights_bytes: bytes | None = None, **card_changes) -> Path:
    """A detector file pair for the phantom knee's first labels; ``card_changes`` edit the card.

    ``weights_bytes`` replaces the weights (the card's sha256 follows them,
    so the pair is consistent and only the weights' content is on trial).
    """
    from mskbench.prompting.yolo_weights import FORMAT, FORMAT_VERSION, card_path, sha256_file

    weights.write_bytes(weights_bytes if weights_bytes is not None else _detector_state_bytes(len(PHANTOM_CLASSES)))
    card = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "weights": weights.name, "sha256": sha256_file(weights),
        "architecture": "yolov8n.yaml", "dataset": "phantom", "imgsz": 64,
        "classes": [{"class": i, "label": label, "name": name} for i, (label, name) in enumerate(PHANTOM_CLASSES)],
    }  # fmt: skip
    card.update(card_changes)
    card_path(weights).write_text(json.dumps(card))
    return weights

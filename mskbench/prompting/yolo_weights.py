"""The detector file format: a tensors-only weights file plus a JSON card beside it.

The weights file holds the state dict of an ultralytics ``yolov8n.yaml``
DetectionModel and is read with ``torch.load(weights_only=True)`` (DESIGN §6),
never unpickled as ultralytics' own ``.pt`` checkpoints are, so a shared
detector file cannot run code. The card (same stem, ``.json``) says which
label each class stands for, the dataset and preprocessing it was trained
on, its validation metrics and the library versions, and the sha256 that
ties it to its weights.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mskbench.errors import PluginError

FORMAT = "mskbench-yolo-detector"
FORMAT_VERSION = 1
ARCHITECTURE = "yolov8n.yaml"
_RETRAIN = "train one with `mskbench detector train --dataset NAME --out DIR`"


@dataclass(frozen=True)
class DetectorCard:
    """What a detector file is for: class <-> label map and how it was trained."""

    weights: Path
    dataset: str
    class_of_label: dict[int, int]
    label_names: dict[int, str]
    imgsz: int
    meta: dict[str, Any]

    def describe_labels(self) -> str:
        return ", ".join(f"{label} ({self.label_names[label]})" for label in sorted(self.class_of_label))


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def versioned_path(out_dir: Path, dataset: str) -> Path:
    """``<dataset>-yolov8n-v<N>.pt`` with N one above the highest already in ``out_dir``."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset) + "-yolov8n-v"
    pattern = re.compile(re.escape(stem) + r"(\d+)\.pt")
    taken = [int(m.group(1)) for p in out_dir.glob(f"{stem}*.pt") if (m := pattern.fullmatch(p.name))]
    return out_dir / f"{stem}{max(taken, default=0) + 1}.pt"


def save_detector(weights: Path, state_dict: dict[str, Any], card: dict[str, Any]) -> None:
    """Write the weights, then the card with their sha256."""
    import torch

    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "state_dict": state_dict}, weights)
    card = {"format": FORMAT, "format_version": FORMAT_VERSION, "weights": weights.name,
            "sha256": sha256_file(weights), **card}
    card_path(weights).write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")


def read_card(weights: Path) -> DetectorCard:
    """Read and check the card of a detector file; every problem is one PluginError line."""
    weights = Path(weights).expanduser()
    if not weights.is_file():
        raise PluginError(f"detector weights {weights} not found; {_RETRAIN}, then point `weights` at the .pt file")
    sidecar = card_path(weights)
    if not sidecar.is_file():
        raise PluginError(
            f"detector card {sidecar} not found beside {weights.name}; keep the .json written with it or {_RETRAIN}"
        )
    try:
        meta = json.loads(sidecar.read_text())
        classes = meta["classes"]
        class_of_label = {int(c["label"]): int(c["class"]) for c in classes}
        label_names = {int(c["label"]): str(c["name"]) for c in classes}
        imgsz = int(meta["imgsz"])
        dataset = str(meta["dataset"])
    except (ValueError, KeyError, TypeError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
        raise PluginError(f"detector card {sidecar} is malformed ({problem}); {_RETRAIN}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise PluginError(
            f"detector card {sidecar}: format {meta.get('format')!r} v{meta.get('format_version')!r} is not "
            f"{FORMAT!r} v{FORMAT_VERSION}; {_RETRAIN}"
        )
    if meta.get("sha256") != sha256_file(weights):
        raise PluginError(
            f"detector weights {weights} do not match the sha256 in {sidecar.name}; the pair was mixed up, {_RETRAIN}"
        )
    return DetectorCard(weights, dataset, class_of_label, label_names, imgsz, meta)


def build_model(card: DetectorCard):
    """An ultralytics YOLO object with the card's weights, built from the packaged config."""
    import torch

    from mskbench.prompting.ultralytics_env import import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    blob = torch.load(card.weights, map_location="cpu", weights_only=True)
    names = {cls: card.label_names[label] for label, cls in card.class_of_label.items()}
    yolo = YOLO(card.meta.get("architecture", ARCHITECTURE), task="detect")
    net = DetectionModel(card.meta.get("architecture", ARCHITECTURE), nc=len(names), verbose=False)
    try:
        net.load_state_dict(blob["state_dict"], strict=True)
    except (KeyError, RuntimeError) as exc:
        raise PluginError(
            f"detector weights {card.weights} do not fit {ARCHITECTURE} with {len(names)} classes: {exc}"
        ) from None
    net.names = dict(sorted(names.items()))
    net.args, net.task = yolo.model.args, "detect"
    yolo.model = net.eval()
    return yolo

"""The detector file format: a tensors-only weights file plus a JSON card beside it.

The weights file holds the state dict of an ultralytics ``yolov8n.yaml``
DetectionModel and is read with ``torch.load(weights_only=True)`` (DESIGN §6),
never unpickled as ultralytics' own ``.pt`` checkpoints are, so a shared
detector file cannot run code. The card (same stem, ``.json``) says which
label each class stands for, the dataset and preprocessing it was trained
on, its validation metrics and the library versions, and the sha256 that
ties it to its weights.

Neither file decides what Python objects are built: the card's
``architecture`` must be a name in :data:`ARCHITECTURES`, and the network is
built from the config that name maps to inside the installed ultralytics
package (an absolute path, so no file in the working directory and no
download stands in for it). A card naming anything else (a ``.pt`` file
that ultralytics would unpickle, a URL, another yaml) is refused before any
file but the card is opened.
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
#: The architectures a card may name, each -> its config inside the ultralytics package. ultralytics
#: reads ``yolov8n.yaml`` as ``yolov8.yaml`` at scale ``n``; the name keeps the scale, the folder pins the file.
ARCHITECTURES: dict[str, str] = {ARCHITECTURE: "cfg/models/v8/yolov8n.yaml"}
_RETRAIN = "train one with `mskbench detector train --dataset NAME --out DIR`"


@dataclass(frozen=True)
class DetectorCard:
    """What a detector file is for: class <-> label map and how it was trained."""

    weights: Path
    dataset: str
    architecture: str
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
    architecture = meta.get("architecture")
    if not isinstance(architecture, str) or architecture not in ARCHITECTURES:
        raise PluginError(
            f"detector card {sidecar}: architecture {architecture!r} is not one mskbench builds "
            f"({', '.join(sorted(ARCHITECTURES))}); {_RETRAIN}"
        )
    if meta.get("sha256") != sha256_file(weights):
        raise PluginError(
            f"detector weights {weights} do not match the sha256 in {sidecar.name}; the pair was mixed up, {_RETRAIN}"
        )
    return DetectorCard(weights, dataset, architecture, class_of_label, label_names, imgsz, meta)


def packaged_config(architecture: str) -> str:
    """The absolute path of an allow-listed architecture's config inside the installed ultralytics.

    ultralytics looks a bare ``yolov8n.yaml`` up in the working directory
    first (and downloads names it cannot find); an absolute path into its
    own package is never looked up anywhere else.
    """
    import ultralytics

    if architecture not in ARCHITECTURES:  # read_card refuses these; a hand-made DetectorCard too
        raise PluginError(f"detector architecture {architecture!r} is not one of {', '.join(sorted(ARCHITECTURES))}")
    path = Path(ultralytics.__file__).resolve().parent / ARCHITECTURES[architecture]
    unified = path.with_name(re.sub(r"(\d+)[nslmx]$", r"\1", path.stem) + path.suffix)  # yolov8n -> yolov8
    if not (path.is_file() or unified.is_file()):
        raise PluginError(
            f"ultralytics {ultralytics.__version__} ships no {unified.name} for {architecture}; "
            "install the ultralytics version the detector was trained with"
        )
    return str(path)


def build_model(card: DetectorCard):
    """An ultralytics YOLO object with the card's weights, built from the packaged config.

    The wrapper and the network are both built from :func:`packaged_config`
    (a ``.yaml``, so ultralytics never takes its unpickling ``.pt`` path), and
    the weights are tensors read by :func:`load_tensor_file`.
    """
    from mskbench.prompting.ultralytics_env import import_ultralytics
    from mskbench.segmenters.checkpoints import load_tensor_file

    import_ultralytics()
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    config = packaged_config(card.architecture)
    blob = load_tensor_file(card.weights, what="detector weights", remedy=_RETRAIN)
    names = {cls: card.label_names[label] for label, cls in card.class_of_label.items()}
    state = blob.get("state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict):
        raise PluginError(f"detector weights {card.weights} hold no 'state_dict' of tensors; {_RETRAIN}")
    yolo = YOLO(config, task="detect")
    net = DetectionModel(config, nc=len(names), verbose=False)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PluginError(
            f"detector weights {card.weights} do not fit {card.architecture} with {len(names)} classes ({first}); "
            f"{_RETRAIN}"
        ) from None
    net.names = dict(sorted(names.items()))
    net.args, net.task = yolo.model.args, "detect"
    yolo.model = net.eval()
    return yolo

"""The JSON sidecar written beside each predicted mask: how it was made, what it holds.

It is written last, through a rename, so its presence means the study is
finished: ``--resume`` skips exactly the studies that have one.
"""

from __future__ import annotations

import dataclasses
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.errors import UserError
from mskbench.manifest import package_versions, sha256_of
from mskbench.output_paths import written_atomically
from mskbench.predict.inputs import Study
from mskbench.predict.setup import PredictSetup

FORMAT = "mskbench-predict"
FORMAT_VERSION = 1


def sidecar_path(out: Path, study_id: str) -> Path:
    return out / f"{study_id}.json"


def _versions() -> dict[str, str | None]:
    versions = package_versions()
    try:
        versions["highdicom"] = metadata.version("highdicom")
    except metadata.PackageNotFoundError:
        versions["highdicom"] = None
    return versions


def _detector(prompter: Any) -> dict[str, Any] | None:
    card = getattr(prompter, "card", None)
    if card is None:
        return None
    return {"weights": str(card.weights), "weights_sha256": sha256_of(card.weights), "dataset": card.dataset,
            "architecture": card.architecture, "labels": {str(k): v for k, v in sorted(card.label_names.items())},
            "imgsz": card.imgsz, "meta": card.meta}


def label_summary(labels_ras: np.ndarray, setup: PredictSetup, spacing: tuple[float, ...],
                  lost: dict[int, int]) -> dict[str, Any]:
    """Per label: voxels and volume in the written label map, and ``voxels_lost_to_overlap`` (its own mask's
    voxels that a higher label took, :func:`mskbench.predict.pipeline.overlap_losses`)."""
    counts = np.bincount(labels_ras.ravel().astype(np.int64), minlength=max(setup.label_map, default=0) + 1)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return {
        str(label): {"name": info.name, "tissue": info.tissue.value, "voxels": int(counts[label]),
                     "volume_ml": round(int(counts[label]) * voxel_ml, 6),
                     "voxels_lost_to_overlap": int(lost.get(label, 0))}
        for label, info in sorted(setup.label_map.items())
    }


def describe_run(setup: PredictSetup, model: Any, suite: str | None) -> dict[str, Any]:
    """What made every mask of this predict call (the same for all its studies)."""
    entry = setup.model.entry
    described = model.describe() if hasattr(model, "describe") else {}
    checkpoint_sha = sha256_of(entry.checkpoint) if entry.checkpoint and Path(entry.checkpoint).is_file() else None
    return {
        "suite": suite,
        "model": {"name": entry.name, "plugin": entry.plugin, "params": setup.model.params,
                  "checkpoint": entry.checkpoint or described.get("checkpoint"),
                  "checkpoint_sha256": checkpoint_sha or described.get("checkpoint_sha256"), "describe": described},
        "prompter": {"name": setup.prompter_name, "plugin": setup.prompter_plugin, "params": setup.prompter_params,
                     "seed": setup.seed, "dataset": setup.dataset},
        "detector": _detector(setup.prompter),
        "postprocess": dataclasses.asdict(entry.postprocess) | {"active": entry.postprocess.active},
        "preprocess": setup.preprocess.describe(),
        "slice_axis": setup.slice_axis,
        "device": setup.device,
        "versions": _versions(),
    }


def write_sidecar(path: Path, run: dict[str, Any], study: Study, record: dict[str, Any]) -> None:
    volume = study.volume
    body = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "study": study.id,
        "input": {"source": study.source, "orientation": list(volume.original_orientation),
                  "ras_shape": list(volume.array.shape), "spacing_ras_mm": list(volume.spacing),
                  "series_uid": study.dicom.series_uid if study.dicom else None},
        **run, **record,
    }
    with written_atomically(path, "--out") as temporary:
        temporary.write_text(json.dumps(body, indent=2, default=str), encoding="utf-8")


def read_finished(path: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    """A finished study's sidecar, or None when it has none; one made by another model or prompter is an error."""
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None  # cut short by a kill before the rename cannot happen; a foreign file: predict it again
    for key in ("model", "prompter"):
        if body.get(key, {}).get("name") != run[key]["name"]:
            raise UserError(
                f"--resume: {path} was made by {key} '{body.get(key, {}).get('name')}', not '{run[key]['name']}'; "
                "resume with the same model and prompter, or use another --out folder"
            )
    return body

"""nnU-Net's ``dataset.json``: read once here for the ``nifti_folder`` dataset and the ``nnunet`` model.

Both need its label table as id -> name under the same name normalisation,
so that a model trained on a dataset and that dataset agree on what a label is called.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mskbench.errors import DataError


def read_dataset_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read dataset.json ({exc}); check it is valid JSON") from None
    if not isinstance(meta, dict):
        raise DataError(f"{path}: dataset.json holds a {type(meta).__name__}, not an object; write it as nnU-Net does")
    return meta


def label_name_key(name: str) -> str:
    """The form label names are compared in: lower case, spaces as underscores."""
    return str(name).strip().lower().replace(" ", "_")


def names_from_dataset_json(meta: dict[str, Any], path: Path) -> dict[int, str]:
    """id -> name from nnU-Net v2 ({"name": id}) or v1 ({"id": "name"}) label tables, background dropped."""
    labels = meta.get("labels")
    if not isinstance(labels, dict) or not labels:
        raise DataError(f"{path}: no 'labels' table; add one as in nnU-Net's dataset.json")
    names: dict[int, str] = {}
    for key, value in labels.items():
        if isinstance(value, int) and not isinstance(value, bool):  # v2: {"femur": 1}
            label_id, name = value, str(key)
        elif str(key).isdigit():  # v1: {"1": "femur"}
            label_id, name = int(key), str(value)
        else:
            raise DataError(f"{path}: label '{key}': {value!r} is not an integer id (region labels are not supported)")
        if label_id != 0:
            names[label_id] = label_name_key(name)
    return names

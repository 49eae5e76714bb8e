"""Write a phantom cohort to disk so the same subjects also feed the file readers.

Layout of ``out_dir``::

    <id>_image.nii.gz    float32 image, RAS+ affine (spacing in mm)
    <id>_labels.nii.gz   uint8 label map on the same grid
    <id>_t2.nii.gz       quantitative maps in ms (knee only), same grid
    <id>_t1rho.nii.gz
    labels.json          label id -> name and tissue class
    truth.json           analytic truth per subject: biomarker, structure, value, unit
    metadata.csv         one row per subject: split, demographics, acquisition, grid
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.errors import DataError
from mskbench.phantom.anatomy import LOCAL_3D_THICKNESS
from mskbench.types import Acquisition, Demographics

log = logging.getLogger(__name__)

UNITS = {"tissue_volume": "cm3", "cartilage_thickness": "mm", LOCAL_3D_THICKNESS: "mm", "disc_height": "mm",
         "t2": "ms", "t1rho": "ms"}
METADATA_COLUMNS = (
    "subject_id", "split", "anatomy",
    *(f.name for f in fields(Demographics)),
    *(f.name for f in fields(Acquisition)),
    "shape", "spacing_mm",
)


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm", "msec")
    nib.save(image, str(path))


def write_phantom(anatomy: str, n_subjects: int, seed: int, out_dir: Path, **options: Any) -> Path:
    """Generate ``n_subjects`` subjects of ``anatomy`` and write them under ``out_dir``.

    ``options`` are :class:`mskbench.phantom.generate.PhantomOptions` fields
    (``snr``, ``noise``, ``bias``, ``pixel_spacing``, ``cartilage_thickness``,
    ``supersample``, ``acquisition``). Returns ``out_dir``.
    """
    from mskbench.phantom.cohort import cohort_splits
    from mskbench.phantom.generate import PhantomOptions, generate_subject, label_map
    from rich.console import Console
    from rich.progress import track

    valid = {f.name for f in fields(PhantomOptions)}
    unknown = sorted(set(options) - valid)
    if unknown:
        raise DataError(f"phantom option {unknown[0]!r} is unknown; use one of {', '.join(sorted(valid))}")
    if n_subjects < 1:
        raise DataError(f"phantom: --subjects must be at least 1, got {n_subjects}")
    label_map(anatomy)  # rejects an unknown anatomy before anything is written
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"{out_dir}: cannot create the output folder ({error.strerror}); choose another --out"
        ) from None
    phantom_options = PhantomOptions(**options)
    splits = cohort_splits(anatomy, n_subjects, seed)

    truth: dict[str, list[dict[str, Any]]] = {}
    rows = []
    console = Console(stderr=True)
    steps = track(range(n_subjects), description=f"phantom {anatomy}", console=console, disable=not console.is_terminal)
    for index in steps:
        subject = generate_subject(anatomy, seed, index, phantom_options)
        _save_nifti(subject.volume, subject.affine, out_dir / f"{subject.id}_image.nii.gz")
        _save_nifti(subject.labels, subject.affine, out_dir / f"{subject.id}_labels.nii.gz")
        for name, values in subject.maps.items():
            _save_nifti(values, subject.affine, out_dir / f"{subject.id}_{name}.nii.gz")
        truth[subject.id] = [
            {"biomarker": biomarker, "structure": structure, "value": value, "unit": UNITS[biomarker]}
            for (biomarker, structure), value in sorted(subject.truth.items())
        ]
        row = {"subject_id": subject.id, "split": splits[subject.id], "anatomy": anatomy,
               **asdict(subject.demographics), **asdict(subject.acquisition),
               "shape": "x".join(str(n) for n in subject.volume.shape),
               "spacing_mm": "x".join(f"{s:.4g}" for s in subject.spacing)}
        rows.append(row)

    labels = {str(i): {"name": info.name, "tissue": info.tissue.value} for i, info in label_map(anatomy).items()}
    (out_dir / "labels.json").write_text(json.dumps(labels, indent=2) + "\n")
    (out_dir / "truth.json").write_text(json.dumps(
        {"anatomy": anatomy, "seed": seed, "options": _jsonable(asdict(phantom_options)), "subjects": truth},
        indent=2) + "\n")
    with open(out_dir / "metadata.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=METADATA_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    log.info("wrote %d %s phantom subjects to %s", n_subjects, anatomy, out_dir)
    return out_dir


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value

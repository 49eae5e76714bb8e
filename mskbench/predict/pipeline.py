"""Predict every study: run the shared inference path, write masks, sidecars, QC, biomarkers, a summary.

One study is: its image as a subject with an all-zero reference (every
slice is predicted), round-0 prompts from the reference-free prompter
(:func:`mskbench.execution.prompts.initial_prompts`), and the unit that
`mskbench run` executes (:func:`mskbench.execution.unit.unit_predictions`,
post-processing included). Only the writing is predict's own.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.data.preprocess import PreparedSubject, prepare_subject
from mskbench.data.subjects import build_subject
from mskbench.errors import UserError
from mskbench.execution.prompts import initial_prompts, slice_arrays
from mskbench.execution.records import biomarker_rows, label_volume
from mskbench.execution.unit import Unit, unit_predictions
from mskbench.output_paths import written_atomically
from mskbench.plan import Cell
from mskbench.predict.inputs import Study
from mskbench.predict.outputs import write_nifti, write_qc
from mskbench.predict.setup import PredictSetup
from mskbench.predict.sidecar import describe_run, label_summary, read_finished, sidecar_path, write_sidecar
from mskbench.progress import RunProgress

log = logging.getLogger(__name__)

FORMATS = {"nifti": ("nifti",), "dicom-seg": ("dicom-seg",), "both": ("nifti", "dicom-seg")}


@dataclass(frozen=True)
class PredictOptions:
    out: Path
    formats: tuple[str, ...] = ("nifti",)
    qc_every: int = 0  # a QC overlay PNG every N slices; 0: none
    biomarkers: bool = False
    resume: bool = False
    overwrite: bool = False
    suite: str | None = None
    show_progress: bool = True


def check_out_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """A non-empty --out is only written into with --resume or --overwrite."""
    from mskbench.output_paths import writable_folder

    writable_folder(out, "--out")
    if resume and overwrite:
        raise UserError("--resume and --overwrite contradict each other; --resume keeps finished studies, "
                        "--overwrite predicts them again: pass one")
    if out.is_dir() and any(out.iterdir()) and not (resume or overwrite):
        count = sum(1 for _ in out.iterdir())
        raise UserError(f"--out {out}: the folder is not empty ({count} entries); pass --resume to skip finished "
                        "studies, --overwrite to replace their outputs, or choose an empty folder")


def overlap_losses(masks: dict[int, np.ndarray]) -> dict[int, int]:
    """Voxels of each label's mask that a label map loses to a higher label id (the one it keeps there).

    `mskbench run` scores every label's own mask, which may overlap another's
    (a SAM-family model answers each prompt alone); a label volume holds one
    label per voxel, so where masks overlap the written label's Dice differs
    from the suite's. The sidecar says by how much.
    """
    claimed = np.zeros(next(iter(masks.values())).shape, dtype=bool) if masks else None
    lost = {}
    for label in sorted(masks, reverse=True):
        lost[label] = int(np.count_nonzero(masks[label] & claimed))
        claimed |= masks[label]
    return lost


def predict_study(
    setup: PredictSetup, model: Any, study: Study, on_slice: Any = lambda: None
) -> tuple[np.ndarray, PreparedSubject, dict[int, int]]:
    """The study's post-processed label volume on the RAS+ grid, the prepared subject it was predicted on, and
    the voxels each label lost to overlaps (:func:`overlap_losses`)."""
    shape = study.volume.array.shape
    subject = build_subject(
        study.id, study.volume, np.zeros(shape, dtype=np.uint8), setup.label_map,
        acquisition=study.acquisition, demographics=study.demographics, anatomy=study.anatomy,
        source_files=(study.source,),
    )
    prepared = prepare_subject(subject, setup.slice_axis, setup.preprocess)  # type: ignore[arg-type]
    images, references = slice_arrays(prepared)
    prompts = initial_prompts(setup.prompter, setup.prompter_name, setup.seed, setup.dataset, prepared,
                              sorted(setup.label_map), images, references)
    entry = setup.model.entry
    cell = Cell(setup.dataset, entry.name, setup.prompter_name, setup.seed)
    unit = Unit(setup.dataset, prepared, entry.name, setup.model.kind, entry.batch_size, (cell,),
                {cell.cell_id: prompts}, plugin=entry.plugin, postprocess=entry.postprocess)
    prediction = unit_predictions(unit, {setup.prompter_name: setup.prompter}, model, on_slice)[cell.cell_id]
    final = prediction.rounds[-1]
    lost = overlap_losses(final)
    overlapped = {setup.label_map[label].name: n for label, n in lost.items() if n}
    if overlapped:
        log.warning("%s: predicted masks overlap; the label map keeps the highest label id there, so these labels "
                    "lost voxels (per-label Dice in `mskbench run` counts them): %s", study.id,
                    ", ".join(f"{name} {n}" for name, n in overlapped.items()))
    return label_volume(final, shape), prepared, lost


def _write_study(setup: PredictSetup, study: Study, labels: np.ndarray, prepared: PreparedSubject, lost: dict[int, int],
                 options: PredictOptions, seconds: dict[str, float], written: list[Path]) -> dict[str, Any]:
    """Write one study's outputs (sidecar excepted), listing each in ``written``; return the sidecar's per-study part."""
    out, max_label = options.out, max(setup.label_map, default=1)
    outputs: dict[str, Any] = {}
    record: dict[str, Any] = {}
    if "dicom-seg" in options.formats:
        from mskbench.predict.dicom_seg import write_dicom_seg

        began = time.perf_counter()
        entry = setup.model.entry
        path = out / f"{study.id}_seg.dcm"
        record["dicom_seg"] = write_dicom_seg(labels, study, setup.label_map, path,
                                              f"{entry.name} + {setup.prompter_name}", _mskbench_version())
        written.append(path)
        outputs["dicom_seg"] = path.name
        seconds["write_dicom_seg"] = time.perf_counter() - began
    if "nifti" in options.formats:
        began = time.perf_counter()
        written.append(write_nifti(labels, study, max_label, out / f"{study.id}.nii.gz"))
        outputs["nifti"] = written[-1].name
        seconds["write_nifti"] = time.perf_counter() - began
    if options.qc_every:
        qc = write_qc(prepared.subject.volume, labels, prepared.axis, options.qc_every, out, study.id, written)
        outputs["qc"] = [p.name for p in qc]
    if options.biomarkers:
        record["biomarkers"] = biomarker_rows(setup.biomarkers, labels, prepared, "prediction")
    record["labels"] = label_summary(labels, setup, prepared.subject.spacing, lost)
    record["outputs"] = outputs
    record["seconds"] = {key: round(value, 4) for key, value in seconds.items()}
    return record


def _mskbench_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("mskbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def run_predict(setup: PredictSetup, studies: Iterable[Study], count: int, options: PredictOptions) -> list[dict[str, Any]]:
    """Predict and write every study (finished ones are skipped with --resume); return the sidecars."""
    options.out.mkdir(parents=True, exist_ok=True)
    model = setup.build_model()
    run = describe_run(setup, model, options.suite)
    finished: list[dict[str, Any]] = []
    with RunProgress(enabled=options.show_progress) as progress:
        progress.start_dataset("predict", count)
        for study in studies:
            path = sidecar_path(options.out, study.id)
            done = read_finished(path, run) if options.resume else None
            if done is None:
                began = time.perf_counter()
                progress.start_slices(study.id, study.volume.array.shape[_axis_of(setup, study)])
                labels, prepared, lost = predict_study(setup, model, study, progress.advance_slice)
                written: list[Path] = []
                try:
                    record = _write_study(setup, study, labels, prepared, lost, options,
                                          {"predict": time.perf_counter() - began}, written)
                    write_sidecar(path, run, study, record)
                except BaseException:  # a study is all its outputs or none of them
                    for partial in written:
                        partial.unlink(missing_ok=True)
                    raise
                done = read_finished(path, run)
            else:
                log.info("skipping %s: finished (%s)", study.id, path)
            finished.append(done)  # type: ignore[arg-type]
            progress.advance_subject()
    write_summary(options.out, finished, options.biomarkers)
    return finished


def _axis_of(setup: PredictSetup, study: Study) -> int:
    from mskbench.data.preprocess import slice_axis_index

    return slice_axis_index(study.volume.spacing, setup.slice_axis)  # type: ignore[arg-type]


def summary_rows(sidecars: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for body in sidecars:
        row: dict[str, Any] = {"study": body["study"], "source": body["input"]["source"],
                               "seconds": body["seconds"].get("predict")}
        for info in body["labels"].values():
            row[f"{info['name']}_ml"] = info["volume_ml"]
        rows.append(row)
    return rows


def _csv_text(rows: Sequence[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_summary(out: Path, sidecars: Sequence[dict[str, Any]], biomarkers: bool) -> None:
    """summary.csv (one row per study: label volumes in ml) and, with --biomarkers, biomarkers.csv."""
    tables = {"summary.csv": summary_rows(sidecars)}
    if biomarkers:
        tables["biomarkers.csv"] = [{"study": b["study"], **row} for b in sidecars for row in b.get("biomarkers", [])]
    for name, rows in tables.items():
        if not rows:
            continue
        with written_atomically(out / name, "--out") as temporary:
            temporary.write_text(_csv_text(rows), encoding="utf-8")

"""`mskbench predict`: run a model with a reference-free prompter on unlabeled studies (DESIGN §13)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mskbench.cli.main import app
from mskbench.errors import UserError

_FROM_SUITE = ("--model-params", "--checkpoint", "--labels", "--postprocess", "--prompter-params", "--detector",
               "--anatomy", "--per-slice")


@app.command()
def predict(
    model: Annotated[str, typer.Option(help="Model plugin (or, with --suite, the suite's model entry name).")],
    out: Annotated[Path, typer.Option(help="Output folder: masks, JSON sidecars, QC PNGs, summary.csv.")],
    inputs: Annotated[list[Path] | None, typer.Option("--input", help="NIfTI/MHA/NRRD file or DICOM series folder; repeat for more.")] = None,
    suite: Annotated[Path | None, typer.Option(help="Take the model, prompter, labels and preprocessing from this suite.")] = None,
    dataset: Annotated[str | None, typer.Option(help="With --suite: the dataset entry (its labels; its subjects when no --input).")] = None,
    prompter: Annotated[str | None, typer.Option(help="Reference-free prompter: none, yolo or box3d-from-file (default: yolo with --detector, else none).")] = None,
    detector: Annotated[Path | None, typer.Option(help="Detector weights for the yolo prompter (from `mskbench detector train`).")] = None,
    model_params: Annotated[str | None, typer.Option(help="Model params as JSON, e.g. '{\"variant\": \"vit_b\"}'.")] = None,
    prompter_params: Annotated[str | None, typer.Option(help="Prompter params as JSON, e.g. '{\"conf\": 0.3}'.")] = None,
    checkpoint: Annotated[str | None, typer.Option(help="Model checkpoint file.")] = None,
    per_slice: Annotated[bool, typer.Option("--per-slice", help="A slice model takes box3d prompts as the box on every slice of the extent.")] = False,
    labels: Annotated[str | None, typer.Option(help="Labels to predict, e.g. 1=femur,2=tibia (default: the detector's).")] = None,
    postprocess: Annotated[str | None, typer.Option(help="Post-processing as JSON, e.g. '{\"fill_holes\": \"slice\"}'.")] = None,
    slice_axis: Annotated[str, typer.Option(help="axial, sagittal, coronal or through_plane.")] = "through_plane",
    anatomy: Annotated[str | None, typer.Option(help="Anatomy for the default biomarkers (knee, spine, hip, ...).")] = None,
    series: Annotated[str | None, typer.Option(help="SeriesInstanceUID to read from a folder holding several series.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="nifti, dicom-seg or both.")] = "nifti",
    qc_every: Annotated[int, typer.Option(help="A QC overlay PNG every N slices (0: none).")] = 0,
    biomarkers: Annotated[bool, typer.Option(help="Compute the default biomarkers on the masks (sidecar + biomarkers.csv).")] = False,
    limit_subjects: Annotated[int | None, typer.Option(help="With --suite and no --input: at most N subjects.")] = None,
    resume: Annotated[bool, typer.Option(help="Skip studies whose sidecar is already in --out.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Write into a non-empty --out, replacing outputs.")] = False,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
) -> None:
    """Write masks on each input's exact grid (NIfTI, DICOM SEG) with a JSON sidecar per study."""
    from mskbench.plugin_manager import get_registry
    from mskbench.predict import pipeline, setup as setups
    from mskbench.predict.inputs import dataset_studies, file_studies

    from mskbench.params import check_value
    from mskbench.suite import DEVICE

    if fmt not in pipeline.FORMATS:
        raise UserError(f"--format {fmt}: use nifti, dicom-seg or both")
    if qc_every < 0:
        raise UserError(f"--qc-every {qc_every}: must be 0 (no QC) or a number of slices")
    if device is not None:
        check_value(DEVICE, device, "--device", UserError)
    options = pipeline.PredictOptions(out, pipeline.FORMATS[fmt], qc_every, biomarkers, resume, overwrite,
                                      str(suite) if suite else None)
    pipeline.check_out_folder(out, resume, overwrite)
    if "dicom-seg" in options.formats:
        from mskbench.predict.dicom_seg import require_highdicom

        require_highdicom()
    studies = file_studies(inputs, series) if inputs else None  # bad files fail before any model is built
    if studies is not None and "dicom-seg" in options.formats:
        not_dicom = [s.source for s in studies if s.dicom is None]
        if not_dicom:
            raise UserError(f"--format {fmt}: {not_dicom[0]} is not a DICOM series, and a DICOM SEG must reference "
                            "one; use --format nifti for image files")
    registry = get_registry()
    if suite is not None:
        given = dict(zip(_FROM_SUITE, (model_params, checkpoint, labels, postprocess, prompter_params, detector, anatomy,
                                       per_slice or None)))
        clash = [name for name, value in given.items() if value is not None]
        if clash:
            raise UserError(f"{', '.join(clash)}: taken from the suite's entries with --suite; leave "
                            f"{'it' if len(clash) == 1 else 'them'} out or edit the suite")
        setup = setups.from_suite(suite, model, prompter, dataset, device, registry)
    else:
        if dataset is not None:
            raise UserError("--dataset names a dataset entry of a suite; give --suite too")
        params = setups.parse_json_option(prompter_params, "--prompter-params")
        if detector is not None:
            params["weights"] = str(detector)
        setup = setups.from_options(
            model, setups.parse_json_option(model_params, "--model-params"), checkpoint,
            prompter or ("yolo" if detector is not None else "none"), params, labels,
            setups.parse_json_option(postprocess, "--postprocess"), slice_axis, anatomy, device, registry,
            per_slice,
        )
    if studies is not None:
        count, stream = len(studies), iter(studies)
    elif setup.planned_dataset is not None:
        if "dicom-seg" in options.formats:
            raise UserError(f"--format {fmt}: a dataset's subjects are written as NIfTI; give DICOM folders with --input")
        from mskbench.runner import subject_ids

        count = len(subject_ids(setup.planned_dataset, limit_subjects))
        stream = dataset_studies(setup.planned_dataset, limit_subjects)
    else:
        raise UserError("nothing to predict: give --input FILE_OR_DICOM_FOLDER (repeatable), or --suite S to predict "
                        "a dataset entry's subjects")
    sidecars = pipeline.run_predict(setup, stream, count, options)
    _print_summary(sidecars, out)


def _print_summary(sidecars: list[dict], out: Path) -> None:
    from mskbench.predict.pipeline import summary_rows

    rows = summary_rows(sidecars)
    table = Table(title=f"mskbench predict → {out}")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else f"{row[c]:.3g}" if isinstance(row.get(c), float) else str(row[c])
                        for c in columns))
    Console().print(table)

"""`mskbench biomarkers` commands: clinical biomarkers of users' own mask files."""

from __future__ import annotations

import json
import math

import typer

from mskbench.errors import UserError

app = typer.Typer(help="Clinical biomarkers (thickness, volume, disc height, T2/T1rho) of mask files.",
                  no_args_is_help=True)


def parse_label_ids(text: str | None) -> list[int] | None:
    """'1,2' → [1, 2]; one clear error for anything that is not positive integers."""
    if text is None:
        return None
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) == 0:
            raise UserError(f"--labels: {part!r} is not a positive integer label id; use e.g. --labels 1,2")
        if int(part) not in ids:
            ids.append(int(part))
    return ids


def _as_dict(value) -> dict:
    number = None if math.isnan(value.value) else value.value
    return {
        "structure": value.structure,
        "biomarker": value.biomarker,
        "value": number,
        "unit": value.unit,
        "instance": value.instance,
        "method": value.method,
    }


@app.command("compute")
def compute(
    mask: str = typer.Option(..., "--mask", help="Label file (.nii, .nii.gz, .mha, .nrrd); spacing from its header."),
    biomarker: str = typer.Option(
        ..., "--biomarker", help="cartilage_thickness, tissue_volume, disc_height, t2 or t1rho."
    ),
    map_file: str | None = typer.Option(None, "--map", help="T2 or T1rho map in ms on the mask's grid."),
    labels: str | None = typer.Option(None, "--labels", help="Comma-separated label ids (default: all in the mask)."),
    slice_axis: str = typer.Option(
        "auto", "--slice-axis", help="auto (largest spacing; sagittal if isotropic), sagittal, coronal or axial."
    ),
    method: str | None = typer.Option(
        None, "--method", help="cartilage_thickness only: medial_axis_2d (default, per slice) or local_3d."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """Compute one biomarker per label of a mask file (NaN / null = label missing)."""
    from mskbench.biomarkers.files import compute_from_files

    values = compute_from_files(
        mask, biomarker, map_path=map_file, label_ids=parse_label_ids(labels), slice_axis=slice_axis, method=method
    )
    rows = [_as_dict(v) for v in values]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no labels in the mask")
        return
    typer.echo(f"{'structure':<24} {'instance':>8} {biomarker:>20}  unit")
    for row in rows:
        shown = "missing" if row["value"] is None else f"{row['value']:.3f}"
        instance = "" if row["instance"] is None else str(row["instance"])
        typer.echo(f"{row['structure']:<24} {instance:>8} {shown:>20}  {row['unit']}")

"""`mskbench data` commands: list dataset plugins, inspect files and datasets, write the phantom."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from mskbench.errors import DataError, PluginError

log = logging.getLogger(__name__)
app = typer.Typer(help="Datasets: list plugins, inspect files or datasets, write the phantom.", no_args_is_help=True)


def _echo_json(payload: Any) -> None:
    typer.echo(json.dumps(_json_safe(payload), indent=2, default=str, allow_nan=False))


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite number replaced by None, so the output is valid JSON."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) or type(value).__name__.startswith("float"):  # float and numpy floats
        number = float(value)
        return number if math.isfinite(number) else None
    return value


@app.command("list")
def list_datasets(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the registered dataset plugins and their parameters."""
    from mskbench.plugin_manager import get_registry

    registry = get_registry()
    rows = [info.row() for info in registry.of_kind("dataset")]
    rows += [f.row() for f in registry.failures if f.kind in (None, "dataset") and "dataset" in (f.kind or f.entry_point)]
    if as_json:
        _echo_json(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "distribution", "description", "params")
    for row in rows:
        description = row["description"] or f"[red]failed: {row['error']}[/red]"
        table.add_row(row["name"], row["distribution"], description, ", ".join(row["params"]))
    Console().print(table)


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise PluginError(f"--param {pair!r}: write it as key=value, e.g. --param root=/data/spider")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def file_info(path: Path) -> dict[str, Any]:
    """Shape, spacing, orientation, dtype, intensity range and label values of one file or DICOM folder."""
    import numpy as np

    from mskbench.data.readers import read_volume

    info: dict[str, Any] = {"path": str(path)}
    if path.is_dir():
        from mskbench.data.dicom import read_dicom_series

        series = read_dicom_series(path)
        volume = series.volume
        info.update(
            format="dicom",
            series_uid=series.series_uid,
            files=len(series.files),
            acquisition=vars(series.acquisition),
            demographics=vars(series.demographics),
        )
    else:
        volume = read_volume(path)
        info["format"] = "".join(path.suffixes).lstrip(".") or "dicom"
    array = volume.array
    finite = np.isfinite(array)
    not_finite = int(array.size - np.count_nonzero(finite))
    if not_finite:
        log.warning("%s: %d of %d voxels are NaN or infinite; intensity_range ignores them", path, not_finite, array.size)
    finite_values = array[finite] if not_finite else array
    info.update(
        shape=list(array.shape),
        spacing_mm=[round(s, 6) for s in volume.spacing],
        orientation=list(volume.orientation),
        original_orientation=list(volume.original_orientation),
        dtype=str(array.dtype),
        intensity_range=[float(np.min(finite_values)), float(np.max(finite_values))] if finite_values.size else [None, None],
        non_finite_voxels=not_finite,
    )
    if np.issubdtype(array.dtype, np.integer):
        values = np.unique(array)
        info["label_values"] = [int(v) for v in values] if values.size <= 512 else None
    else:
        info["label_values"] = None
    return info


def _summarise(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    if not known:
        return None
    if all(isinstance(v, (int, float)) for v in known):
        return {"min": min(known), "max": max(known), "n": len(known)}
    return dict(Counter(str(v) for v in known))


def dataset_info(name: str, params: dict[str, Any], limit: int) -> dict[str, Any]:
    """Subjects per split, label map, and an acquisition summary over the first ``limit`` subjects."""
    from mskbench.plugin_manager import get_registry
    from mskbench.types import SPLITS

    dataset = get_registry().create("dataset", name, params, f"dataset {name}")
    ids = dataset.subject_ids()
    loaded = [dataset.load(sid) for sid in ids[:limit]]
    fields = ("field_strength_t", "vendor", "sequence", "te_ms", "tr_ms", "flip_angle_deg",
              "slice_thickness_mm", "pixel_spacing_mm", "acquisition_type")
    return {
        "dataset": name,
        "subjects": len(ids),
        "splits": {split: len(dataset.subject_ids(split)) for split in SPLITS},
        "slice_axis": dataset.slice_axis,
        "labels": [{"id": i, "name": info.name, "tissue": str(info.tissue)} for i, info in sorted(dataset.label_map.items())],
        "summarised_subjects": len(loaded),
        "acquisition": {f: _summarise([getattr(s.acquisition, f) for s in loaded]) for f in fields},
        "sex": _summarise([s.demographics.sex for s in loaded]),
        "age_years": _summarise([s.demographics.age_years for s in loaded]),
        "shapes": _summarise([str(list(s.volume.shape)) for s in loaded]),
    }


@app.command()
def info(
    target: Annotated[str, typer.Argument(help="An image/label file, a DICOM series folder, or a dataset plugin name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    param: Annotated[list[str] | None, typer.Option("--param", help="Dataset param key=value (repeatable).")] = None,
    limit: Annotated[int, typer.Option(help="Subjects loaded for a dataset's acquisition summary.")] = 10,
) -> None:
    """Describe a file (after reorientation to RAS+) or a dataset (subjects, labels, acquisitions)."""
    path = Path(target)
    if path.exists():
        payload = file_info(path)
    elif any(sep in target for sep in ("/", "\\")) or "." in Path(target).name:
        raise DataError(f"{target}: file not found; check the path (or give a dataset name from `mskbench data list`)")
    else:
        payload = dataset_info(target, _parse_params(param or []), limit)
    if as_json:
        _echo_json(payload)
        return
    for key, value in payload.items():
        typer.echo(f"{key}: {value}")


@app.command()
def phantom(
    out: Annotated[Path, typer.Option(help="Output folder.")],
    anatomy: Annotated[str, typer.Option(help="knee, spine, thigh or hip.")] = "knee",
    subjects: Annotated[int, typer.Option(min=1, help="Number of subjects.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same files.")] = 0,
) -> None:
    """Write phantom subjects as NIfTI images, label maps, quantitative maps, truth.json and metadata."""
    from mskbench.output_paths import writable_folder
    from mskbench.phantom.export import write_phantom

    writable_folder(out, "--out")
    written = write_phantom(anatomy, subjects, seed, out)
    typer.echo(f"wrote {subjects} {anatomy} phantom subjects to {written}")

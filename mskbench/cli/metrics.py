"""`mskbench metrics` commands: score label files a user brings (bring-your-own predictions)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

import typer

from mskbench.errors import UserError

app = typer.Typer(help="Score segmentation label files with the harness's metric policy.", no_args_is_help=True)

METRIC_ORDER = ("dice", "iou", "hd95", "hd", "assd", "masd", "nsd")


def parse_labels(text: str | None) -> list[int] | None:
    """'1,2' -> [1, 2]; None -> None (score every label present)."""
    if text is None:
        return None
    labels = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) == 0:
            raise UserError(f"--labels: '{part}' is not a positive integer label; use e.g. --labels 1,2")
        labels.append(int(part))
    return sorted(set(labels))


def _number(value: float) -> float | None:
    """JSON has no NaN: undefined values are written as null."""
    return None if math.isnan(value) else value


def _label_json(label_score) -> dict[str, Any]:
    out: dict[str, Any] = {name: _number(v.value) for name, v in label_score.values.items()}
    out["case_state"] = label_score.case_state
    out["substituted"] = label_score.substituted
    return out


def _file_json(score) -> dict[str, Any]:
    return {
        "case": score.case,
        "reference": score.reference_path,
        "prediction": score.prediction_path,
        "prediction_missing": score.prediction_missing,
        "spacing_mm": list(score.spacing),
        "labels": {str(label): _label_json(ls) for label, ls in score.labels.items()},
    }


def _format(value: float, substituted: bool) -> str:
    text = "NaN" if math.isnan(value) else f"{value:.4f}"
    return text + ("*" if substituted else "")


def _scores_table(scores, title: str):
    from rich.table import Table

    table = Table(title=title)
    for column in ("case", "label", "state", *METRIC_ORDER):
        table.add_column(column, justify="left" if column in ("case", "state") else "right")
    for score in scores:
        case = score.case + (" (no prediction)" if score.prediction_missing else "")
        for label, ls in score.labels.items():
            cells = [_format(ls.values[m].value, ls.values[m].substituted) if m in ls.values else "" for m in METRIC_ORDER]
            table.add_row(case, str(label), ls.case_state, *cells)
    return table


def _summary_table(summary):
    from rich.table import Table

    table = Table(title="Across cases (excluded: NaN / both_empty; substituted: worst case used)")
    for column in ("label", "metric", "mean", "median", "sd", "n", "excluded", "substituted"):
        table.add_column(column, justify="right")
    for row in summary.itertuples(index=False):
        table.add_row(str(row.label), row.metric, *(_format(v, False) for v in (row.mean, row.median, row.sd)),
                      str(row.n), str(row.excluded), str(row.substituted))
    return table


def _check_mode(reference, prediction, reference_dir, prediction_dir) -> bool:
    """True for folder mode; raise when the options do not name exactly one mode."""
    files = reference is not None or prediction is not None
    folders = reference_dir is not None or prediction_dir is not None
    if files == folders:
        raise UserError("give either --reference and --prediction, or --reference-dir and --prediction-dir")
    if files and (reference is None or prediction is None):
        raise UserError("--reference and --prediction must be given together")
    if folders and (reference_dir is None or prediction_dir is None):
        raise UserError("--reference-dir and --prediction-dir must be given together")
    return folders


@app.command("compute")
def compute(
    reference: Optional[Path] = typer.Option(None, "--reference", help="Reference label file (NIfTI, MHA, NRRD)."),
    prediction: Optional[Path] = typer.Option(None, "--prediction", help="Predicted label file on the same grid."),
    reference_dir: Optional[Path] = typer.Option(None, "--reference-dir", help="Folder of reference label files."),
    prediction_dir: Optional[Path] = typer.Option(
        None, "--prediction-dir", help="Folder of predictions, matched to references by file name."
    ),
    labels: Optional[str] = typer.Option(None, "--labels", help="Labels to score, e.g. 1,2 (default: all present)."),
    nsd_tolerance: float = typer.Option(1.0, "--nsd-tolerance", help="NSD tolerance tau in mm."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (undefined values as null)."),
    db: Optional[Path] = typer.Option(None, "--db", help="Append rows to table file_metrics of this DuckDB file."),
) -> None:
    """Dice, IoU, HD95, HD, ASSD, MASD and NSD per label; the reference's grid and spacing are authoritative."""
    from rich.console import Console

    from mskbench.metrics import files
    from mskbench.metrics.engine import aggregate
    from mskbench.metrics.overlap import OverlapMetrics
    from mskbench.metrics.surface import SurfaceMetrics

    folder_mode = _check_mode(reference, prediction, reference_dir, prediction_dir)
    chosen = parse_labels(labels)
    if not (math.isfinite(nsd_tolerance) and nsd_tolerance >= 0):
        raise UserError(f"--nsd-tolerance: {nsd_tolerance} must be a finite number of mm >= 0")
    metrics = [OverlapMetrics(), SurfaceMetrics(nsd_tolerance_mm=nsd_tolerance)]
    if db is not None:
        from mskbench.store import Store

        Store.check_writable(db)  # a damaged or unwritable --db fails before the scoring, not after

    orphans: list[Path] = []
    if folder_mode:
        from rich.progress import track

        pairs, orphans = files.match_folders(reference_dir, prediction_dir)
        scores = [
            files.score_files(ref, pred, chosen, metrics)
            for ref, pred in track(pairs, description="scoring", console=Console(stderr=True), transient=True)
        ]
        files.fill_absent_labels(scores, chosen or sorted({label for s in scores for label in s.labels}), metrics)
        for path in orphans:
            typer.echo(f"warning: {path}: prediction has no reference of the same name; not scored", err=True)
    else:
        scores = [files.score_files(reference, prediction, chosen, metrics)]
    if not any(score.labels for score in scores):
        raise UserError(
            "no non-zero labels in the reference or the prediction; pass --labels to score named labels "
            "(they are reported as both_empty)"
        )

    rows = files.to_rows(scores)
    if db is not None:
        from mskbench.metrics.file_store import write_file_metrics

        write_file_metrics(db, rows, {s.reference_path: s.spacing for s in scores}, nsd_tolerance)
    summary = _summary(aggregate(rows, by=["label"])) if folder_mode else None
    if as_json:
        _print_json(scores, summary, orphans, nsd_tolerance)
    else:
        _print_text(scores, summary, nsd_tolerance)


def _summary(summary):
    """Aggregates ordered by label, then in the metric order of the tables."""
    order = {name: index for index, name in enumerate(METRIC_ORDER)}
    return summary.sort_values(["label", "metric"], key=lambda c: c.map(order) if c.name == "metric" else c)


def _print_json(scores, summary, orphans, nsd_tolerance: float) -> None:
    if summary is None:
        payload: dict[str, Any] = {"nsd_tolerance_mm": nsd_tolerance, **_file_json(scores[0])}
    else:
        payload = {
            "nsd_tolerance_mm": nsd_tolerance,
            "cases": [_file_json(s) for s in scores],
            "unmatched_predictions": [str(p) for p in orphans],
            "summary": [{k: (_number(v) if isinstance(v, float) else v) for k, v in row.items()}
                        for row in summary.to_dict(orient="records")],
        }
    typer.echo(json.dumps(payload, indent=2))


def _print_text(scores, summary, nsd_tolerance: float) -> None:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console.width = 200  # piped output: do not truncate the numbers to 80 columns
    console.print(_scores_table(scores, f"NSD tolerance {nsd_tolerance} mm; distances in mm; * = substituted worst case"))
    if summary is not None:
        missing = sum(s.prediction_missing for s in scores)
        console.print(_summary_table(summary))
        console.print(f"{len(scores)} cases, {missing} without a prediction (scored as empty predictions)")

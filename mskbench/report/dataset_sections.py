"""The per-dataset part of the report: one builder per section, in reading order.

Each builder takes the report's inputs and one dataset name and returns
the section's HTML, or None when the dataset has nothing for it (the
section is then left out rather than shown empty). A new analysis becomes
one more function and one more entry in `DATASET_SECTIONS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from mskbench.report import figures
from mskbench.report.analyses_sections import gp_section, prompter_pairs_section, size_section
from mskbench.report.html import Column, esc, field, fmt, image, table
from mskbench.report.interaction import interaction_section
from mskbench.report.qc import decode, prompt_boxes, qc_slices
from mskbench.stats import data
from mskbench.stats.analysis import StatsResults, StatsSettings

AGREEMENT_KEYS = ["dataset", "model", "prompter", "structure", "biomarker", "method", "unit"]


@dataclass(frozen=True)
class ReportInputs:
    """Everything the sections read, computed once per report."""

    con: duckdb.DuckDBPyConnection
    settings: StatsSettings
    metric: str
    results: StatsResults
    values: pd.DataFrame
    """Subject-level rows at the chosen round (`data.subject_metrics`)."""
    pairs: pd.DataFrame
    """Reference/prediction biomarker pairs (`data.biomarker_pairs`)."""
    curves: pd.DataFrame
    """Dice-vs-round curves of the interactive cells (empty without any)."""


def _cell(frame: pd.DataFrame) -> pd.Series:
    return frame["model"] + " / " + frame["prompter"]


def structure_heatmap(inputs: ReportInputs, dataset: str) -> str | None:
    """Mean subject Dice per structure (rows) and model / prompter (columns)."""
    rows = inputs.values[(inputs.values["dataset"] == dataset) & (inputs.values["metric"] == "dice")]
    if rows.empty:
        return None
    matrix = rows.assign(cell=_cell(rows)).pivot_table(index="structure", columns="cell", values="value",
                                                       aggfunc="mean", dropna=False)
    order = [s for s in matrix.index if s != data.ALL_LABELS] + [s for s in matrix.index if s == data.ALL_LABELS]
    return image(figures.heatmap(matrix.reindex(order), f"{dataset}: mean subject Dice", "mean subject Dice"),
                 f"{dataset}: mean subject Dice per structure and model / prompter (blank: no finite value)")


def object_size(inputs: ReportInputs, dataset: str) -> str | None:
    return size_section(inputs.results.size_strata, inputs.results.size_tests, dataset)


def biomarker_agreement(inputs: ReportInputs, dataset: str) -> str | None:
    """Agreement table of the dataset and, per biomarker, Bland–Altman over regression for every structure."""
    agreement = inputs.results.agreement
    if agreement.empty or "status" not in agreement:
        return None
    mine = agreement[agreement["dataset"] == dataset]
    if mine.empty:
        return None
    columns = [field(c) for c in ("model", "prompter", "structure", "biomarker", "unit", "n_subjects")]
    columns += [Column("ICC(3,1) [95% CI]", lambda r: f"{esc(fmt(r.get('icc')))} [{esc(fmt(r.get('icc_ci_low'), 2))}, "
                                                     f"{esc(fmt(r.get('icc_ci_high'), 2))}]", lambda r: r.get("icc")),
                field("bias"), field("loa_lower", "lower limit"), field("loa_upper", "upper limit"),
                field("ba_method", "limits"), field("spearman_rho", "Spearman ρ"), field("slope"),
                field("status"), field("reason")]
    body = [table(mine, columns)]
    computed = mine[mine["status"] == "computed"]
    pairs = inputs.pairs.merge(computed[AGREEMENT_KEYS], on=AGREEMENT_KEYS) if not computed.empty else computed
    for (biomarker, method, unit), group in pairs.groupby(["biomarker", "method", "unit"], sort=True):
        structures = {structure: frame.assign(cell=_cell(frame))
                      for structure, frame in group.groupby("structure", sort=True)}
        rows = computed[(computed["biomarker"] == biomarker) & (computed["method"] == method)]
        bias = {(r["structure"], f"{r['model']} / {r['prompter']}"): r["bias"] for r in rows.to_dict(orient="records")}
        title = f"{dataset}: {biomarker} ({method})"
        body.append(image(figures.agreement_grid(structures, bias, title, unit),
                          f"{title}: Bland–Altman (top; a line per model / prompter at its bias, limits in the "
                          "table) and prediction against reference with the identity line (bottom), per structure"))
    return "".join(body)


def prompt_comparison(inputs: ReportInputs, dataset: str) -> str | None:
    """Detection quality of detector prompters and mean subject Dice per prompter side by side."""
    body = []
    detectors: set[str] = set()
    if "detections" in data.tables(inputs.con):
        quality = inputs.con.execute(
            """
            SELECT c.model, c.prompter,
                   count(*) FILTER (WHERE d.reference_present) AS slices_with_reference,
                   avg(CASE WHEN d.detected THEN 1.0 ELSE 0.0 END) FILTER (WHERE d.reference_present) AS recall,
                   avg(CASE WHEN d.hit THEN 1.0 ELSE 0.0 END) FILTER (WHERE d.reference_present) AS hit_rate,
                   avg(CASE WHEN d.detected THEN 1.0 ELSE 0.0 END) FILTER (WHERE NOT d.reference_present)
                       AS false_detection_rate,
                   avg(d.box_iou) FILTER (WHERE d.reference_present AND d.detected) AS mean_box_iou
            FROM detections d JOIN cells c USING (run_id, cell_id) WHERE c.dataset = ? GROUP BY ALL ORDER BY ALL
            """, [dataset]).df()
        if not quality.empty:
            detectors = set(quality["prompter"])
            body.append("<h4>Detection quality (slice level)</h4>"
                        + table(quality, [field(c) for c in quality.columns]))
    rows = data.whole_subject(inputs.values[(inputs.values["dataset"] == dataset)
                                            & (inputs.values["metric"] == "dice")])
    if rows["prompter"].nunique() < 2 and not detectors:
        return None
    means = rows.groupby(["model", "prompter"])["value"].mean().unstack("prompter").reset_index()
    prompters = [c for c in means.columns if c != "model"]
    columns = [field("model")] + [field(p, f"{p} (detector)" if p in detectors else p) for p in prompters]
    body.append("<h4>Mean subject Dice by prompter</h4><p>Detector prompters are marked; the gap to the "
                "ground-truth prompters is what a detector costs.</p>" + table(means, columns))
    return "".join(body)


def gp_regression(inputs: ReportInputs, dataset: str) -> str | None:
    return gp_section(inputs.results.gp_regression, inputs.results.agreement, inputs.pairs, dataset)


def prompter_pairs(inputs: ReportInputs, dataset: str) -> str | None:
    return prompter_pairs_section(inputs.results.prompter_pairs, dataset, inputs.metric)


def interaction(inputs: ReportInputs, dataset: str) -> str | None:
    curves = inputs.curves
    if curves.empty or not (curves["dataset"] == dataset).any():
        return None
    return interaction_section(inputs.con, curves[curves["dataset"] == dataset])


def qc_overlays(inputs: ReportInputs, dataset: str) -> str | None:
    """The first stored QC slice of every cell of the dataset, as thumbnails that enlarge on click."""
    if "qc_slices" not in data.tables(inputs.con):
        return None
    rows = qc_slices(inputs.con, per_cell=1)
    rows = rows[rows["dataset"] == dataset]
    if rows.empty:
        return None
    body = []
    for row in rows.to_dict(orient="records"):
        scale = float(row["scale"]) if row["scale"] is not None and np.isfinite(row["scale"]) else 1.0
        boxes = [tuple(v * scale for v in box) for box in
                 prompt_boxes(inputs.con, row["run_id"], row["cell_id"], row["subject_id"], int(row["slice_index"]))]
        title = f"{row['model']} / {row['prompter']}: {row['subject_id']} slice {row['slice_index']}"
        body.append(image(figures.qc_overlay(decode(row["image"]), decode(row["reference"]),
                                             decode(row["prediction"]), boxes, title), f"{dataset} / {title}",
                          klass="qc"))
    return ("<p>Green: reference contour, magenta: prediction, yellow: prompt boxes. One stored slice per "
            "model / prompter; click a thumbnail to enlarge it.</p>" + "".join(body))


DATASET_SECTIONS: list[tuple[str, str, Callable[[ReportInputs, str], str | None]]] = [
    ("structures", "Dice per structure", structure_heatmap),
    ("size", "Dice against object size", object_size),
    ("agreement", "Biomarker agreement", biomarker_agreement),
    ("gp", "Biomarker agreement: GP regression", gp_regression),
    ("prompts", "Detector vs ground-truth prompts", prompt_comparison),
    ("prompter-pairs", "Prompter comparison per model", prompter_pairs),
    ("interaction", "Interaction: Dice vs round", interaction),
    ("qc", "QC overlays", qc_overlays),
]
"""(anchor, title, builder) in reading order; a new per-dataset analysis slots in as one more entry."""

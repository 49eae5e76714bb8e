"""`mskbench report`: one self-contained HTML file a researcher can send.

Sections: runs and manifests, the per-cell summary, model comparison and
rank intervals, subject-Dice plots, Dice-vs-round curves (interactive cells
only), biomarker agreement (Bland–Altman and
regression plots), detector-vs-ground-truth prompts, acquisition effects
(forest plot), QC overlays, and the analysis settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mskbench.report import figures
from mskbench.report.html import Column, esc, field, fmt, image, note, page, table
from mskbench.report.interaction import interaction_curves, interaction_section
from mskbench.report.qc import decode, prompt_boxes, qc_slices
from mskbench.stats import data
from mskbench.stats.analysis import StatsResults, StatsSettings, compute_stats
from mskbench.stats.compare import higher_is_better
from mskbench.stats.rounds import round_label

SECTIONS = (("runs", "Runs"), ("summary", "Summary"), ("comparison", "Model comparison"),
            ("distributions", "Subject distributions"), ("interaction", "Interaction"),
            ("agreement", "Biomarker agreement"),
            ("prompts", "Detector vs ground-truth prompts"), ("acquisition", "Acquisition effects"),
            ("qc", "QC overlays"), ("settings", "Settings"))


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


def runs_section(con: duckdb.DuckDBPyConnection) -> str:
    if "runs" not in data.tables(con):
        return note("This database has no runs table; no manifest to show.")
    runs = con.execute("SELECT run_id, suite_name, suite_hash, status, started_at, finished_at, manifest, config "
                       "FROM runs ORDER BY started_at").df()
    parts = [table(runs, [field(c) for c in ("run_id", "suite_name", "suite_hash", "status", "started_at",
                                               "finished_at")])]
    for row in runs.to_dict(orient="records"):
        for key in ("manifest", "config"):
            text = row[key]
            try:
                text = json.dumps(json.loads(text), indent=2, sort_keys=True)
            except (TypeError, ValueError):
                text = str(text)
            parts.append(f"<details><summary>{esc(key)} of run {esc(row['run_id'])}</summary>"
                         f"<pre>{esc(text)}</pre></details>")
    return "".join(parts)


def summary_section(results: StatsResults) -> str:
    columns = [field("dataset"), field("model"), field("prompter"), field("metric"), field("structure"),
               Column("mean ± sd", lambda r: f"{esc(fmt(r['mean']))} ± {esc(fmt(r['sd']))}", lambda r: r["mean"]),
               field("median"), field("n"), field("excluded"), field("substituted"), field("skipped")]
    return ("<p>Subject-level values (seed mean per subject). <em>excluded</em>: values that are undefined "
            "(e.g. Dice with both masks empty); <em>substituted</em>: values replaced by policy (e.g. HD95 = image "
            "diagonal for a missed structure); <em>skipped</em>: subjects the runner skipped.</p>"
            + table(results.summary, columns))


def comparison_section(results: StatsResults) -> str:
    friedman = [field(c) for c in ("dataset", "prompter", "metric", "structure", "n_models", "n_subjects",
                                   "dropped_unpaired", "statistic", "p_value", "status", "reason")]
    pairs = [field(c) for c in ("dataset", "prompter", "metric", "structure", "model_a", "model_b", "n_subjects",
                                "median_diff", "p_value", "p_adjusted")]
    pairs.append(Column("significant", lambda r: '<span class="sig">yes</span>' if r["significant"] else "no",
                        lambda r: int(bool(r["significant"]))))
    pairs.append(field("better"))
    ranking = [field(c) for c in ("dataset", "prompter", "metric", "structure", "model", "mean", "rank")]
    ranking.append(Column("rank interval", lambda r: f"{r['rank_low']}–{r['rank_high']}", lambda r: r["rank_low"]))
    ranking.append(field("p_best", "P(rank 1)"))
    return ("<h3>Friedman test per block</h3>" + table(results.friedman, friedman)
            + "<h3>Pairwise Wilcoxon signed-rank (Benjamini–Hochberg within the block)</h3>"
            + table(results.pairwise, pairs)
            + "<h3>Rank intervals (bootstrap over subjects, 95%)</h3>" + table(results.ranking, ranking))


def distributions_section(results: StatsResults, values: pd.DataFrame) -> str:
    whole = data.whole_subject(values[values["value"].notna()])
    figures_html = []
    for (dataset, prompter, metric), block in whole.groupby(["dataset", "prompter", "metric"], sort=True):
        groups = {model: g["value"].to_numpy(float) for model, g in block.groupby("model", sort=True)}
        direction = "higher is better" if higher_is_better(metric) else "lower is better"
        figures_html.append(image(figures.box_plot(groups, f"{dataset} / {prompter}", f"subject {metric}"),
                                  f"{dataset} / {prompter}: subject {metric} ({direction})"))
    return "".join(figures_html) or note("No subject values to plot.")


def agreement_section(results: StatsResults, pairs: pd.DataFrame) -> str:
    columns = [field(c) for c in ("dataset", "model", "prompter", "structure", "biomarker", "unit", "n_subjects")]
    columns += [Column("ICC(3,1) [95% CI]", lambda r: f"{esc(fmt(r.get('icc')))} [{esc(fmt(r.get('icc_ci_low'), 2))}, "
                                                     f"{esc(fmt(r.get('icc_ci_high'), 2))}]", lambda r: r.get("icc")),
                Column("bootstrap CI", lambda r: f"[{esc(fmt(r.get('icc_boot_ci_low'), 2))}, "
                                                 f"{esc(fmt(r.get('icc_boot_ci_high'), 2))}]")]
    columns += [field("bias"), field("loa_lower", "lower limit"), field("loa_upper", "upper limit"),
                field("ba_method", "limits"), field("spearman_rho", "Spearman ρ"), field("slope"),
                field("status"), field("reason")]
    body = [table(results.agreement, columns)]
    if not results.unpaired_biomarkers.empty:
        body.append("<p>Values without a finite partner (dropped):</p>"
                    + table(results.unpaired_biomarkers, [field(c) for c in results.unpaired_biomarkers.columns]))
    keys = ["dataset", "model", "prompter", "structure", "biomarker", "method", "unit"]
    computed = results.agreement[results.agreement.get("status", pd.Series(dtype=str)) == "computed"] \
        if not results.agreement.empty else results.agreement
    for row in computed.to_dict(orient="records"):
        mask = np.logical_and.reduce([pairs[k] == row[k] for k in keys])
        group = pairs[mask]
        ref, pred = group["reference"].to_numpy(float), group["prediction"].to_numpy(float)
        title = f"{row['dataset']} / {row['model']} / {row['prompter']}: {row['structure']} {row['biomarker']}"
        body.append(image(figures.bland_altman_plot(ref, pred, row, title, row["unit"]), f"Bland–Altman, {title}"))
        body.append(image(figures.regression_plot(ref, pred, row, title, row["unit"]), f"Regression, {title}"))
    return "".join(body) if not results.agreement.empty else note("No biomarker rows in this database.")


def prompts_section(con: duckdb.DuckDBPyConnection, values: pd.DataFrame) -> str:
    """Detection quality of detector prompters, and Dice under each prompter side by side."""
    body = []
    detector_cells = pd.DataFrame(columns=["dataset", "model", "prompter"])
    if "detections" in data.tables(con):
        quality = con.execute(
            """
            SELECT c.dataset, c.model, c.prompter,
                   count(*) FILTER (WHERE d.reference_present) AS slices_with_reference,
                   avg(CASE WHEN d.detected THEN 1.0 ELSE 0.0 END) FILTER (WHERE d.reference_present) AS recall,
                   avg(CASE WHEN d.hit THEN 1.0 ELSE 0.0 END) FILTER (WHERE d.reference_present) AS hit_rate,
                   avg(CASE WHEN d.detected THEN 1.0 ELSE 0.0 END) FILTER (WHERE NOT d.reference_present)
                       AS false_detection_rate,
                   avg(d.box_iou) FILTER (WHERE d.reference_present AND d.detected) AS mean_box_iou
            FROM detections d JOIN cells c USING (run_id, cell_id) GROUP BY ALL ORDER BY ALL
            """
        ).df()
        detector_cells = quality[["dataset", "model", "prompter"]]
        body.append("<h3>Detection quality (slice level)</h3>"
                    + table(quality, [field(c) for c in quality.columns]))
    whole = data.whole_subject(values[(values["metric"] == "dice") & values["value"].notna()])
    if whole.empty:
        return "".join(body) or note("No Dice rows.")
    means = whole.groupby(["dataset", "model", "prompter"])["value"].mean().unstack("prompter").reset_index()
    detectors = set(detector_cells["prompter"])
    prompters = [c for c in means.columns if c not in ("dataset", "model")]
    columns = [field("dataset"), field("model")] + [
        field(p, f"{p} (detector)" if p in detectors else p) for p in prompters]
    body.append("<h3>Mean subject Dice by prompter</h3><p>Detector prompters are marked; the gap to the "
                "ground-truth prompters is what a detector costs.</p>" + table(means, columns))
    return "".join(body)


def acquisition_section(results: StatsResults) -> str:
    body = [table(results.mixed_status, [field(c) for c in results.mixed_status.columns])] \
        if not results.mixed_status.empty else [note("No subject acquisition rows; effects not computed.")]
    if not results.mixed_effects.empty:
        body.append(image(figures.forest_plot(results.mixed_effects, "Acquisition effects on subject Dice"),
                          "Mixed-effects estimates with 95% CIs (random intercept per dataset)"))
        body.append(table(results.mixed_effects, [field(c) for c in results.mixed_effects.columns]))
    if not results.vif.empty:
        body.append("<h3>VIF screening (covariates with VIF &gt; 10 removed)</h3>"
                    + table(results.vif, [field(c) for c in results.vif.columns]))
    return "".join(body)


def qc_section(con: duckdb.DuckDBPyConnection) -> str:
    rows = qc_slices(con) if "qc_slices" in data.tables(con) else None
    if rows is None or rows.empty:
        return note("This database stores no QC thumbnails (table qc_slices), and the report does not re-load "
                    "datasets or re-run models; see docs/report.md.")
    body = []
    for row in rows.to_dict(orient="records"):
        scale = float(row["scale"]) if row["scale"] is not None and np.isfinite(row["scale"]) else 1.0
        boxes = [tuple(v * scale for v in box) for box in
                 prompt_boxes(con, row["run_id"], row["cell_id"], row["subject_id"], int(row["slice_index"]))]
        title = f"{row['dataset']} / {row['model']} / {row['prompter']}: {row['subject_id']} slice {row['slice_index']}"
        body.append(image(figures.qc_overlay(decode(row["image"]), decode(row["reference"]),
                                             decode(row["prediction"]), boxes, title), title))
    return "<p>Green: reference contour, magenta: prediction, yellow: prompt boxes.</p>" + "".join(body)


def build_report(con: duckdb.DuckDBPyConnection, settings: StatsSettings) -> str:
    results = compute_stats(con, settings)
    values = data.subject_metrics(con, None, settings.round)
    pairs, _ = data.biomarker_pairs(con, settings.round)
    curves = interaction_curves(con, settings)
    bodies = {
        "runs": runs_section(con), "summary": summary_section(results),
        "comparison": comparison_section(results), "distributions": distributions_section(results, values),
        "agreement": agreement_section(results, pairs), "prompts": prompts_section(con, values),
        "acquisition": acquisition_section(results), "qc": qc_section(con),
        "settings": f"<pre>{esc(json.dumps(asdict(settings), indent=2))}</pre>",
    }
    if not curves.empty:
        bodies["interaction"] = interaction_section(con, curves)
    shown = [(anchor, title) for anchor, title in SECTIONS if anchor in bodies]
    nav = "".join(f'<a href="#{anchor}">{esc(title)}</a>' for anchor, title in shown)
    header = (f'<p class="muted">Every table and figure below reads {esc(round_label(settings.round))} of each cell '
              f"(--round {esc(settings.round)}), except the Interaction section, which shows every round.</p>")
    body = header + "".join(section(anchor, title, bodies[anchor]) for anchor, title in shown)
    return page("mskbench report", body, nav)


def write_report(db: str | Path, out: str | Path, settings: StatsSettings) -> Path:
    con = data.open_results(db)
    try:
        text = build_report(con, settings)
    finally:
        con.close()
    from mskbench.output_paths import write_text

    return write_text(Path(out), text, "--out")

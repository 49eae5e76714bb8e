"""`mskbench report`: one self-contained HTML file a researcher can send.

Headline first: per dataset, the primary metric per model × prompter with
95 % bootstrap CIs and markers against the best model, and one compact table
(`headline.py`). Then one block per dataset (`dataset_sections.py`), then the
cross-dataset analyses (acquisition effects, the test tables), the full
per-structure, per-metric table collapsed with a filter box, the runs and the
settings.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import duckdb
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mskbench.report import figures
from mskbench.report.analyses_sections import finetune_section
from mskbench.report.dataset_sections import DATASET_SECTIONS, ReportInputs
from mskbench.report.headline import headline, headline_block
from mskbench.report.html import Column, esc, field, fmt, image, note, page, table
from mskbench.report.interaction import interaction_curves
from mskbench.report.leaderboard import slug
from mskbench.stats import data
from mskbench.stats.analysis import StatsResults, StatsSettings, compute_stats, read_tables
from mskbench.stats.compare import higher_is_better
from mskbench.stats.rounds import round_label

FULL_TABLE_ID = "full-table"


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


def full_table_section(results: StatsResults) -> str:
    """Every dataset × model × prompter × metric × structure row, collapsed, with a client-side filter."""
    columns = [field("dataset"), field("model"), field("prompter"), field("metric"), field("structure"),
               Column("mean ± sd", lambda r: f"{esc(fmt(r['mean']))} ± {esc(fmt(r['sd']))}", lambda r: r["mean"]),
               field("median"), field("n"), field("excluded"), field("substituted"), field("skipped")]
    return (f"<details><summary>All {len(results.summary)} rows (subject-level mean ± sd per dataset, model, "
            "prompter, metric and structure)</summary>"
            "<p>Subject-level values (seed mean per subject). <em>excluded</em>: values that are undefined "
            "(e.g. Dice with both masks empty); <em>substituted</em>: values replaced by policy (e.g. HD95 = image "
            "diagonal for a missed structure); <em>skipped</em>: subjects the runner skipped.</p>"
            f'<p class="filter"><label>Filter: <input type="search" data-filter-for="{FULL_TABLE_ID}" '
            'placeholder="e.g. knee dice femur"></label> '
            f'<span class="muted" data-count-for="{FULL_TABLE_ID}"></span></p>'
            + table(results.summary, columns, table_id=FULL_TABLE_ID) + "</details>")


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
    return ("<details><summary>Friedman, pairwise Wilcoxon and rank-interval tables of every block</summary>"
            "<h3>Friedman test per block</h3>" + table(results.friedman, friedman)
            + "<h3>Pairwise Wilcoxon signed-rank (Benjamini–Hochberg within the block)</h3>"
            + table(results.pairwise, pairs)
            + "<h3>Rank intervals (bootstrap over subjects, 95%)</h3>" + table(results.ranking, ranking)
            + "</details>")


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


def subject_value_note(settings: StatsSettings) -> str:
    """Said only when it is not the default: a subject's value is then the mean of its slice values."""
    if settings.subject_value == data.VOLUME:
        return ""
    return "; subject value: the mean of its slice values (--subject-value slice_mean)"


def headline_section(inputs: ReportInputs, datasets: list[str]) -> str:
    direction = "higher is better" if higher_is_better(inputs.metric) else "lower is better"
    intro = (f'<p class="muted">Primary metric: subject {esc(inputs.metric)} ({direction}; mean over labels, '
             f"--metric), {esc(round_label(inputs.settings.round))} of each cell (--round "
             f"{esc(inputs.settings.round)}){subject_value_note(inputs.settings)}. Whiskers and brackets: 95% "
             "percentile bootstrap over subjects. "
             "▼: significantly worse than the best model under the same prompter (paired Wilcoxon signed-rank, "
             "Benjamini–Hochberg within the prompter); ≈: not significantly different.</p>")
    blocks = [headline_block(headline(inputs.results, inputs.values, inputs.settings, inputs.metric, d))
              for d in datasets]
    return intro + "".join(blocks)


def dataset_block(inputs: ReportInputs, dataset: str) -> str:
    """The per-dataset sections in `DATASET_SECTIONS` order, each left out when it has nothing to show."""
    anchor = slug(dataset)
    parts = []
    for key, title, build in DATASET_SECTIONS:
        body = build(inputs, dataset)
        if body:
            parts.append(f'<section id="{key}-{anchor}"><h3>{esc(title)}</h3>{body}</section>')
    return (f'<section id="dataset-{anchor}" class="dataset"><h2>Dataset: {esc(dataset)}</h2>'
            + ("".join(parts) or note(f"No per-dataset analyses for {dataset}.")) + "</section>")


def report_progress() -> Progress:
    """A transient bar on stderr (statistics, then one step per dataset); silent when stderr is not a terminal."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True, disable=not sys.stderr.isatty())


def build_report(con: duckdb.DuckDBPyConnection, settings: StatsSettings, metric: str = "dice") -> str:
    known = [r[0] for r in con.execute("SELECT DISTINCT metric FROM subject_metrics ORDER BY 1").fetchall()]
    data.check_names([metric], known, "--metric")
    with report_progress() as progress:
        task = progress.add_task("report: statistics", total=None)
        results = read_tables(con, settings) or compute_stats(con, settings)
        inputs = ReportInputs(con=con, settings=settings, metric=metric, results=results,
                              values=data.subject_metrics(con, None, settings.round, settings.subject_value),
                              pairs=data.biomarker_pairs(con, settings.round)[0],
                              curves=interaction_curves(con, settings))
        datasets = sorted(set(results.summary["dataset"]))
        progress.update(task, description="report: headline", total=len(datasets) + 1, completed=0)
        sections = [("headline", "Headline", headline_section(inputs, datasets))]
        progress.advance(task)
        for dataset in datasets:
            progress.update(task, description=f"report: {dataset}")
            sections.append((f"dataset-{slug(dataset)}", f"Dataset: {dataset}", dataset_block(inputs, dataset)))
            progress.advance(task)
    sections.append(("acquisition", "Acquisition effects (all datasets)", acquisition_section(results)))
    finetune = finetune_section(results.finetune_effects, results.finetune_vif, results.finetune_status)
    if finetune:
        sections.append(("finetune", "Fine-tuning effects (all datasets)", finetune))
    sections += [("comparison", "Model comparison tests", comparison_section(results)),
                 ("full", "Full table", full_table_section(results)),
                 ("runs", "Runs", runs_section(con)),
                 ("settings", "Settings", f"<pre>{esc(json.dumps(asdict(settings), indent=2))}</pre>")]
    nav = "".join(f'<a href="#{anchor}">{esc(title)}</a>' for anchor, title, _ in sections)
    body = "".join(html if anchor.startswith("dataset-") else section(anchor, title, html)
                   for anchor, title, html in sections)
    return page("mskbench report", body, nav)


def write_report(db: str | Path, out: str | Path, settings: StatsSettings, metric: str = "dice") -> Path:
    con = data.open_results(db)
    try:
        text = build_report(con, settings, metric)
    finally:
        con.close()
    from mskbench.output_paths import write_text

    return write_text(Path(out), text, "--out")

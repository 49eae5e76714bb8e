"""The report's Interaction section (only for databases with interactive cells, i.e. rounds above 0).

Dice-vs-round curves per (dataset, prompter) with a bootstrap band per
model, the whole-protocol summaries (docs/interactive.md) per model, and
the model time per round.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from mskbench.report import figures
from mskbench.report.html import Column, esc, field, fmt, image, note, table
from mskbench.stats import data
from mskbench.stats.analysis import StatsSettings
from mskbench.stats.curves import round_curves

SUMMARY_METRICS = ("dsc_auc", "nsd_auc", "final_dsc", "noc_90")
MODEL_STAGES = ("refine", "predict")


def interaction_curves(con: duckdb.DuckDBPyConnection, settings: StatsSettings) -> pd.DataFrame:
    """Dice curves of the interactive cells; empty when the database has none."""
    return round_curves(data.subject_metric_rounds(con, "dice"), settings.rng_for, settings.n_boot, settings.alpha)


def interaction_section(con: duckdb.DuckDBPyConnection, curves: pd.DataFrame) -> str:
    body = ["<p>Mean subject Dice (mean over labels) after each round of corrective clicks; the band is the 95% "
            "percentile bootstrap over subjects. Round 0 is the initial prompt.</p>"]
    for (dataset, prompter), block in curves.groupby(["dataset", "prompter"], sort=True):
        title = f"{dataset} / {prompter}"
        body.append(image(figures.round_curves_plot(block, title, "mean subject Dice"),
                          f"{title}: Dice vs round, 95% bootstrap band"))
    band = Column("95% band", lambda r: f"[{esc(fmt(r['ci_low']))}, {esc(fmt(r['ci_high']))}]", lambda r: r["ci_low"])
    body.append("<h3>Dice per round</h3>" + table(curves, [*(field(c) for c in ("dataset", "prompter", "model",
                                                                                  "round", "mean")),
                                                          band, field("n_subjects")]))
    summary = protocol_summary(con, curves)
    body.append("<h3>Whole-protocol summaries</h3><p>Means over subjects of dsc_auc / nsd_auc (normalised area "
                "under the Dice / NSD curve over the click rounds), final_dsc, and noc_90 (rounds to reach Dice 0.9; "
                "lower is better). Select them in stats, leaderboard and gate with <code>--metric</code>.</p>"
                + table(summary, [field(c) for c in summary.columns]))
    timing = round_timing(con)
    if not timing.empty:
        timing = timing[timing["dataset"].isin(set(curves["dataset"]))]
    body.append("<h3>Model time per round</h3><p>Mean over subjects of the seconds the model spent in a round "
                "(timings stages refine / predict, summed over slices).</p>"
                + (table(timing, [field(c) for c in timing.columns]) if not timing.empty
                   else note("No refine / predict timings recorded.")))
    return "".join(body)


def protocol_summary(con: duckdb.DuckDBPyConnection, curves: pd.DataFrame) -> pd.DataFrame:
    """Mean whole-subject dsc_auc, nsd_auc, final_dsc, noc_90 per interactive (dataset, prompter, model)."""
    values = data.whole_subject(data.subject_metrics(con, SUMMARY_METRICS))
    values = values.merge(curves[["dataset", "prompter", "model"]].drop_duplicates())
    if values.empty:
        return pd.DataFrame(columns=["dataset", "prompter", "model"])
    wide = values.groupby(["dataset", "prompter", "model", "metric"])["value"].mean().unstack("metric")
    wide = wide.reindex(columns=[m for m in SUMMARY_METRICS if m in wide.columns]).reset_index()
    wide.columns.name = None
    return wide


def round_timing(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Mean per-subject model seconds by (dataset, model, prompter, round), interactive cells only."""
    if "timings" not in data.tables(con):
        return pd.DataFrame()
    return con.execute(
        f"""
        WITH per_subject AS (
            SELECT c.dataset, c.model, c.prompter, t.subject_id, t.run_id, t.round, sum(t.seconds) AS seconds
            FROM timings t JOIN cells c USING (run_id, cell_id)
            WHERE t.stage IN ({', '.join(f"'{s}'" for s in MODEL_STAGES)})
            GROUP BY ALL
        )
        SELECT dataset, model, prompter, round, avg(seconds) AS mean_seconds, count(*) AS n_subjects
        FROM per_subject
        WHERE (dataset, model, prompter) IN (SELECT (dataset, model, prompter) FROM per_subject WHERE round > 0)
        GROUP BY ALL ORDER BY ALL
        """
    ).df()

"""The top of the report: per dataset, which model is best, by how much, and whether it matters.

One row per (model, prompter) cell of a dataset: the mean whole-subject
value (mean over labels) of the primary metric and of Dice, NSD and HD95
with percentile-bootstrap 95 % CIs over subjects, the counts beside, the
marker against the best model under the same prompter (the paired Wilcoxon
+ Benjamini–Hochberg of `mskbench stats`, read through the leaderboard's
board rows so both pages say the same), and the ICC and bias of the
dataset's main biomarker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mskbench.report import figures
from mskbench.report.html import Column, esc, field, fmt, image, table
from mskbench.report.leaderboard import board_rows, slug
from mskbench.stats import data
from mskbench.stats.analysis import StatsResults, StatsSettings
from mskbench.stats.compare import higher_is_better
from mskbench.stats.intervals import mean_ci

TABLE_METRICS = ("dice", "nsd", "hd95")
"""Shown in every headline table beside the primary metric (when the database has them)."""


@dataclass(frozen=True)
class Headline:
    dataset: str
    metric: str
    rows: pd.DataFrame
    """One row per (model, prompter), grouped by prompter, best first within a prompter."""
    biomarker: str | None
    """The main biomarker's key ("structure biomarker"), or None without biomarker rows."""
    sentence: str


def cell_intervals(values: pd.DataFrame, dataset: str, metrics: list[str], settings: StatsSettings) -> pd.DataFrame:
    """Mean [CI], n (finite subjects), excluded and substituted per (model, prompter, metric), whole subject."""
    rows = data.whole_subject(values[(values["dataset"] == dataset) & values["metric"].isin(metrics)])
    out = []
    for (model, prompter, metric), group in rows.groupby(["model", "prompter", "metric"], sort=True):
        rng = settings.rng_for(("headline", dataset, model, prompter, metric))
        mean, low, high = mean_ci(group["value"].to_numpy(float), rng, settings.n_boot, settings.alpha)
        out.append({"model": model, "prompter": prompter, "metric": metric, "mean": mean, "ci_low": low,
                    "ci_high": high, "n": int(group["value"].notna().sum()),
                    "excluded": int(group["excluded"].sum()), "substituted": int(group["substituted"].sum())})
    return pd.DataFrame(out, columns=["model", "prompter", "metric", "mean", "ci_low", "ci_high", "n", "excluded",
                                      "substituted"])


MAIN_BIOMARKERS = ("cartilage_thickness", "disc_height", "t2", "t1rho", "tissue_volume")
"""Which biomarker the headline shows first, in the order of the source study's clinical endpoints."""
AGGREGATE_STRUCTURES = ("total", "overall")


def main_biomarker(agreement: pd.DataFrame, dataset: str) -> str | None:
    """The dataset's "structure biomarker" for the headline table.

    The first biomarker of `MAIN_BIOMARKERS` present (others after, by name);
    within it an aggregate structure (total, overall) first, then the one
    with the most paired subjects over the cells, then by name.
    """
    if agreement.empty or "n_subjects" not in agreement:
        return None
    mine = agreement[agreement["dataset"] == dataset]
    if mine.empty:
        return None
    totals = mine.groupby(["biomarker", "structure"])["n_subjects"].sum()

    def rank(key: tuple[str, str]) -> tuple:
        biomarker, structure = key
        order = MAIN_BIOMARKERS.index(biomarker) if biomarker in MAIN_BIOMARKERS else len(MAIN_BIOMARKERS)
        return order, biomarker, structure not in AGGREGATE_STRUCTURES, -totals[key], structure

    biomarker, structure = min(totals.index, key=rank)
    return f"{structure} {biomarker}"


def comparison(vs_leader: dict | None, is_leader: bool, n_models: int, mean: float) -> tuple[str, str]:
    """(code, text) of a cell's marker against the best model under its prompter."""
    if not np.isfinite(mean):
        return "none", "no finite values"
    if n_models < 2:
        return "alone", "no comparison"
    if is_leader:
        return "best", "best"
    if vs_leader is None or vs_leader.get("status") != "computed":
        return "untested", "not tested"
    p = vs_leader["p_adjusted"]
    shown = "p<0.001" if p < 0.001 else f"p={p:.2g}"
    return ("worse", f"▼ {shown}") if vs_leader["significant"] else ("similar", f"≈ {shown}")


def headline(results: StatsResults, values: pd.DataFrame, settings: StatsSettings, metric: str,
             dataset: str) -> Headline:
    metrics = list(dict.fromkeys([metric, *TABLE_METRICS]))
    intervals = cell_intervals(values, dataset, metrics, settings)
    biomarker = main_biomarker(results.agreement, dataset)
    rows = []
    for prompter in sorted(set(intervals["prompter"])):
        board = board_rows(results, dataset, prompter, metric)  # best first, NaN means last
        for position, row in enumerate(board):
            code, text = comparison(row["vs_leader"], position == 0, len(board), row["mean"])
            out = {"model": row["model"], "prompter": prompter, "marker": code, "marker_text": text,
                   "p_adjusted": (row["vs_leader"] or {}).get("p_adjusted", np.nan)}
            agreement = row["agreement"].get(biomarker, {}) if biomarker else {}
            out |= {"icc": agreement.get("icc", np.nan), "bias": agreement.get("bias", np.nan)}
            mine = intervals[(intervals["model"] == row["model"]) & (intervals["prompter"] == prompter)]
            for m in metrics:
                cell = mine[mine["metric"] == m]
                if cell.empty:
                    continue
                cell = cell.iloc[0]
                out |= {f"{m}_mean": cell["mean"], f"{m}_low": cell["ci_low"], f"{m}_high": cell["ci_high"]}
                if m == metric:
                    out |= {"n": cell["n"], "excluded": cell["excluded"], "substituted": cell["substituted"]}
            rows.append(out)
    frame = pd.DataFrame(rows)
    return Headline(dataset, metric, frame, biomarker, sentence(frame, metric, dataset))


def sentence(rows: pd.DataFrame, metric: str, dataset: str) -> str:
    """The one line a reader takes away: best cell, its value, and how many models it beats significantly."""
    models = sorted(set(rows["model"])) if not rows.empty else []
    key = f"{metric}_mean"
    finite = rows[np.isfinite(rows[key].astype(float))] if key in rows else rows.iloc[0:0]
    if finite.empty:
        return (f"No finite subject {metric} on {dataset}: every value is undefined (excluded), "
                "so there is nothing to rank.")
    best = finite.sort_values(key, ascending=not higher_is_better(metric)).iloc[0]
    value = f"{fmt(best[key])} [{fmt(best[f'{metric}_low'])}, {fmt(best[f'{metric}_high'])}]"
    lead = f"{best['model']} with {best['prompter']}: mean subject {metric} {value}"
    if len(models) < 2:
        return f"No comparison: {best['model']} is the only model on {dataset}. Best prompter: {lead}."
    rivals = rows[(rows["prompter"] == best["prompter"]) & (rows["model"] != best["model"])]
    if rivals.empty:
        return f"Best: {lead}; no other model ran with {best['prompter']}, so no comparison under it."
    worse = int((rivals["marker"] == "worse").sum())
    return (f"Best: {lead}; significantly better than {worse} of {len(rivals)} other model(s) with "
            f"{best['prompter']} (paired Wilcoxon, Benjamini–Hochberg).")


def _interval(metric: str) -> Column:
    def render(r: dict) -> str:
        mean = r.get(f"{metric}_mean")
        if mean is None or not np.isfinite(mean):
            return "—"
        return (f"{esc(fmt(mean))}<br><span class=\"ci\">[{esc(fmt(r.get(f'{metric}_low')))}, "
                f"{esc(fmt(r.get(f'{metric}_high')))}]</span>")

    return Column(f"{metric} [95% CI]", render, lambda r: r.get(f"{metric}_mean"))


def _marker(r: dict) -> str:
    klass = {"worse": "sig", "best": "best"}.get(r["marker"], "muted")
    return f'<span class="{klass}">{esc(r["marker_text"])}</span>'


def headline_table(item: Headline) -> str:
    metrics = [m for m in dict.fromkeys([item.metric, *TABLE_METRICS]) if f"{m}_mean" in item.rows]
    counts = Column("n (excl., subst.)", lambda r: esc(f"{fmt(r.get('n'))} ({fmt(r.get('excluded'))}, "
                                                      f"{fmt(r.get('substituted'))})"))
    columns = [field("model"), field("prompter"), *(_interval(m) for m in metrics), counts,
               Column("vs best", _marker)]
    caption = ""
    if item.biomarker:
        columns += [field("icc", "ICC"), field("bias", "bias")]
        caption = f'<p class="ci">ICC(3,1) and Bland–Altman bias of {esc(item.biomarker)}</p>'
    return (f'<div class="headline-table">{table(item.rows, columns, sortable=False, table_id=f"headline-table-{slug(item.dataset)}")}'
            f"{caption}</div>")


def headline_block(item: Headline) -> str:
    anchor = slug(item.dataset)
    direction = "higher is better" if higher_is_better(item.metric) else "lower is better"
    figure = (image(figures.headline_plot(item.rows, item.metric, f"{item.dataset}: subject {item.metric} "
                                          f"({direction})"),
                    f"{item.dataset}: mean subject {item.metric} per model × prompter, 95% bootstrap CI")
              if not item.rows.empty else "")
    return (f'<div class="headline" id="headline-{anchor}"><h3><a href="#dataset-{anchor}">{esc(item.dataset)}</a>'
            f'</h3><p class="lead">{esc(item.sentence)}</p><div class="pair">'
            f'<div class="headline-figure" id="headline-figure-{anchor}">{figure}</div>'
            f"{headline_table(item)}</div></div>")

"""Report sections for the analyses `mskbench stats` adds to the comparison tests (DESIGN §9).

Prompter pairs, Dice-by-size tests, the GP regression of biomarkers and the
fine-tuning effects. Every number comes from the report's `StatsResults`
(the `stats_*` tables when `mskbench stats` stored them for the same
settings, else `compute_stats`: one code path). Each builder returns None
when its analysis does not apply, so the report leaves the section out
instead of showing an empty shell.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mskbench.report import figures
from mskbench.report.html import Column, esc, field, fmt, image, note, table
from mskbench.stats import data
from mskbench.stats.size_strata import BINNINGS

GP_KEYS = ["dataset", "model", "prompter", "structure", "biomarker", "method", "unit"]


def _of(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The dataset's rows of a stats table (empty when the table has none or no dataset column)."""
    if frame.empty or "dataset" not in frame:
        return frame.iloc[0:0]
    return frame[frame["dataset"] == dataset]


def significant() -> Column:
    """'yes' only for a true flag: a stored table gives NULL (NaN, which is truthy) for a test not computed."""
    def flag(row: dict) -> bool:
        return isinstance(row.get("significant"), (bool, np.bool_)) and bool(row["significant"])

    return Column("significant", lambda r: '<span class="sig">yes</span>' if flag(r) else "no",
                  lambda r: int(flag(r)))


def estimate_ci(low: str = "ci_low", high: str = "ci_high") -> Column:
    """'estimate [low, high]' in one cell, sorted by the estimate."""
    return Column("estimate [95% CI]", lambda r: f"{esc(fmt(r.get('estimate'), 4))} <span class=\"ci\">"
                                                 f"[{esc(fmt(r.get(low), 4))}, {esc(fmt(r.get(high), 4))}]</span>",
                  lambda r: r.get("estimate"))


def prompter_pairs_section(pairs: pd.DataFrame, dataset: str, metric: str) -> str | None:
    """Wilcoxon signed-rank per prompter pair of each model on the primary metric; None with one prompter."""
    rows = _of(pairs, dataset)
    rows = rows[rows["metric"] == metric] if not rows.empty else rows
    if rows.empty:
        return None
    rows = rows.assign(order=(rows["structure"] != data.ALL_LABELS)).sort_values(
        ["order", "structure", "model", "prompter_a", "prompter_b"])
    columns = [field(c) for c in ("model", "structure", "prompter_a", "prompter_b", "n_subjects", "dropped_unpaired")]
    columns += [field("mean_diff", "mean diff (a − b)", 4), field("median_diff", "median diff (a − b)", 4),
                field("p_value", "p"), field("p_adjusted", "p (BH)"), significant(), field("better"),
                field("status"), field("reason")]
    return (f"<p>How much each model's subject {esc(metric)} changes with the prompter: paired over subjects, "
            "two-sided Wilcoxon signed-rank per prompter pair, Benjamini–Hochberg over the pairs of one model and "
            "structure; <em>significant</em> and <em>better</em> use the BH-adjusted p. The whole-subject rows "
            f"({esc(data.ALL_LABELS)}) come first; other metrics are in <code>stats_prompter_pairs</code>.</p>"
            + table(rows, columns))


BINNING_TITLES = {"samri": "size bin (% of slice area)", "tertile": "size tertile per label"}


def size_section(strata: pd.DataFrame, tests: pd.DataFrame, dataset: str) -> str:
    """Mean slice Dice per object-size bin (a line per model / prompter), its numbers, and the tests across bins."""
    rows = _of(strata, dataset)
    if rows.empty:
        return note(f"{dataset}: no per-slice Dice rows with a reference (table slice_metrics), so no size strata.")
    rows = rows.assign(cell=rows["model"] + " / " + rows["prompter"], binning=rows["binning"].map(BINNING_TITLES),
                       order=[BINNINGS[b].index(name) for b, name in zip(rows["binning"], rows["bin"])])
    panels = {title: rows[rows["binning"] == title] for title in BINNING_TITLES.values()}
    columns = [field("binning"), field("cell", "model / prompter"), field("bin"), field("mean"),
               Column("95% CI", lambda r: f"[{esc(fmt(r['ci_low']))}, {esc(fmt(r['ci_high']))}]",
                      lambda r: r["ci_low"]),
               field("n_objects"), field("n_subjects")]
    return (image(figures.strata_plot(panels, f"{dataset}: Dice against object size", "mean slice Dice"),
                  f"{dataset}: mean slice Dice per object-size bin (small < 0.5 %, medium 0.5–3.5 %, large > 3.5 % "
                  "of the slice area) and per size tertile of each label, objects pooled")
            + "<details><summary>Numbers (95% CI: bootstrap over subjects, each with all its objects)</summary>"
            + table(rows.sort_values(["binning", "cell", "order"]), columns) + "</details>"
            + size_tests_table(tests, dataset))


def size_tests_table(tests: pd.DataFrame, dataset: str) -> str:
    """Kruskal–Wallis across the size bins of each model / prompter ('' when there is no test row)."""
    rows = _of(tests, dataset)
    if rows.empty:
        return ""
    columns = [field(c) for c in ("model", "prompter", "binning", "n_bins")]
    columns += [field("statistic", "H"), field("p_value", "p"), field("status"), field("reason")]
    return ("<h4>Does Dice depend on object size? Kruskal–Wallis across bins</h4>"
            "<p>Per model / prompter and binning (samri: small / medium / large; tertile: T1–T3 per label), over "
            "the objects' slice Dice in the bins holding at least 3 objects. Objects of one subject are not "
            "independent, so read p as descriptive.</p>" + table(rows, columns))


def gp_section(gp: pd.DataFrame, agreement: pd.DataFrame, pairs: pd.DataFrame, dataset: str) -> str | None:
    """GP fits where Bland–Altman rejected normality: band over the scatter and a table; None when none applies.

    Groups whose agreement was not computed (too few pairs) are left out: the agreement table says why.
    """
    rows, agreed = _of(gp, dataset), _of(agreement, dataset)
    if rows.empty or agreed.empty:
        return None
    rows = rows[rows["status"] != "not applicable"].merge(agreed.loc[agreed["status"] == "computed", GP_KEYS],
                                                          on=GP_KEYS)
    if rows.empty:
        return None
    columns = [field(c) for c in ("model", "prompter", "structure", "biomarker", "method", "unit")]
    columns += [field("noise_sd", "noise SD"), field("length_scale", "length scale"),
                Column("inside band", lambda r: esc(fmt(100 * r["coverage"], 1) + " %")
                       if pd.notna(r.get("coverage")) else "—", lambda r: r.get("coverage")),
                field("status"), field("reason")]
    body = ["<p>Where the Bland–Altman differences are not normal or not constant in spread (Shapiro–Wilk or "
            "Levene rejects), a straight line misdescribes the agreement: a Gaussian process (RBF + white noise) "
            "regresses the prediction on the reference. The band is where 95 % of new predictions should fall "
            "(mean ± 1.96 σ, σ including the fitted noise); <em>inside band</em> is the share of the pairs in it, "
            "close to 95 % for a fit that describes the data.</p>" + table(rows, columns)]
    fitted = rows[rows["status"] == "computed"]
    if not fitted.empty and not pairs.empty:
        panels = []
        for row in fitted.to_dict(orient="records"):
            points = pairs.merge(pd.DataFrame([{k: row[k] for k in GP_KEYS}]), on=GP_KEYS)
            band = pd.DataFrame({k: json.loads(row[k]) for k in ("grid", "mean", "lower", "upper")})
            panels.append((f"{row['model']} / {row['prompter']}\n{row['structure']} {row['biomarker']}",
                           points[["reference", "prediction"]], band, row["unit"]))
        body.append(image(figures.gp_bands(panels, f"{dataset}: GP regression of prediction on reference"),
                          f"{dataset}: prediction against reference (points), GP mean (line) and 95% prediction "
                          "band, identity dashed"))
    return "".join(body)


def finetune_section(coef: pd.DataFrame, vif: pd.DataFrame, status: pd.DataFrame) -> str | None:
    """Fine-tuning covariates' effects on subject Dice per prompter; None when no evaluated model has a card."""
    if status.empty:
        return None
    body = ["<p>What fine-tuning buys, over every model under one prompter: subject Dice (mean over labels) "
            "regressed on each model's training from its card, with a random intercept per dataset (statsmodels "
            "MixedLM; OLS with one dataset). Reference: the models without a card (the base models). "
            "<em>trains_decoder / trains_full / trains_adapters</em>: Dice difference of a model fine-tuned that "
            "way; <em>shift_px</em>: per pixel of training box shift; <em>mixed</em>: trained on more than one "
            "dataset; <em>train_subjects</em>: per training subject; <em>te_ms</em>: per ms echo time (centred) and "
            "<em>te_x_&lt;mode&gt;</em>: how that mode changes the TE slope. Covariates that do not vary or are "
            "collinear (VIF &gt; 10) are left out.</p>"]
    columns = [field(c) for c in ("prompter", "metric", "status", "model_kind", "n_models", "n_subjects",
                                  "n_datasets", "covariates", "reason") if c in status]
    body.append(table(status, columns))
    if not coef.empty:
        shown = coef[coef["term"] != "Intercept"]
        body.append("<h3>Estimates</h3>" + table(shown, [
            field("prompter"), field("term"), estimate_ci(), field("std_error", "SE", 4), field("p_value", "p")]))
    if not vif.empty:
        removed = vif[vif["removed"].astype(bool)]
        if not removed.empty:
            body.append("<h3>Covariates left out</h3>" + table(removed, [
                field(c) for c in ("prompter", "covariate", "vif", "reason")]))
    return "".join(body)

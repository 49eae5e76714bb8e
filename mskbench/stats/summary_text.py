"""The plain-text digest `mskbench stats` prints (the full tables are in DuckDB / --json)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mskbench.stats.analysis import StatsResults
from mskbench.stats.data import ALL_LABELS
from mskbench.stats.rounds import round_label


def _p(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.3g}"


def stats_text(results: StatsResults, written_to: Path | None) -> str:
    lines = [f"Values at {round_label(results.settings.round)} of each cell (--round {results.settings.round})"]
    headline = results.friedman
    if not headline.empty:
        headline = headline[headline["structure"].isin([ALL_LABELS]) | ~headline["dataset"].isin(
            headline.loc[headline["structure"] == ALL_LABELS, "dataset"])]
    lines.append("Model comparison (Friedman; pairs: Wilcoxon signed-rank, BH-adjusted within the block)")
    for row in headline.to_dict(orient="records"):
        where = f"  {row['dataset']} / {row['prompter']} / {row['metric']} / {row['structure']}"
        if row["status"] != "computed":
            lines.append(f"{where}: not computed ({row['reason']})")
            continue
        lines.append(f"{where}: chi2 = {row['statistic']:.3f}, p = {_p(row['p_value'])}, "
                     f"n = {row['n_subjects']}, dropped unpaired = {row['dropped_unpaired']}")
        block = results.pairwise
        block = block[(block["dataset"] == row["dataset"]) & (block["prompter"] == row["prompter"])
                      & (block["metric"] == row["metric"]) & (block["structure"] == row["structure"])
                      & block["significant"]]
        for pair in block.to_dict(orient="records"):
            lines.append(f"    {pair['model_a']} vs {pair['model_b']}: median diff {pair['median_diff']:+.4f}, "
                         f"p_adj = {_p(pair['p_adjusted'])} -> {pair['better']} better")
    lines.append("Biomarker agreement (ICC(3,1), Bland–Altman bias [limits])")
    for row in results.agreement.to_dict(orient="records"):
        where = f"  {row['dataset']} / {row['model']} / {row['prompter']} / {row['structure']} {row['biomarker']}"
        if row["status"] != "computed":
            lines.append(f"{where}: not computed ({row['reason']})")
        else:
            lines.append(f"{where}: ICC {row['icc']:.3f} [{row['icc_ci_low']:.2f}, {row['icc_ci_high']:.2f}], "
                         f"bias {row['bias']:+.4g} {row['unit']} [{row['loa_lower']:+.4g}, {row['loa_upper']:+.4g}] "
                         f"({row['ba_method']})")
    lines.append("Acquisition effects on subject Dice (mixed model)")
    for row in results.mixed_status.to_dict(orient="records"):
        where = f"  {row['model']} / {row['prompter']}"
        if row["status"] != "computed":
            lines.append(f"{where}: not computed ({row['reason']})")
            continue
        coef = results.mixed_effects
        coef = coef[(coef["model"] == row["model"]) & (coef["prompter"] == row["prompter"])
                    & (coef["term"] != "Intercept")]
        terms = ", ".join(f"{t} {e:+.3g} (p {_p(p)})" for t, e, p in coef[["term", "estimate", "p_value"]].itertuples(
            index=False))
        lines.append(f"{where}: {row['model_kind']}, n = {row['n_subjects']}: {terms}")
    if written_to is not None:
        lines.append(f"tables stats_* written to {written_to}")
    return "\n".join(lines)

"""The plain-text digest `mskbench stats` prints (the full tables are in DuckDB / --json)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mskbench.stats.analysis import StatsResults
from mskbench.stats.data import ALL_LABELS, whole_subject
from mskbench.stats.rounds import round_label


def _p(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.3g}"


def stats_text(results: StatsResults, written_to: Path | None) -> str:
    lines = [f"Values at {round_label(results.settings.round)} of each cell (--round {results.settings.round}); "
             f"subject value: {results.settings.subject_value} (--subject-value)"]
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
    lines.append("Prompter comparison per model (Wilcoxon signed-rank, BH-adjusted within the block; significant, "
                 "whole subject; every structure in stats_prompter_pairs)")
    pairs = results.prompter_pairs
    if not pairs.empty:
        pairs = whole_subject(pairs[pairs["significant"].astype(bool)])
    for row in pairs.to_dict(orient="records"):
        lines.append(f"  {row['dataset']} / {row['model']} / {row['metric']} / {row['structure']}: "
                     f"{row['prompter_a']} vs {row['prompter_b']}: median diff {row['median_diff']:+.4f}, "
                     f"p_adj = {_p(row['p_adjusted'])} -> {row['better']} better")
    lines.append("Dice by object size (SAMRI bins small/medium/large: mean, n objects; Kruskal–Wallis across bins)")
    for row in results.size_tests[results.size_tests["binning"] == "samri"].to_dict(orient="records") \
            if not results.size_tests.empty else []:
        bins = results.size_strata
        bins = bins[(bins["dataset"] == row["dataset"]) & (bins["model"] == row["model"])
                    & (bins["prompter"] == row["prompter"]) & (bins["binning"] == "samri")]
        shown = ", ".join(f"{b['bin']} {b['mean']:.3f} (n {b['n_objects']})" if b["n_objects"] else f"{b['bin']} —"
                          for b in bins.to_dict(orient="records"))
        test = (f"H = {row['statistic']:.2f}, p = {_p(row['p_value'])}" if row["status"] == "computed"
                else f"test not computed ({row['reason']})")
        lines.append(f"  {row['dataset']} / {row['model']} / {row['prompter']}: {shown}; {test}")
    lines.append("Biomarker agreement (ICC(3,1); mixed-model ICC, bootstrap median [95 %]; "
                 "Bland–Altman bias [limits]; OLS slope ± SE)")
    gp = results.gp_regression
    for row in results.agreement.to_dict(orient="records"):
        where = f"  {row['dataset']} / {row['model']} / {row['prompter']} / {row['structure']} {row['biomarker']}"
        if row["status"] != "computed":
            lines.append(f"{where}: not computed ({row['reason']})")
            continue
        lines.append(f"{where}: ICC {row['icc']:.3f} [{row['icc_ci_low']:.2f}, {row['icc_ci_high']:.2f}], "
                     f"LMM ICC {row['icc_lmm']:.3f}, median {row['icc_lmm_boot_median']:.3f} "
                     f"[{row['icc_lmm_ci_low']:.2f}, {row['icc_lmm_ci_high']:.2f}], "
                     f"bias {row['bias']:+.4g} {row['unit']} [{row['loa_lower']:+.4g}, {row['loa_upper']:+.4g}] "
                     f"({row['ba_method']}), slope {row['slope']:.3g} ± {row['slope_se']:.2g} "
                     f"(p {_p(row['slope_p'])})")
        fit = gp[(gp["dataset"] == row["dataset"]) & (gp["model"] == row["model"]) & (gp["prompter"] == row["prompter"])
                 & (gp["structure"] == row["structure"]) & (gp["biomarker"] == row["biomarker"])
                 & (gp["method"] == row["method"])]
        for g in fit.to_dict(orient="records"):
            if g["status"] == "computed":
                lines.append(f"    GP regression: noise SD {g['noise_sd']:.3g} {row['unit']}, length scale "
                             f"{g['length_scale']:.3g}, {100 * g['coverage']:.0f} % of pairs inside ±1.96σ")
            elif g["status"] == "not computed":
                lines.append(f"    GP regression: not computed ({g['reason']})")
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

"""Paired comparisons between prompters for each model (DESIGN §9).

How much a model loses when its ground-truth box is jittered or replaced by a
detector's box: for one (dataset, model, metric, structure) block the
prompters are aligned by subject (a subject missing a finite value under any
prompter is dropped and counted), every prompter pair gets the two-sided
Wilcoxon signed-rank test of :mod:`mskbench.stats.compare` (same zero rule),
and Benjamini–Hochberg adjusts over the prompter pairs of the block.
"""

from __future__ import annotations

import pandas as pd

from mskbench.stats.compare import Thresholds, align, pairwise

BLOCK_KEYS = ["dataset", "model", "metric", "structure"]


def compare_prompters(values: pd.DataFrame, settings: Thresholds) -> pd.DataFrame:
    """One row per (block, prompter pair): n, median/mean difference (a - b), p, BH-adjusted p, better."""
    rows = []
    for key, block in values.groupby(BLOCK_KEYS, sort=True):
        if block["prompter"].nunique() < 2:
            continue
        labels = dict(zip(BLOCK_KEYS, key))
        wide, dropped = align(block, by="prompter")
        for row in pairwise(wide, labels["metric"], settings):
            row["prompter_a"], row["prompter_b"] = row.pop("model_a"), row.pop("model_b")
            rows.append(labels | {"dropped_unpaired": dropped} | row)
    columns = [*BLOCK_KEYS, "dropped_unpaired", "prompter_a", "prompter_b", "n_subjects", "mean_diff", "median_diff",
               "statistic", "p_value", "status", "reason", "p_adjusted", "significant", "better"]
    return pd.DataFrame(rows, columns=columns)

"""Paired model comparison on subject-level values (DESIGN §9).

One comparison block = (dataset, prompter, metric, structure). Inside a block
the models are aligned by subject; subjects missing a finite value for any
model are dropped (and counted) so every test sees the same subjects.

Declared choices:
- Friedman (scipy) across all models of the block (needs >= 3 models).
- Post hoc: two-sided Wilcoxon signed-rank for every model pair, zero rule
  ``pratt`` (zero differences take part in ranking, then are dropped), tied
  absolute differences get average ranks; scipy picks the exact null
  distribution for small samples without ties/zeros and the tie-corrected
  normal approximation otherwise.
- Family for Benjamini–Hochberg = all model pairs of one block.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

#: Metrics where smaller wins: distances, volume errors, and NoC (clicks needed to reach a Dice).
LOWER_IS_BETTER = frozenset({"hd95", "hd", "assd", "masd", "abs_volume_error", "rve", "noc_80", "noc_90"})

ZERO_METHOD = "pratt"


@dataclass(frozen=True)
class Thresholds:
    """Thresholds shared by every test; `min_subjects` below which a test is not computed."""

    alpha: float = 0.05
    min_subjects: int = 6


def higher_is_better(metric: str) -> bool:
    return metric.lower() not in LOWER_IS_BETTER


def align(block: pd.DataFrame, models: list[str] | None = None, by: str = "model") -> tuple[pd.DataFrame, int]:
    """Subjects x models (or x the ``by`` column's values) table of finite values, and the subjects dropped."""
    wide = block.set_index(["subject_id", by])["value"].unstack(by)
    if models is not None:
        wide = wide.reindex(columns=models)
    complete = wide.dropna()
    return complete, int(len(wide) - len(complete))


def friedman(wide: pd.DataFrame, settings: Thresholds) -> dict[str, object]:
    """Friedman chi-square over the aligned models, or the reason it was not computed."""
    n, k = wide.shape
    row: dict[str, object] = {"n_subjects": n, "n_models": k, "statistic": np.nan, "p_value": np.nan}
    if k < 3:
        return row | {"status": "not computed", "reason": f"{k} model(s); Friedman needs at least 3"}
    if n < settings.min_subjects:
        return row | {"status": "not computed",
                      "reason": f"{n} paired subject(s); at least {settings.min_subjects} needed"}
    values = wide.to_numpy()
    if np.all(values == values[:, :1]):
        return row | {"statistic": 0.0, "p_value": 1.0, "status": "computed",
                      "reason": "all models equal on every subject"}
    result = stats.friedmanchisquare(*values.T)
    return row | {"statistic": float(result.statistic), "p_value": float(result.pvalue),
                  "status": "computed", "reason": ""}


def wilcoxon_pair(a: np.ndarray, b: np.ndarray, settings: Thresholds) -> dict[str, object]:
    """Two-sided paired Wilcoxon signed-rank test of a - b with the declared zero rule."""
    diff = a - b
    n = len(diff)
    row: dict[str, object] = {"n_subjects": n, "mean_diff": float(np.mean(diff)) if n else np.nan,
                              "median_diff": float(np.median(diff)) if n else np.nan,
                              "statistic": np.nan, "p_value": np.nan}
    if n < settings.min_subjects:
        return row | {"status": "not computed",
                      "reason": f"{n} paired subject(s); at least {settings.min_subjects} needed"}
    if np.all(diff == 0):
        return row | {"statistic": 0.0, "p_value": 1.0, "status": "computed", "reason": "all differences zero"}
    result = stats.wilcoxon(a, b, zero_method=ZERO_METHOD, alternative="two-sided")
    return row | {"statistic": float(result.statistic), "p_value": float(result.pvalue),
                  "status": "computed", "reason": ""}


def pairwise(wide: pd.DataFrame, metric: str, settings: Thresholds) -> list[dict[str, object]]:
    """Every model pair, BH-adjusted over the pairs of this block."""
    rows = []
    for model_a, model_b in combinations(wide.columns, 2):
        row = wilcoxon_pair(wide[model_a].to_numpy(), wide[model_b].to_numpy(), settings)
        rows.append({"model_a": model_a, "model_b": model_b} | row)
    tested = [i for i, r in enumerate(rows) if np.isfinite(r["p_value"])]
    adjusted = np.full(len(rows), np.nan)
    if tested:
        adjusted[tested] = multipletests([rows[i]["p_value"] for i in tested], alpha=settings.alpha,
                                         method="fdr_bh")[1]
    sign = 1.0 if higher_is_better(metric) else -1.0
    for row, p_adj in zip(rows, adjusted):
        significant = bool(np.isfinite(p_adj) and p_adj < settings.alpha)
        row["p_adjusted"] = float(p_adj)
        row["significant"] = significant
        better = row["model_a"] if sign * row["median_diff"] > 0 else row["model_b"]
        if sign * row["median_diff"] == 0:
            better = row["model_a"] if sign * row["mean_diff"] > 0 else row["model_b"]
        row["better"] = better if significant else ""
    return rows


BLOCK_KEYS = ["dataset", "prompter", "metric", "structure"]


def compare_models(values: pd.DataFrame, settings: Thresholds) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Friedman and pairwise tables for every (dataset, prompter, metric, structure) block."""
    friedman_rows, pair_rows = [], []
    for key, block in values.groupby(BLOCK_KEYS, sort=True):
        labels = dict(zip(BLOCK_KEYS, key))
        wide, dropped = align(block)
        friedman_rows.append(labels | {"dropped_unpaired": dropped} | friedman(wide, settings))
        for row in pairwise(wide, labels["metric"], settings):
            pair_rows.append(labels | {"dropped_unpaired": dropped} | row)
    return pd.DataFrame(friedman_rows), pd.DataFrame(pair_rows)

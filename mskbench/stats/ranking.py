"""Ranking stability: how often each model keeps its place when subjects are resampled.

A leaderboard rank is a statistic of the subjects that happened to be in
the test set; the bootstrap over subjects gives each model an interval of
plausible ranks, and models whose intervals overlap are not reliably ordered.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from mskbench.stats.compare import BLOCK_KEYS, align, higher_is_better


def rank_intervals(wide: pd.DataFrame, higher_better: bool, rng: np.random.Generator, n_boot: int,
                   alpha: float = 0.05) -> pd.DataFrame:
    """Observed rank (1 = best, by the mean), the bootstrap rank interval and P(rank 1)."""
    values = wide.to_numpy(float)
    sign = -1.0 if higher_better else 1.0
    observed = rankdata(sign * values.mean(axis=0), method="min")
    draws = rng.integers(0, len(values), size=(n_boot, len(values)))
    boot_means = values[draws].mean(axis=1)
    boot_ranks = rankdata(sign * boot_means, method="min", axis=1)
    low, high = np.percentile(boot_ranks, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
    return pd.DataFrame({
        "model": wide.columns, "mean": values.mean(axis=0), "rank": observed.astype(int),
        "rank_low": np.floor(low).astype(int), "rank_high": np.ceil(high).astype(int),
        "p_best": (boot_ranks == 1).mean(axis=0), "n_subjects": len(values),
    })


def ranking(values: pd.DataFrame, rng_for, n_boot: int, min_subjects: int) -> pd.DataFrame:
    """Rank intervals for every (dataset, prompter, metric, structure) block.

    `rng_for(key)` returns the block's generator, so results do not depend on
    block order.
    """
    frames = []
    for key, block in values.groupby(BLOCK_KEYS, sort=True):
        labels = dict(zip(BLOCK_KEYS, key))
        wide, dropped = align(block)
        if len(wide) < min_subjects or wide.shape[1] < 2:
            continue
        table = rank_intervals(wide, higher_is_better(labels["metric"]), rng_for(key), n_boot)
        frames.append(table.assign(**labels, dropped_unpaired=dropped))
    if not frames:
        return pd.DataFrame(columns=[*BLOCK_KEYS, "model", "mean", "rank", "rank_low", "rank_high", "p_best",
                                     "n_subjects", "dropped_unpaired"])
    return pd.concat(frames, ignore_index=True)[[*BLOCK_KEYS, "model", "mean", "rank", "rank_low", "rank_high",
                                                 "p_best", "n_subjects", "dropped_unpaired"]]

"""Dice-vs-round curves of interactive cells (DESIGN §9): how fast corrective clicks pay off.

Per (dataset, prompter, model) and round: the mean over subjects of the
whole-subject value (the mean over labels) and a percentile bootstrap band.
Subjects are resampled as whole rows, every round at once, so the band
describes the curve of one resample of patients; only subjects with a
finite value at every round are used, so each point averages the same
subjects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from mskbench.stats.agreement import percentile_ci
from mskbench.stats.data import whole_subject

CURVE_KEYS = ["dataset", "prompter", "model"]


def interactive_cells(values: pd.DataFrame) -> pd.DataFrame:
    """Rows of the (dataset, model, prompter) cells that have a round above 0."""
    last = values.groupby(CURVE_KEYS)["round"].transform("max")
    return values[last > 0]


def round_curves(values: pd.DataFrame, rng_for: Callable[[Sequence[object]], np.random.Generator], n_boot: int,
                 alpha: float = 0.05) -> pd.DataFrame:
    """One row per (dataset, prompter, model, round): mean, ci_low, ci_high, n_subjects.

    ``values``: per-round subject rows (:func:`mskbench.stats.data.subject_metric_rounds`)
    of one metric; ``rng_for(key)`` gives each curve its own generator.
    """
    rows = []
    for key, block in whole_subject(interactive_cells(values)).groupby(CURVE_KEYS, sort=True):
        wide = block.pivot(index="subject_id", columns="round", values="value").dropna()
        if wide.empty:
            continue
        matrix = wide.to_numpy(float)
        draws = rng_for(("curve", *key)).integers(0, len(matrix), size=(n_boot, len(matrix)))
        boot_means = matrix[draws].mean(axis=1)
        for j, round_ in enumerate(wide.columns):
            low, high = percentile_ci(boot_means[:, j], alpha)
            rows.append(dict(zip(CURVE_KEYS, key)) | {"round": int(round_), "mean": float(matrix[:, j].mean()),
                                                       "ci_low": low, "ci_high": high, "n_subjects": len(matrix)})
    return pd.DataFrame(rows, columns=[*CURVE_KEYS, "round", "mean", "ci_low", "ci_high", "n_subjects"])

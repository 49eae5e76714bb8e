"""Confidence interval of a mean over subjects, the number beside every headline value."""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats


def mean_ci(values: np.ndarray, rng: np.random.Generator, n_boot: int, alpha: float = 0.05
            ) -> tuple[float, float, float]:
    """(mean, low, high): the mean of the finite values and scipy's percentile bootstrap CI over them.

    Percentile (not BCa) to match the rank intervals and round-curve bands;
    fewer than two finite values give no interval (NaN bounds).
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return np.nan, np.nan, np.nan
    mean = float(finite.mean())
    if finite.size < 2 or np.all(finite == finite[0]):
        return (mean, mean, mean) if finite.size >= 2 else (mean, np.nan, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap((finite,), np.mean, n_resamples=n_boot, confidence_level=1 - alpha,
                                 method="percentile", rng=rng)
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)

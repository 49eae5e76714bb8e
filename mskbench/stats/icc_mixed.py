"""ICC from a linear mixed model, with a subject bootstrap (the source study's agreement ICC; DESIGN §9).

Model: value ~ source (reference / prediction, fixed) + a random intercept
per measured target (the subject; the (subject, instance) pair when a
biomarker has several instances such as disc levels), fitted by REML with
statsmodels ``MixedLM``. ICC = var(target) / (var(target) + var(residual)):
the consistency ICC, reported beside ICC(3,1).

The bootstrap resamples subjects 10,000 times (by default) and reports the
median and the 2.5/97.5 percentiles. 10,000 MixedLM fits would take minutes
per group, so each resample uses the REML solution in closed form, which
exists because every target has exactly one value per source (the pairs are
complete by construction): var(residual) = MSE, var(target) =
max(0, (MSR - MSE) / 2) with the two-way mean squares, i.e.
ICC = max(0, (4 S_m - S_d) / (4 S_m + S_d)) with S_m, S_d the sums of
squares of the pair means and differences. Tests check it equals MixedLM on
resamples and on the full data.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

N_BOOT_ICC = 10_000


def mixedlm_icc(reference: np.ndarray, prediction: np.ndarray, targets: np.ndarray) -> dict[str, object]:
    """REML fit of value ~ source + (1 | target); the ICC, both variances and whether it converged."""
    n = len(reference)
    long = pd.DataFrame({
        "value": np.concatenate([reference, prediction]),
        "source": np.repeat(["reference", "prediction"], n),
        "target": np.tile(np.asarray(targets).astype(str), 2),
    })
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = smf.mixedlm("value ~ C(source)", long, groups=long["target"]).fit(reml=True)
    between = max(float(result.cov_re.iloc[0, 0]), 0.0)
    residual = float(result.scale)
    total = between + residual
    notes = sorted({str(w.message).splitlines()[0] for w in caught})
    return {"icc_lmm": between / total if total > 0 else np.nan, "var_subject": between, "var_residual": residual,
            "lmm_converged": bool(result.converged), "lmm_note": "; ".join(notes)}


def _closed_form(weights: np.ndarray, means: np.ndarray, diffs: np.ndarray) -> np.ndarray:
    """Closed-form REML ICC for each row of target ``weights`` (times each target is drawn)."""
    total = weights.sum(axis=1)

    def sum_squares(x: np.ndarray) -> np.ndarray:
        centred = x - x.mean()
        first = weights @ centred
        return weights @ centred ** 2 - first ** 2 / total

    s_m, s_d = 4 * sum_squares(means), sum_squares(diffs)
    with np.errstate(invalid="ignore", divide="ignore"):
        icc = (s_m - s_d) / (s_m + s_d)
    return np.where(np.isfinite(icc), np.maximum(icc, 0.0), np.nan)


def closed_form_icc(reference: np.ndarray, prediction: np.ndarray) -> float:
    """The closed-form REML ICC of the pairs as given (each target once)."""
    means, diffs = (reference + prediction) / 2, prediction - reference
    return float(_closed_form(np.ones((1, len(means))), means, diffs)[0])


def bootstrap_icc(reference: np.ndarray, prediction: np.ndarray, subjects: np.ndarray, rng: np.random.Generator,
                  n_boot: int = N_BOOT_ICC, chunk: int = 2000) -> np.ndarray:
    """ICCs of ``n_boot`` subject resamples (a subject drawn with all its targets), vectorised in chunks."""
    codes, subject_of_target = np.unique(subjects, return_inverse=True)
    means, diffs = (reference + prediction) / 2, prediction - reference
    n_subjects = len(codes)
    out = []
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        drawn = rng.integers(0, n_subjects, size=(size, n_subjects))
        counts = np.zeros((size, n_subjects))
        np.add.at(counts, (np.arange(size)[:, None], drawn), 1.0)
        out.append(_closed_form(counts[:, subject_of_target], means, diffs))
    return np.concatenate(out)


def mixed_icc(reference: np.ndarray, prediction: np.ndarray, subjects: np.ndarray, targets: np.ndarray,
              rng: np.random.Generator, n_boot: int = N_BOOT_ICC, alpha: float = 0.05) -> dict[str, object]:
    """The mixed-model ICC, and the median and percentile interval of its subject bootstrap."""
    fit = mixedlm_icc(reference, prediction, targets)
    boot = bootstrap_icc(reference, prediction, subjects, rng, n_boot)
    finite = boot[np.isfinite(boot)]
    if finite.size == 0:
        return fit | {"icc_lmm_boot_median": np.nan, "icc_lmm_ci_low": np.nan, "icc_lmm_ci_high": np.nan,
                      "icc_lmm_n_boot": 0}
    low, median, high = np.percentile(finite, [100 * alpha / 2, 50, 100 * (1 - alpha / 2)])
    return fit | {"icc_lmm_boot_median": float(median), "icc_lmm_ci_low": float(low), "icc_lmm_ci_high": float(high),
                  "icc_lmm_n_boot": int(finite.size)}

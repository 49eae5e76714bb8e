"""Agreement between reference- and prediction-derived biomarkers (DESIGN §8, §9).

The unit of resampling is the subject: a subject with several instances (one
value per disc level) is drawn with all its instances.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

from mskbench.stats.compare import Thresholds
from mskbench.stats.icc_mixed import N_BOOT_ICC, mixed_icc

ICC_NAMES = ("ICC(C,1)", "ICC3")
"""pingouin >= 0.6 calls ICC(3,1) `ICC(C,1)`; older releases `ICC3`."""

Z_975 = stats.norm.ppf(0.975)


def icc_3_1(reference: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """Two-way mixed, consistency, single-rater ICC with pingouin's F-based 95% CI."""
    n = len(reference)
    long = pd.DataFrame({
        "target": np.tile(np.arange(n), 2),
        "rater": np.repeat(["reference", "prediction"], n),
        "value": np.concatenate([reference, prediction]),
    })
    table = pg.intraclass_corr(long, targets="target", raters="rater", ratings="value")
    row = table[table["Type"].isin(ICC_NAMES)].iloc[0]
    low, high = row["CI95"] if "CI95" in table else row["CI95%"]
    return {"icc": float(row["ICC"]), "icc_ci_low": float(low), "icc_ci_high": float(high),
            "icc_p_value": float(row["pval"])}


def icc_3_1_value(pairs: np.ndarray) -> float:
    """ICC(3,1) of an (n, k) array from the two-way ANOVA mean squares.

    Written here because the bootstrap needs thousands of ICCs and
    `pingouin.intraclass_corr` builds a DataFrame and all six ICC forms per
    call; tests check it equals pingouin's `ICC(C,1)` on the same data.
    """
    n, k = pairs.shape
    grand = pairs.mean()
    ss_rows = k * np.sum((pairs.mean(axis=1) - grand) ** 2)
    ss_cols = n * np.sum((pairs.mean(axis=0) - grand) ** 2)
    ss_error = np.sum((pairs - grand) ** 2) - ss_rows - ss_cols
    ms_rows = ss_rows / (n - 1)
    ms_error = ss_error / ((n - 1) * (k - 1))
    denominator = ms_rows + (k - 1) * ms_error
    return float((ms_rows - ms_error) / denominator) if denominator > 0 else np.nan


def subject_bootstrap(groups: np.ndarray, rng: np.random.Generator, n_boot: int):
    """Yield row-index arrays, each a resample of subjects with all their rows."""
    codes, first = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(first == i) for i in range(len(codes))]
    for _ in range(n_boot):
        drawn = rng.integers(0, len(members), size=len(members))
        yield np.concatenate([members[i] for i in drawn])


def percentile_ci(samples: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return np.nan, np.nan
    low, high = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def heteroscedasticity_p(reference: np.ndarray, prediction: np.ndarray) -> float:
    """Levene test of the differences' spread between the lower and upper half of the means.

    A proportional error (spread growing with size) breaks the constant-SD
    assumption behind parametric limits of agreement.
    """
    means = (reference + prediction) / 2
    diffs = prediction - reference
    low = diffs[means <= np.median(means)]
    high = diffs[means > np.median(means)]
    if len(low) < 2 or len(high) < 2:
        return np.nan
    with np.errstate(invalid="ignore", divide="ignore"):  # both halves constant: p is NaN, not a warning
        return float(stats.levene(low, high).pvalue)


def parametric_limits(diffs: np.ndarray, alpha: float = 0.05) -> dict[str, object]:
    """Bias +- 1.96 SD with t-based CIs (Bland & Altman 1999: SE(bias) = SD/sqrt(n), SE(limit) = SD*sqrt(3/n))."""
    n = len(diffs)
    sd = float(np.std(diffs, ddof=1))
    bias = float(np.mean(diffs))
    t = stats.t.ppf(1 - alpha / 2, n - 1)
    se_bias, se_limit = sd / np.sqrt(n), sd * np.sqrt(3.0 / n)
    lower, upper = bias - Z_975 * sd, bias + Z_975 * sd
    return {
        "ba_method": "parametric", "bias": bias, "sd_diff": sd,
        "bias_ci_low": bias - t * se_bias, "bias_ci_high": bias + t * se_bias,
        "loa_lower": lower, "loa_lower_ci_low": lower - t * se_limit, "loa_lower_ci_high": lower + t * se_limit,
        "loa_upper": upper, "loa_upper_ci_low": upper - t * se_limit, "loa_upper_ci_high": upper + t * se_limit,
    }


def percentile_limits(diffs: np.ndarray, groups: np.ndarray, rng: np.random.Generator, n_boot: int,
                      alpha: float = 0.05) -> dict[str, object]:
    """Median and 2.5/97.5 percentiles of the differences, with subject-bootstrap percentile CIs."""
    boot = np.array([
        [np.median(diffs[idx]), *np.percentile(diffs[idx], [2.5, 97.5])]
        for idx in subject_bootstrap(groups, rng, n_boot)
    ])
    lower, upper = np.percentile(diffs, [2.5, 97.5])
    bias_ci, lower_ci, upper_ci = (percentile_ci(boot[:, i], alpha) for i in range(3))
    return {
        "ba_method": "nonparametric", "bias": float(np.median(diffs)), "sd_diff": float(np.std(diffs, ddof=1)),
        "bias_ci_low": bias_ci[0], "bias_ci_high": bias_ci[1],
        "loa_lower": float(lower), "loa_lower_ci_low": lower_ci[0], "loa_lower_ci_high": lower_ci[1],
        "loa_upper": float(upper), "loa_upper_ci_low": upper_ci[0], "loa_upper_ci_high": upper_ci[1],
    }


def bland_altman(reference: np.ndarray, prediction: np.ndarray, groups: np.ndarray,
                 rng: np.random.Generator, n_boot: int, alpha: float = 0.05) -> dict[str, object]:
    """Bias and 95% limits of agreement of prediction - reference, with their CIs.

    Parametric when Shapiro–Wilk on the differences and the Levene spread
    test both keep normality and constant spread at `alpha`; otherwise the
    percentile version. Written here: no maintained library returns the
    limits' CIs or the non-parametric variant (pingouin only plots the
    parametric one).
    """
    diffs = prediction - reference
    shapiro_p = float(stats.shapiro(diffs).pvalue) if len(diffs) >= 3 and np.ptp(diffs) > 0 else np.nan
    levene_p = heteroscedasticity_p(reference, prediction)
    rejected = (np.isfinite(shapiro_p) and shapiro_p < alpha) or (np.isfinite(levene_p) and levene_p < alpha)
    tests = {"shapiro_p": shapiro_p, "levene_p": levene_p}
    if rejected:
        return tests | percentile_limits(diffs, groups, rng, n_boot, alpha)
    return tests | parametric_limits(diffs, alpha)


def regression(reference: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """Ordinary least squares of prediction on reference (slope, intercept, their SEs and p-values), and Spearman's rho.

    The p-values test slope = 0 and intercept = 0 (t with n - 2 degrees of
    freedom, as `scipy.stats.linregress` and statsmodels OLS report them).
    """
    n = len(reference)
    if np.ptp(reference) == 0 or n < 3:
        fit = dict.fromkeys(("slope", "intercept", "r_squared", "slope_se", "intercept_se", "slope_p",
                             "intercept_p"), np.nan)
    else:
        result = stats.linregress(reference, prediction)
        with np.errstate(divide="ignore", invalid="ignore"):  # a perfect fit has SE 0
            t_intercept = result.intercept / result.intercept_stderr
        fit = {"slope": float(result.slope), "intercept": float(result.intercept),
               "r_squared": float(result.rvalue ** 2), "slope_se": float(result.stderr),
               "intercept_se": float(result.intercept_stderr), "slope_p": float(result.pvalue),
               "intercept_p": float(2 * stats.t.sf(abs(t_intercept), n - 2))}
    if np.ptp(reference) == 0 or np.ptp(prediction) == 0:  # a constant side: rank correlation undefined
        return fit | {"spearman_rho": np.nan, "spearman_p": np.nan}
    rho = stats.spearmanr(reference, prediction)
    return fit | {"spearman_rho": float(rho.statistic), "spearman_p": float(rho.pvalue)}


def agreement_row(pairs: pd.DataFrame, settings: Thresholds, rng: np.random.Generator,
                  n_boot: int, n_boot_icc: int = N_BOOT_ICC) -> dict[str, object]:
    """Every agreement figure for one (dataset, model, prompter, structure, biomarker) group.

    ``n_boot`` resamples the ICC(3,1) and Bland–Altman CIs, ``n_boot_icc`` the mixed-model ICC.
    """
    reference = pairs["reference"].to_numpy(float)
    prediction = pairs["prediction"].to_numpy(float)
    groups = pairs["subject_id"].to_numpy()
    n_subjects = len(np.unique(groups))
    row: dict[str, object] = {"n_subjects": n_subjects, "n_values": len(reference),
                              "reference_mean": float(np.mean(reference)) if len(reference) else np.nan,
                              "prediction_mean": float(np.mean(prediction)) if len(prediction) else np.nan}
    if n_subjects < settings.min_subjects:
        return row | {"status": "not computed",
                      "reason": f"{n_subjects} paired subject(s); at least {settings.min_subjects} needed"}
    if np.ptp(np.concatenate([reference, prediction])) == 0:
        return row | {"status": "not computed", "reason": "all values identical; agreement undefined"}
    stacked = np.column_stack([reference, prediction])
    boot_icc = np.array([icc_3_1_value(stacked[idx]) for idx in subject_bootstrap(groups, rng, n_boot)])
    low, high = percentile_ci(boot_icc, settings.alpha)
    instances = pairs["instance"].astype(str) if "instance" in pairs else "0"
    targets = (pairs["subject_id"].astype(str) + "|" + instances).to_numpy()
    return (row | icc_3_1(reference, prediction) | {"icc_boot_ci_low": low, "icc_boot_ci_high": high}
            | mixed_icc(reference, prediction, groups, targets, rng, n_boot_icc, settings.alpha)
            | bland_altman(reference, prediction, groups, rng, n_boot, settings.alpha)
            | regression(reference, prediction) | {"status": "computed", "reason": ""})

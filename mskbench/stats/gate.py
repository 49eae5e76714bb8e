"""Model-promotion gate: paired, subject-level non-inferiority (DESIGN §1, §9).

For every (dataset, prompter) the candidate and the baseline are aligned by
subject and the difference d = candidate - baseline is taken (baseline -
candidate for lower-is-better metrics such as HD95, so d > 0 always means
the candidate is better). The candidate is non-inferior when

- ``bootstrap``: the lower end of the 95% subject-bootstrap percentile CI of
  mean(d) is above -margin (a one-sided test at 2.5%), or
- ``wilcoxon``: the one-sided Wilcoxon signed-rank test of d + margin > 0
  rejects at alpha.

A subject the baseline has a finite value for and the candidate lacks
(no row, a NaN value, a failed or skipped subject) rejects the check by
default: judging only the paired subjects would let a candidate that fails
on the hardest subjects look as good as the baseline. ``allow_missing``
(``--allow-missing``) judges the paired subjects anyway; the count is in
the verdict either way.

With ``--biomarker`` the candidate must also keep the biomarker's
Bland–Altman bias CI inside [-max_abs_bias, +max_abs_bias] on every
dataset. Anything that cannot be decided (too few paired subjects) rejects:
a gate promotes only on evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from mskbench.stats.agreement import bland_altman
from mskbench.stats.compare import ZERO_METHOD, higher_is_better
from mskbench.stats.data import whole_subject

METHODS = ("bootstrap", "wilcoxon")


@dataclass(frozen=True)
class GateSettings:
    margin: float = 0.01
    method: str = "bootstrap"
    alpha: float = 0.05
    n_boot: int = 2000
    min_subjects: int = 6
    seed: int = 0
    allow_missing: bool = False


def non_inferiority(diff: np.ndarray, settings: GateSettings, rng: np.random.Generator) -> dict[str, object]:
    """Verdict for paired differences (positive = candidate better)."""
    n = len(diff)
    row: dict[str, object] = {"n_subjects": n, "mean_diff": float(np.mean(diff)) if n else np.nan,
                              "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan}
    if n < settings.min_subjects:
        return row | {"passed": False, "reason": f"not computed: {n} paired subject(s), "
                                                 f"at least {settings.min_subjects} needed"}
    draws = rng.integers(0, n, size=(settings.n_boot, n))
    low, high = np.percentile(diff[draws].mean(axis=1), [100 * settings.alpha / 2, 100 * (1 - settings.alpha / 2)])
    row |= {"ci_low": float(low), "ci_high": float(high)}
    if settings.method == "bootstrap":
        passed = bool(low > -settings.margin)
        reason = f"CI lower bound {low:+.4f} {'>' if passed else '<='} -margin {-settings.margin:+.4f}"
        return row | {"passed": passed, "reason": reason}
    shifted = diff + settings.margin
    if np.all(shifted == 0):
        p_value = 1.0
    else:
        p_value = float(stats.wilcoxon(shifted, zero_method=ZERO_METHOD, alternative="greater").pvalue)
    passed = bool(p_value < settings.alpha)
    return row | {"p_value": p_value, "passed": passed,
                  "reason": f"one-sided Wilcoxon p = {p_value:.3g} {'<' if passed else '>='} alpha {settings.alpha}"}


def metric_gate(values: pd.DataFrame, baseline: str, candidate: str, metric: str, structure: str | None,
                settings: GateSettings) -> pd.DataFrame:
    """One verdict row per (dataset, prompter, structure); `structure` None = the whole subject."""
    rows = []
    sign = 1.0 if higher_is_better(metric) else -1.0
    chosen = values[(values["metric"] == metric) & values["model"].isin([baseline, candidate])]
    chosen = whole_subject(chosen) if structure is None else chosen[chosen["structure"] == structure]
    for (dataset, prompter, label), block in chosen.groupby(["dataset", "prompter", "structure"], sort=True):
        wide = block.set_index(["subject_id", "model"])["value"].unstack("model").reindex(columns=[baseline, candidate])
        paired = wide.dropna()
        missing = sorted(wide.index[wide[baseline].notna() & wide[candidate].isna()])
        diff = sign * (paired[candidate] - paired[baseline]).to_numpy(float)
        rng = np.random.default_rng([settings.seed, len(rows)])
        verdict = _missing_verdict(non_inferiority(diff, settings, rng), missing, settings)
        rows.append({"check": f"{metric} non-inferiority", "structure": label, "dataset": dataset, "prompter": prompter,
                     "baseline_mean": float(paired[baseline].mean()) if len(paired) else np.nan,
                     "candidate_mean": float(paired[candidate].mean()) if len(paired) else np.nan,
                     "dropped_unpaired": int(len(wide) - len(paired)), "missing_in_candidate": len(missing),
                     "missing_subjects": ", ".join(map(str, missing))} | verdict)
    return pd.DataFrame(rows)


def _missing_verdict(verdict: dict[str, object], missing: list[str], settings: GateSettings) -> dict[str, object]:
    """Subjects the baseline has and the candidate lacks reject, unless ``allow_missing``."""
    if not missing:
        return verdict
    shown = ", ".join(map(str, missing[:3])) + (", ..." if len(missing) > 3 else "")
    if settings.allow_missing:
        return verdict | {"reason": f"{verdict['reason']}; {len(missing)} subject(s) without a candidate result "
                                    f"left out (--allow-missing)"}
    return verdict | {"passed": False,
                      "reason": f"candidate has no result for {len(missing)} subject(s) the baseline has ({shown}); "
                                f"rerun them, or judge the paired subjects only with --allow-missing"}


def biomarker_gate(pairs: pd.DataFrame, candidate: str, biomarker: str, max_abs_bias: float,
                   settings: GateSettings) -> pd.DataFrame:
    """One row per (dataset, prompter, structure): is the bias CI inside +-max_abs_bias?"""
    rows = []
    chosen = pairs[(pairs["model"] == candidate) & (pairs["biomarker"] == biomarker)]
    for (dataset, prompter, structure), group in chosen.groupby(["dataset", "prompter", "structure"], sort=True):
        n = group["subject_id"].nunique()
        row = {"check": f"{biomarker} bias", "structure": structure, "dataset": dataset, "prompter": prompter,
               "n_subjects": n}
        if n < settings.min_subjects:
            rows.append(row | {"passed": False, "reason": f"not computed: {n} paired subject(s), "
                                                          f"at least {settings.min_subjects} needed"})
            continue
        rng = np.random.default_rng([settings.seed, 1_000 + len(rows)])
        ba = bland_altman(group["reference"].to_numpy(float), group["prediction"].to_numpy(float),
                          group["subject_id"].to_numpy(), rng, settings.n_boot, settings.alpha)
        low, high = ba["bias_ci_low"], ba["bias_ci_high"]
        passed = bool(-max_abs_bias <= low and high <= max_abs_bias)
        rows.append(row | {"mean_diff": ba["bias"], "ci_low": low, "ci_high": high, "passed": passed,
                           "reason": f"bias CI [{low:+.4g}, {high:+.4g}] {'inside' if passed else 'outside'} "
                                     f"+-{max_abs_bias:g} ({ba['ba_method']})"})
    return pd.DataFrame(rows)

"""Acquisition effects on subject Dice: VIF screening, then a mixed model (DESIGN §9).

Outcome: a subject's Dice (mean over its labels) for one (model, prompter).
Fixed effects: the acquisition covariates in their own units (per ms TE, per
degree, per mm; `is_3d` = 3D minus 2D). Random intercept per dataset, so a
dataset's overall difficulty is not mistaken for a protocol effect.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.tools.tools import add_constant

from mskbench.stats.data import whole_subject

COVARIATES = ("te_ms", "flip_angle_deg", "slice_thickness_mm", "pixel_spacing_mm", "is_3d")
VIF_THRESHOLD = 10.0


def design(acquisition: pd.DataFrame) -> pd.DataFrame:
    """Covariate columns from the subjects table (`acquisition_type` 3D -> is_3d = 1)."""
    out = acquisition[["dataset", "subject_id"]].copy()
    for column in COVARIATES[:-1]:
        out[column] = pd.to_numeric(acquisition[column], errors="coerce")
    kind = acquisition["acquisition_type"].astype("string").str.upper()
    out["is_3d"] = np.where(kind.isna(), np.nan, (kind == "3D").astype(float))
    return out


def vif_screen(frame: pd.DataFrame, covariates: list[str], threshold: float = VIF_THRESHOLD
               ) -> tuple[list[str], list[dict[str, object]]]:
    """Drop constant covariates, then repeatedly the one with the largest VIF above `threshold`."""
    steps: list[dict[str, object]] = []
    kept = []
    for name in covariates:
        if frame[name].nunique() < 2:
            steps.append({"covariate": name, "vif": np.nan, "removed": True, "reason": "constant"})
        else:
            kept.append(name)
    while len(kept) > 1:
        matrix = add_constant(frame[kept].to_numpy(float), has_constant="add")
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a singular design is what the screen is here to find
            vifs = [variance_inflation_factor(matrix, i + 1) for i in range(len(kept))]
        worst = int(np.nanargmax(np.where(np.isfinite(vifs), vifs, np.inf)))
        if np.isfinite(vifs[worst]) and vifs[worst] <= threshold:
            steps.extend({"covariate": name, "vif": float(v), "removed": False, "reason": ""}
                         for name, v in zip(kept, vifs))
            return kept, steps
        steps.append({"covariate": kept[worst], "vif": float(vifs[worst]), "removed": True,
                      "reason": f"VIF > {threshold:g}"})
        kept.pop(worst)
    steps.extend({"covariate": name, "vif": 1.0, "removed": False, "reason": ""} for name in kept)
    return kept, steps


def fit_effects(frame: pd.DataFrame, covariates: list[str], min_subjects: int, repeated: str | None = None
                ) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Fit dice ~ covariates (+ random intercept per dataset); coefficient rows and a status row.

    ``repeated`` names the column of a unit measured in several rows (a subject scored by several models):
    it gets a random intercept of its own, nested in the dataset, so the rows of one subject are not counted
    as independent evidence (without it the standard error of a per-subject covariate such as TE shrinks by
    about the square root of the number of models, and p-values follow).
    """
    n, n_datasets = len(frame), frame["dataset"].nunique()
    status: dict[str, object] = {"n_subjects": n, "n_datasets": n_datasets, "covariates": ",".join(covariates)}
    if not covariates:
        return [], status | {"status": "not computed", "reason": "no acquisition covariate varies", "model_kind": ""}
    if n < max(min_subjects, len(covariates) + 3):
        return [], status | {"status": "not computed", "model_kind": "",
                             "reason": f"{n} subject(s) for {len(covariates)} covariate(s); too few"}
    formula = "dice ~ " + " + ".join(covariates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if repeated is not None and n_datasets >= 2:
            result = smf.mixedlm(formula, frame, groups=frame["dataset"],
                                 vc_formula={repeated: f"0 + C({repeated})"}).fit(reml=True)
            kind = f"mixedlm (random intercept per dataset and per {repeated} within it)"
        elif repeated is not None:
            result = smf.mixedlm(formula, frame, groups=frame[repeated]).fit(reml=True)
            kind = f"mixedlm (random intercept per {repeated}; one dataset)"
        elif n_datasets >= 2:
            result = smf.mixedlm(formula, frame, groups=frame["dataset"]).fit(reml=True)
            kind = "mixedlm (random intercept per dataset)"
        else:
            result = smf.ols(formula, frame).fit()
            kind = "ols (one dataset: no random intercept)"
    ci = result.conf_int()
    rows = [{"term": term, "estimate": float(result.params[term]), "std_error": float(result.bse[term]),
             "ci_low": float(ci.loc[term, 0]), "ci_high": float(ci.loc[term, 1]),
             "p_value": float(result.pvalues[term])}
            for term in ["Intercept", *covariates]]
    converged = bool(getattr(result, "converged", True))
    return rows, status | {"status": "computed", "model_kind": kind,
                           "reason": "" if converged else "optimizer did not converge; read with care"}


def acquisition_effects(values: pd.DataFrame, acquisition: pd.DataFrame, min_subjects: int,
                        metric: str = "dice") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Coefficients, VIF steps and fit status per (model, prompter)."""
    subject = whole_subject(values[(values["metric"] == metric) & values["value"].notna()])
    covs = design(acquisition) if not acquisition.empty else pd.DataFrame()
    coef_rows, vif_rows, status_rows = [], [], []
    for (model, prompter), block in subject.groupby(["model", "prompter"], sort=True):
        keys = {"model": model, "prompter": prompter, "metric": metric}
        if covs.empty:
            status_rows.append(keys | {"status": "not computed", "reason": "no subjects table with acquisition rows"})
            continue
        frame = block[["dataset", "subject_id", "value"]].rename(columns={"value": "dice"}).merge(
            covs, on=["dataset", "subject_id"], how="inner")
        known = [c for c in COVARIATES if frame[c].notna().any()]
        complete = frame.dropna(subset=known)
        covariates, steps = vif_screen(complete, known)
        vif_rows.extend(keys | step for step in steps)
        rows, status = fit_effects(complete, covariates, min_subjects)
        coef_rows.extend(keys | row for row in rows)
        status_rows.append(keys | status | {"dropped_missing": len(block) - len(complete)})
    return pd.DataFrame(coef_rows), pd.DataFrame(vif_rows), pd.DataFrame(status_rows)

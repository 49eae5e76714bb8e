"""Fine-tuning effects on subject Dice: what trained, box shift and dataset mixing as covariates (issue 17, item 6).

The source study's model, over every model of a (prompter, metric) block: a subject's Dice (mean over its
labels) for one model is explained by that model's training, with a random intercept per dataset so a
dataset's difficulty is not mistaken for a training effect, and one per subject within its dataset, because
every subject appears once per model: its rows are not independent evidence (most of all for a per-subject
covariate such as TE). The model's training comes from its card,
stored on the cells (``cells.finetune_*``; NULL for a base model without a card). Fixed effects:

- ``trains_decoder`` / ``trains_full`` / ``trains_adapters``: 1 for a model fine-tuned that way, against the
  models without a card (the base models) as reference;
- ``shift_px``: the training box shift bound in pixels (0 for a base model, so with the trains indicators in
  the model it is the shift effect among fine-tuned models);
- ``mixed``: 1 for a model trained on more than one dataset;
- ``train_subjects``: the number of training subjects;
- ``te_ms`` (centred) when the echo time varies, and ``te_x_<mode>`` = centred TE × ``trains_<mode>``: does
  fine-tuning change how Dice depends on TE. Centring keeps the product from duplicating its main effects.

Covariates that do not vary are left out, then the VIF screen of :func:`mskbench.stats.mixed.vif_screen`
drops collinear ones (e.g. ``train_subjects`` when every fine-tuned model saw the same number), and
:func:`mskbench.stats.mixed.fit_effects` fits the model (statsmodels MixedLM).
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd

from mskbench.stats import data
from mskbench.stats.mixed import fit_effects, vif_screen

TRAINS = ("decoder", "full", "adapters")
CARD_COLUMNS = ("finetune_trains", "finetune_max_shift", "finetune_mix", "finetune_train_subjects")


def model_training(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per model with its card columns from its latest run (empty before the columns existed)."""
    if not set(CARD_COLUMNS) <= data._columns(con, "cells"):
        return pd.DataFrame(columns=["model", *CARD_COLUMNS])
    return con.execute(
        f"""SELECT c.model, {', '.join('c.' + col for col in CARD_COLUMNS)} FROM cells c
            QUALIFY row_number() OVER (PARTITION BY c.model ORDER BY {data._latest_run_order(con)}) = 1"""
    ).df()


def covariates(training: pd.DataFrame) -> pd.DataFrame:
    """The per-model fixed-effect columns (module docstring) from the card columns."""
    trains = training["finetune_trains"]
    out = pd.DataFrame({"model": training["model"]})
    for mode in TRAINS:
        out[f"trains_{mode}"] = (trains == mode).astype(float)
    out["shift_px"] = pd.to_numeric(training["finetune_max_shift"], errors="coerce").fillna(0.0)
    out["mixed"] = [float(isinstance(m, str) and len(json.loads(m)) > 1) for m in training["finetune_mix"]]
    out["train_subjects"] = pd.to_numeric(training["finetune_train_subjects"], errors="coerce").fillna(0.0)
    return out


def design(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Add the centred TE and its products with the trains indicators; the candidate covariates that vary."""
    frame = frame.copy()
    # exact collinearity gives several infinite VIFs and the screen drops the first: the most expendable first
    candidates = ["train_subjects", "mixed", "shift_px"] + [f"trains_{mode}" for mode in TRAINS]
    te = pd.to_numeric(frame.get("te_ms"), errors="coerce") if "te_ms" in frame else None
    if te is not None and te.notna().all() and te.nunique() > 1:
        frame["te_ms"] = te - te.mean()
        candidates.append("te_ms")
        for mode in TRAINS:
            if frame[f"trains_{mode}"].nunique() > 1:
                frame[f"te_x_{mode}"] = frame["te_ms"] * frame[f"trains_{mode}"]
                candidates.append(f"te_x_{mode}")
    return frame, [c for c in candidates if frame[c].nunique() > 1]


def block_effects(frame: pd.DataFrame, min_subjects: int) -> tuple[list[dict], list[dict], dict]:
    """Coefficient rows, VIF steps and status for one block: ``frame`` has dataset, dice, the covariates, te_ms."""
    frame, candidates = design(frame)
    kept, steps = vif_screen(frame, candidates)
    rows, status = fit_effects(frame, kept, min_subjects, repeated="subject_id")
    if not candidates:
        status["reason"] = "no training covariate varies (one kind of model only)"
    return rows, steps, status


def finetune_effects(values: pd.DataFrame, training: pd.DataFrame, acquisition: pd.DataFrame, min_subjects: int,
                     metric: str = "dice") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Coefficients, VIF steps and status per prompter; empty when no evaluated model has a card."""
    if training.empty or training["finetune_trains"].isna().all():
        return pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    subject = data.whole_subject(values[(values["metric"] == metric) & values["value"].notna()])
    per_model = covariates(training)
    te = acquisition[["dataset", "subject_id", "te_ms"]] if "te_ms" in acquisition else None
    coef_rows, vif_rows, status_rows = [], [], []
    for prompter, block in subject.groupby("prompter", sort=True):
        frame = block[["dataset", "subject_id", "model", "value"]].rename(columns={"value": "dice"})
        frame = frame.merge(per_model, on="model", how="inner")
        if te is not None:
            frame = frame.merge(te, on=["dataset", "subject_id"], how="left")
        keys = {"prompter": prompter, "metric": metric}
        rows, steps, status = block_effects(frame, min_subjects)
        coef_rows.extend(keys | row for row in rows)
        vif_rows.extend(keys | step for step in steps)
        status_rows.append(keys | status | {"n_models": int(frame["model"].nunique())})
    return pd.DataFrame(coef_rows), pd.DataFrame(vif_rows), pd.DataFrame(status_rows)


"""Fine-tuning covariates (issue 17, item 6): planted training effects are recovered by the mixed model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mskbench.stats.finetune_effects import finetune_effects

#: model -> (trains, max_shift, datasets in its mix, training subjects); None: a base model without a card
MODELS = {
    "base": None,
    "dec0": ("decoder", 0, 1, 10), "dec20": ("decoder", 20, 1, 20),
    "full0": ("full", 0, 1, 40), "full20": ("full", 20, 1, 10), "full20mix": ("full", 20, 3, 20),
}
TRUE = {"trains_decoder": 0.04, "trains_full": 0.10, "shift_px": 0.0015, "mixed": -0.03, "te_ms": -0.002,
        "te_x_full": 0.001, "te_x_decoder": 0.0, "train_subjects": 0.0}


def training(models=MODELS) -> pd.DataFrame:
    rows = []
    for model, card in models.items():
        if card is None:
            rows.append({"model": model, "finetune_trains": None, "finetune_max_shift": None, "finetune_mix": None,
                         "finetune_train_subjects": None})
        else:
            trains, shift, n_mix, n_subjects = card
            rows.append({"model": model, "finetune_trains": trains, "finetune_max_shift": float(shift),
                         "finetune_mix": json.dumps({f"d{i}": 1.0 for i in range(n_mix)}),
                         "finetune_train_subjects": n_subjects})
    return pd.DataFrame(rows)


def planted(seed: int, models=MODELS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Subject Dice of every model on 4 datasets × 15 subjects with the TRUE effects, and each subject's TE."""
    rng = np.random.default_rng(seed)
    values, acquisition = [], []
    for d in range(4):
        dataset, intercept = f"ds{d}", 0.70 + rng.normal(0, 0.05)
        for s in range(15):
            subject, te = f"{dataset}_s{s:02d}", rng.uniform(10, 40)
            acquisition.append({"dataset": dataset, "subject_id": subject, "te_ms": te})
            difficulty = rng.normal(0, 0.02)
            for model, card in models.items():
                trains, shift, n_mix, _ = card or (None, 0, 0, 0)
                dice = (intercept + difficulty + TRUE["te_ms"] * (te - 25)
                        + TRUE["trains_decoder"] * (trains == "decoder") + TRUE["trains_full"] * (trains == "full")
                        + TRUE["te_x_full"] * (te - 25) * (trains == "full")
                        + TRUE["shift_px"] * shift + TRUE["mixed"] * (n_mix > 1) + rng.normal(0, 0.015))
                values.append({"dataset": dataset, "subject_id": subject, "model": model, "prompter": "gt_box",
                               "metric": "dice", "structure": "femur", "value": dice})
    return pd.DataFrame(values), pd.DataFrame(acquisition)


def test_planted_training_effects_are_recovered_with_sign_and_size():
    values, acquisition = planted(0)
    coef, vif, status = finetune_effects(values, training(), acquisition, min_subjects=6)
    assert status.iloc[0]["status"] == "computed" and "per subject_id" in status.iloc[0]["model_kind"]
    assert status.iloc[0]["n_models"] == 6
    fit = coef.set_index("term")
    for term, true in TRUE.items():  # on the planted value's side of 0
        assert true == 0 or np.sign(fit.loc[term, "estimate"]) == np.sign(true), term
    for term in ("trains_decoder", "trains_full", "shift_px", "mixed"):  # the training effects: roughly their size
        assert fit.loc[term, "estimate"] == pytest.approx(TRUE[term], rel=0.2), term
    interval = coef.set_index("term").loc["trains_full", ["ci_low", "ci_high"]]
    assert interval["ci_low"] < TRUE["trains_full"] < interval["ci_high"]
    assert not vif["removed"].any()


def test_estimates_are_unbiased_and_their_standard_errors_honest_over_seeds():
    """(estimate - planted) / SE over 12 data sets: centred on 0 with spread 1 for every term, as the fitted
    model promises. Without the subject intercept the within-subject terms (shift, what trained) get standard
    errors several times too large (their z spread far below 1), and a biased term fails the centre."""
    z = {term: [] for term in TRUE}
    for seed in range(12):
        values, acquisition = planted(seed)
        fit = finetune_effects(values, training(), acquisition, min_subjects=6)[0].set_index("term")
        for term, true in TRUE.items():
            z[term].append((fit.loc[term, "estimate"] - true) / fit.loc[term, "std_error"])
    for term, scores in z.items():
        scores = np.array(scores)
        assert abs(scores.mean()) < 0.75 and 0.5 < scores.std() < 1.6 and np.abs(scores).max() < 4, (term, scores)


def test_vif_drops_a_collinear_covariate_and_keeps_the_effects():
    # every fine-tuned model saw 20 subjects: train_subjects = 20 * (decoder + full), exactly collinear
    models = {name: card if card is None else (*card[:3], 20) for name, card in MODELS.items()}
    values, acquisition = planted(1, models)
    coef, vif, _ = finetune_effects(values, training(models), acquisition, min_subjects=6)
    removed = vif[vif["removed"]]
    assert list(removed["covariate"]) == ["train_subjects"] and removed.iloc[0]["vif"] > 10
    assert "train_subjects" not in set(coef["term"])
    estimate = coef.set_index("term")["estimate"]
    assert estimate["trains_full"] == pytest.approx(TRUE["trains_full"], abs=0.025)


def test_no_card_on_any_model_computes_nothing():
    values, acquisition = planted(2, {"base": None, "other": None})
    coef, vif, status = finetune_effects(values, training({"base": None, "other": None}), acquisition, 6)
    assert coef.empty and vif.empty and status.empty


def test_model_training_reads_each_models_card_columns_from_its_latest_run(tmp_path):
    import datetime

    from mskbench.stats.finetune_effects import model_training
    from mskbench.store import RowBuffer, Store

    buffer = RowBuffer()
    for run, day, shift in (("old", 1, 0.0), ("new", 2, 20.0)):
        buffer.add("runs", run_id=run, started_at=datetime.datetime(2026, 1, day))
        buffer.add("cells", run_id=run, cell_id="k:ft:p:0", model="ft", finetune_trains="full",
                   finetune_max_shift=shift, finetune_mix='{"knee": 1.0}', finetune_train_subjects=5)
        buffer.add("cells", run_id=run, cell_id="k:base:p:0", model="base")
    with Store.open_for_writing(tmp_path / "r.duckdb") as store:
        store.write(buffer)
        rows = model_training(store.con).sort_values("model").to_dict(orient="records")
    assert rows[0]["model"] == "base" and pd.isna(rows[0]["finetune_trains"])
    assert (rows[1]["finetune_trains"], rows[1]["finetune_max_shift"]) == ("full", 20.0)

"""The model card's fields as `cells` columns, so `mskbench stats` can model fine-tuning as a covariate.

Every ``finetune_*`` column is NULL for a model without a card (a base model, a model from elsewhere) and for
a card of zero epochs (the untrained base a grid writes, ``train.epochs = 0``), which is how the statistics tell
a base model from a fine-tuned one (docs/schema.md lists the columns).
"""

from __future__ import annotations

from typing import Any

from mskbench.store import to_json
from mskbench.training.card import ModelCard

COLUMNS = ("finetune_base", "finetune_trains", "finetune_prompt", "finetune_max_shift", "finetune_shift_space",
           "finetune_subjects", "finetune_train_subjects", "finetune_mix")


def card_columns(card: ModelCard | None) -> dict[str, Any]:
    """The ``finetune_*`` values of one model's cells."""
    if card is None or card.epochs_run == 0:
        return dict.fromkeys(COLUMNS)
    return {
        "finetune_base": card.base.plugin,
        "finetune_trains": card.trains,
        "finetune_prompt": card.prompt.kind,
        "finetune_max_shift": float(card.prompt.max_shift),
        "finetune_shift_space": card.prompt.shift_space,
        "finetune_subjects": to_json(card.subjects),
        "finetune_train_subjects": sum(len(ids) for ids in card.data.get("train", {}).values()),
        "finetune_mix": to_json(card.mix),
    }

"""The leakage guard: a suite may not score a fine-tuned model on the subjects it was trained or validated on.

At plan time each model's card is looked up from its ``checkpoint`` (``card.json`` beside it, see
:mod:`mskbench.training.card`). For every dataset the model runs on, the suite dataset is *the same data* as a
card dataset when the plugin is the same and either the name or the resolved params are the same (so renaming a
dataset in the suite does not hide it, and a suite dataset named like a training dataset of another plugin is
not confused with it). The subjects checked are the dataset's subjects in the suite's split, cut to the entry's
``limit_subjects`` (the CLI's ``--limit-subjects`` only cuts further, so the check is never too lax).

Identity is the subject id, not the card's data sha256: hashing at plan time would read every overlapping
subject's files, and a different hash does not prove different data (a re-exported or re-compressed copy of a
training subject has other bytes). The guard therefore errs towards refusing; a subject id reused for other
data is cleared with ``allow_training_subjects = true``, which every cell of the model records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mskbench.errors import CheckpointError, SuiteError
from mskbench.suite import DatasetEntry, ModelEntry
from mskbench.training.card import CARD_NAME, ModelCard, card_for_checkpoint

SHOWN_SUBJECTS = 5


def model_card(entry: ModelEntry, where: str) -> ModelCard | None:
    """The card of a suite model (None: no checkpoint, or no card beside it); a damaged card is one line."""
    if entry.checkpoint is None:
        return None
    try:
        return card_for_checkpoint(entry.checkpoint)
    except CheckpointError as exc:
        raise CheckpointError(f"{where} ({entry.name}): {exc}") from None


def trained_on(card: ModelCard, dataset: DatasetEntry, params: dict[str, Any]) -> set[str]:
    """The card's training + validation subject ids of the card datasets that are ``dataset`` (module docstring)."""
    subjects = card.training_subjects()
    seen: set[str] = set()
    for name, identity in card.datasets.items():
        if identity.get("plugin") == dataset.plugin and (name == dataset.name or identity.get("params") == params):
            seen |= subjects.get(name, set())
    return seen


def overlap_message(model: str, where: str, dataset: DatasetEntry, overlap: set[str], checkpoint: str) -> str:
    """One line: which model, which dataset, the first few overlapping subject ids and their count, the fix."""
    ids = sorted(overlap)
    shown = ", ".join(ids[:SHOWN_SUBJECTS]) + (f", … ({len(ids)} in all)" if len(ids) > SHOWN_SUBJECTS else "")
    card = Path(checkpoint).expanduser().parent / CARD_NAME
    return (f"{where} ({model}) on dataset '{dataset.name}' (split '{dataset.split}'): {len(ids)} subject(s) were "
            f"used to train or validate this model according to {card}: {shown}; evaluate on held-out subjects "
            f"(the test split), or set allow_training_subjects = true on the model to score them knowingly")


def check_leakage(entry: ModelEntry, where: str, card: ModelCard, dataset: DatasetEntry,
                  params: dict[str, Any], suite_subjects: list[str]) -> None:
    """Refuse the model on ``dataset`` when the card's subjects overlap the suite's, unless the entry allows it."""
    if entry.allow_training_subjects:
        return
    overlap = trained_on(card, dataset, params) & set(suite_subjects)
    if overlap:
        raise SuiteError(overlap_message(entry.name, where, dataset, overlap, entry.checkpoint or ""))

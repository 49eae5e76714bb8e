"""Model cards written beside real checkpoints, for the leakage guard, the covariates and the grid tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from mskbench.segmenters.checkpoints import sha256_file
from mskbench.training.card import BaseModel, ModelCard, PromptSetting, card_path, write_card

HASH = "ab" * 32
#: the phantom knee cohort the guard tests evaluate: train knee_000-004 and 007, val knee_006, test knee_005
PHANTOM_KNEE = {"anatomy": "knee", "subjects": 8, "seed": 3, "pixel_spacing_min": 1.4, "pixel_spacing_max": 1.6,
                "supersample": 1}


def resolved_phantom(params: dict[str, Any]) -> dict[str, Any]:
    """The phantom's params with its defaults filled in, as a card records a dataset's identity."""
    from mskbench.plugin_manager import get_registry

    return get_registry().resolve_params("dataset", "phantom", params, "card fixture")


def card_for(checkpoint: Path, *, train: list[str], val: list[str], dataset: str = "knee",
             params: dict[str, Any] | None = None, trains: str = "decoder", max_shift: float = 20,
             recipe: dict[str, Any] | None = None) -> ModelCard:
    """A card for ``checkpoint`` (already written) that trained on phantom ``train`` and validated on ``val``."""
    values: dict[str, Any] = dict(
        recipe=recipe or {"train": {"mode": trains}},
        recipe_sha256="cd" * 32,
        base=BaseModel("sam", {"variant": "vit_b"}, None, None, "upstream"),
        trains=trains,
        prompt=PromptSetting("box", max_shift, "original"),
        datasets={dataset: {"plugin": "phantom", "params": resolved_phantom(params or PHANTOM_KNEE)}},
        subjects={dataset: len(train)},
        mix={dataset: 1.0},
        data={"train": {dataset: dict.fromkeys(train, HASH)}, "val": {dataset: dict.fromkeys(val, HASH)}},
        epochs_run=1, best_epoch=1, best_val_dice=0.5, git_commit=None, versions={"torch": torch.__version__},
        device="cpu", wall_seconds=0.1, checkpoint_file=checkpoint.name, checkpoint_sha256=sha256_file(checkpoint),
    )
    # the trainer's card also records the base model's validation Dice before training
    if "untrained_val_dice" in {f.name for f in dataclasses.fields(ModelCard)}:
        values["untrained_val_dice"] = 0.25
    return ModelCard(**values)


def write_trained(out_dir: Path, model: torch.nn.Module, **card: Any) -> Path:
    """``out_dir/model.pt`` (the state dict, as `mskbench train` writes it) and its card; returns the card path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = out_dir / "model.pt"
    torch.save(model.state_dict(), checkpoint)
    path = card_path(out_dir)
    write_card(card_for(checkpoint, **card), path)
    return path

"""The model card: JSON round trip, validation of damaged / foreign cards, lookup from a checkpoint path."""

from __future__ import annotations

import dataclasses
import json

import pytest

from mskbench.errors import CheckpointError
from mskbench.training.card import (
    BaseModel,
    ModelCard,
    PromptSetting,
    card_for_checkpoint,
    read_card,
    write_card,
)

HASH = "ab" * 32


def make_card(**changes) -> ModelCard:
    card = ModelCard(
        recipe={"train": {"mode": "decoder"}},
        recipe_sha256="cd" * 32,
        base=BaseModel("sam", {"variant": "vit_b"}, None, None, "upstream"),
        trains="decoder",
        prompt=PromptSetting("box", 20, "original"),
        datasets={"knee": {"plugin": "phantom", "params": {"anatomy": "knee", "seed": 7}}},
        subjects={"knee": 5},
        mix={"knee": 1.0},
        data={"train": {"knee": {"s1": HASH, "s2": HASH}}, "val": {"knee": {"s3": HASH}}},
        epochs_run=3,
        best_epoch=2,
        best_val_dice=0.5,
        untrained_val_dice=0.25,
        git_commit="deadbeef",
        versions={"torch": "2.0"},
        device="cpu",
        wall_seconds=1.5,
        checkpoint_file="model.pt",
        checkpoint_sha256=HASH,
    )
    return dataclasses.replace(card, **changes)


def test_card_round_trips_and_lists_training_subjects(tmp_path):
    card = make_card()
    write_card(card, tmp_path / "card.json")
    back = read_card(tmp_path / "card.json")
    assert back == card
    assert back.training_subjects() == {"knee": {"s1", "s2", "s3"}}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda raw: raw.update(version=99), "version 99 is not supported"),
        (lambda raw: raw.pop("version"), "version None is not supported"),
        (lambda raw: raw.update(epoch_run=3), "unknown card field (did you mean 'epochs_run'?)"),
        (lambda raw: raw.pop("device"), "card.device: required card field is missing"),
        (lambda raw: raw.update(trains="encoder"), "'encoder' is not one of"),
        (lambda raw: raw.update(best_val_dice=1.5), "above the maximum"),
        (lambda raw: raw.update(checkpoint_sha256="xyz"), "64 lower-case hex digits"),
        (lambda raw: raw["base"].pop("plugin"), "card.base.plugin: required"),
        (lambda raw: raw["prompt"].update(max_shift=-1), "below the minimum"),
        (lambda raw: raw["data"].update(test={}), "data.test"),
        (lambda raw: raw["data"]["train"].update(hip={}), "data.train.hip: not one of the card's datasets"),
        (lambda raw: raw.update(subjects={"knee": 0}), "subjects.knee"),
        (lambda raw: raw.update(mix={"knee": 1, "hip": 1}), "mix names"),
        (lambda raw: raw.update(best_epoch=9), "after epochs_run"),
    ],
)
def test_a_damaged_card_is_one_error_line(tmp_path, edit, message):
    raw = dataclasses.asdict(make_card())
    edit(raw)
    path = tmp_path / "card.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=None) as caught:
        read_card(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\"cos\\u0000\""])
def test_a_card_that_is_not_a_json_object_is_refused(tmp_path, text):
    path = tmp_path / "card.json"
    path.write_text(text)
    with pytest.raises(CheckpointError, match="card"):
        read_card(path)


def test_a_missing_card_names_where_train_writes_it(tmp_path):
    with pytest.raises(CheckpointError, match="not found; `mskbench train` writes it as OUT/card.json"):
        read_card(tmp_path / "card.json")


def test_the_card_of_a_checkpoint_is_found_beside_it_and_must_match_its_hash(tmp_path, monkeypatch):
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path / "hash-cache"))  # sha256_file's cache
    from mskbench.segmenters.checkpoints import sha256_file

    weights = tmp_path / "model.pt"
    weights.write_bytes(b"weights")
    assert card_for_checkpoint(weights) is None  # no card
    write_card(make_card(checkpoint_sha256=sha256_file(weights)), tmp_path / "card.json")
    assert card_for_checkpoint(weights).training_subjects()["knee"] == {"s1", "s2", "s3"}
    other = tmp_path / "other.pt"
    other.write_bytes(b"x")
    assert card_for_checkpoint(other) is None  # the card is for model.pt
    weights.write_bytes(b"retrained")
    with pytest.raises(CheckpointError, match="sha256 differs"):
        card_for_checkpoint(weights)

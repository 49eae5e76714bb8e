"""The model card `mskbench train` writes beside each trained checkpoint: what was trained on what, and how.

Where it lives: a training run writes ``OUT/model.pt`` (the state dict the
model plugins load with ``checkpoint = "OUT/model.pt"``) and ``OUT/card.json``
beside it. :func:`card_for_checkpoint` finds the card of a suite model from its
``checkpoint`` path: ``card.json`` in the checkpoint's folder whose
``checkpoint.file`` is the checkpoint's file name; the card's
``checkpoint.sha256`` must then match the file, so a card never describes
weights it was not written for. A checkpoint copied elsewhere without its card
has no card (the leakage guard cannot see its training subjects).

The card is plain JSON (read with :func:`json.loads`, never pickle), carries a
schema ``version``, and every field is checked on reading, so a malformed card,
a card of an unknown version or a card with an unknown field is one
:class:`~mskbench.errors.CheckpointError` line.

Data fields: ``datasets`` maps each recipe dataset name to its suite identity
(``plugin`` and resolved ``params``, the same as a suite's ``[[datasets]]``
entry); ``data[split][dataset]`` maps every subject id used (``train`` and
``val``) to the sha256 of its data: the hash of its source files when the
dataset reads files (``Subject.source_files``, hashed in order), else of the
image and label arrays it generated (the phantom).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from mskbench.errors import CheckpointError
from mskbench.params import Param, ParamsSchema, validate_params
from mskbench.prompting.jitter import RESOLUTIONS

CARD_VERSION = 1
CARD_NAME = "card.json"
MODEL_NAME = "model.pt"
TRAINS = ("decoder", "full", "adapters")
TRAIN_SPLITS = ("train", "val")
_SHA256 = r"[0-9a-f]{64}"


@dataclass(frozen=True)
class BaseModel:
    """The model training started from: its plugin and params, its weights file (None: random initialisation,
    then ``checkpoint_sha256`` is the hash of the initial state dict as ``torch.save`` writes it)."""

    plugin: str
    params: dict[str, Any]
    checkpoint: str | None
    checkpoint_sha256: str | None
    input_convention: str


@dataclass(frozen=True)
class PromptSetting:
    """The training prompts: ``kind`` (box, box+point, point), the outward box shift bound and the space it is
    in (``model_1024``: pixels of the 1024 model input; ``original``: the slice's pixels)."""

    kind: str
    max_shift: float
    shift_space: str


@dataclass(frozen=True)
class ModelCard:
    """Everything needed to judge a trained checkpoint; see the module docstring for the data fields."""

    recipe: dict[str, Any]
    recipe_sha256: str
    base: BaseModel
    trains: str
    prompt: PromptSetting
    datasets: dict[str, dict[str, Any]]
    subjects: dict[str, int | str]
    mix: dict[str, float]
    data: dict[str, dict[str, dict[str, str]]]
    epochs_run: int
    best_epoch: int
    best_val_dice: float
    untrained_val_dice: float
    git_commit: str | None
    versions: dict[str, str]
    device: str
    wall_seconds: float
    checkpoint_file: str
    checkpoint_sha256: str
    version: int = CARD_VERSION

    def training_subjects(self) -> dict[str, set[str]]:
        """{dataset name: subject ids the model saw}, train and val together (val chose the best epoch)."""
        out: dict[str, set[str]] = {name: set() for name in self.datasets}
        for split in TRAIN_SPLITS:
            for name, subjects in self.data.get(split, {}).items():
                out.setdefault(name, set()).update(subjects)
        return out


_BASE_SCHEMA: ParamsSchema = {
    "plugin": Param("str"),
    "params": Param("dict"),
    "checkpoint": Param("str", None),
    "checkpoint_sha256": Param("str", None, pattern=_SHA256, help="64 lower-case hex digits"),
    "input_convention": Param("str"),
}
_PROMPT_SCHEMA: ParamsSchema = {
    "kind": Param("str", choices=("box", "box+point", "point")),
    "max_shift": Param("float", minimum=0.0),
    "shift_space": Param("str", choices=RESOLUTIONS),
}
_CARD_SCHEMA: ParamsSchema = {
    "version": Param("int"),
    "recipe": Param("dict"),
    "recipe_sha256": Param("str", pattern=_SHA256, help="64 lower-case hex digits"),
    "base": Param("dict"),
    "trains": Param("str", choices=TRAINS),
    "prompt": Param("dict"),
    "datasets": Param("dict"),
    "subjects": Param("dict"),
    "mix": Param("dict"),
    "data": Param("dict"),
    "epochs_run": Param("int", minimum=0),
    "best_epoch": Param("int", minimum=0),
    "best_val_dice": Param("float", minimum=0.0, maximum=1.0),
    "untrained_val_dice": Param("float", minimum=0.0, maximum=1.0, help="the base model's val Dice before training"),
    "git_commit": Param("str", None),
    "versions": Param("dict"),
    "device": Param("str"),
    "wall_seconds": Param("float", minimum=0.0),
    "checkpoint_file": Param("str", pattern=r"[^/\\]+", help="a file name without folders"),
    "checkpoint_sha256": Param("str", pattern=_SHA256, help="64 lower-case hex digits"),
}
assert set(_CARD_SCHEMA) == {f.name for f in fields(ModelCard)}


def card_path(out_dir: Path | str) -> Path:
    return Path(out_dir) / CARD_NAME


def write_card(card: ModelCard, path: Path | str) -> None:
    """Write ``card`` as indented JSON, atomically (a reader never sees half a card)."""
    path = Path(path)
    text = json.dumps(asdict(card), indent=2, sort_keys=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8") as handle:
        handle.write(text + "\n")
    os.chmod(handle.name, 0o644)  # a temporary file is private; the card is an ordinary file
    os.replace(handle.name, path)


def _check_data(data: Mapping[str, Any], datasets: Mapping[str, Any], where: str) -> None:
    for split, by_dataset in data.items():
        if split not in TRAIN_SPLITS or not isinstance(by_dataset, Mapping):
            raise CheckpointError(f"{where}: data.{split}: expected the split 'train' or 'val' mapping datasets to "
                                  "{subject id: sha256}; the card is damaged, retrain or restore it")
        for name, subjects in by_dataset.items():
            if name not in datasets:
                raise CheckpointError(f"{where}: data.{split}.{name}: not one of the card's datasets; the card is damaged")
            if not isinstance(subjects, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in subjects.items()
            ):
                raise CheckpointError(f"{where}: data.{split}.{name}: expected {{subject id: sha256}}; the card is damaged")


def _validate(schema: ParamsSchema, raw: Any, where: str) -> dict[str, Any]:
    """:func:`validate_params` where JSON null is allowed for the fields whose default is None."""
    if isinstance(raw, Mapping):
        raw = {k: v for k, v in raw.items() if not (v is None and k in schema and schema[k].default is None)}
    return validate_params(schema, raw, where, noun="card field", error=CheckpointError)


def _check_settings(values: Mapping[str, Any], where: str) -> None:
    """Per-dataset ``subjects`` (a count or "all") and ``mix`` weights (> 0), one per card dataset."""
    for key in ("subjects", "mix"):
        if set(values[key]) != set(values["datasets"]):
            raise CheckpointError(f"{where}: {key} names {sorted(values[key])} but the card's datasets are "
                                  f"{sorted(values['datasets'])}; the card is damaged")
    for name, count in values["subjects"].items():
        if count != "all" and not (isinstance(count, int) and not isinstance(count, bool) and count > 0):
            raise CheckpointError(f"{where}: subjects.{name}: expected a count or \"all\", got {count!r}")
    for name, weight in values["mix"].items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
            raise CheckpointError(f"{where}: mix.{name}: expected a weight > 0, got {weight!r}")


def card_from_dict(raw: Any, where: str) -> ModelCard:
    """A :class:`ModelCard` from parsed JSON, every field checked; ``where`` names the file in errors."""
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{where}: a model card is a JSON object, got {type(raw).__name__}; "
                              "give the card.json `mskbench train` wrote")
    version = raw.get("version")
    if version != CARD_VERSION:
        raise CheckpointError(f"{where}: model card version {version!r} is not supported (this mskbench reads "
                              f"version {CARD_VERSION}); retrain with this mskbench or upgrade it")
    table = f"{where}: card"
    values = _validate(_CARD_SCHEMA, raw, table)
    base = _validate(_BASE_SCHEMA, values["base"], f"{table}.base")
    prompt = _validate(_PROMPT_SCHEMA, values["prompt"], f"{table}.prompt")
    _check_data(values["data"], values["datasets"], where)
    _check_settings(values, where)
    if values["best_epoch"] > values["epochs_run"]:
        raise CheckpointError(f"{where}: best_epoch {values['best_epoch']} is after epochs_run "
                              f"{values['epochs_run']}; the card is damaged")
    return ModelCard(**{**values, "base": BaseModel(**base), "prompt": PromptSetting(**prompt)})


def read_card(path: Path | str) -> ModelCard:
    """The card at ``path``, validated; any problem is one :class:`CheckpointError` line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{path}: model card not found; `mskbench train` writes it as OUT/{CARD_NAME}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: cannot read the model card ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: model card is not valid JSON ({exc.msg} at line {exc.lineno}); "
                              "restore the card.json `mskbench train` wrote") from None
    return card_from_dict(raw, str(path))


def card_for_checkpoint(checkpoint: Path | str) -> ModelCard | None:
    """The card written for ``checkpoint`` (see the module docstring), or None when it has none."""
    from mskbench.segmenters.checkpoints import sha256_file

    checkpoint = Path(checkpoint).expanduser()
    candidate = checkpoint.parent / CARD_NAME
    if not candidate.is_file():
        return None
    card = read_card(candidate)
    if card.checkpoint_file != checkpoint.name:
        return None
    if checkpoint.is_file() and sha256_file(checkpoint) != card.checkpoint_sha256:
        raise CheckpointError(f"{checkpoint}: its sha256 differs from the one in {candidate}; the card was written "
                              "for other weights: retrain, or remove the stale card")
    return card

"""Training recipes: the TOML file `mskbench train` reads, validated like a suite (docs/training.md).

Every table is declared with :class:`~mskbench.params.Param` and checked by
:func:`~mskbench.params.validate_params`, so a typo gets the suite's
did-you-mean, a wrong type or a value out of range names its key path, and
everything is checked before any data is read or any model is built. The
``[[datasets]]`` entries take the suite's dataset keys (plugin, params,
labels, merge, slice_axis, preprocess), so a model is trained on exactly the
slices and labels a suite evaluates.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mskbench.errors import SuiteError
from mskbench.params import Param, ParamsSchema, validate_params
from mskbench.prompting.jitter import RESOLUTIONS
from mskbench.suite import DATASET_SCHEMA, DEVICE, MAX_SEED, DatasetEntry
from mskbench.suite import _interpolate as interpolate
from mskbench.training.card import TRAINS
from mskbench.training.losses import LOSSES

#: base model plugins `mskbench train` can start from: the SAM-family segmenters (segment_anything, sam2)
BASE_PLUGINS: tuple[str, ...] = ("sam", "medsam", "samri", "sam2")
PROMPT_KINDS: tuple[str, ...] = ("box", "box+point", "point")

TOP_SCHEMA: ParamsSchema = {
    "recipe": Param("dict", {}),
    "base": Param("dict"),
    "train": Param("dict", {}),
    "prompt": Param("dict", {}),
    "datasets": Param("list", items="dict", min_items=1),
}
RECIPE_SCHEMA: ParamsSchema = {
    "name": Param("str", None, help="recorded on the card (default: the file's stem)", pattern=r".*\S.*"),
    "seed": Param("int", 0, minimum=0, maximum=MAX_SEED, help="seeds subject subsets, sampling, shifts, init"),
    "device": DEVICE,
}
BASE_SCHEMA: ParamsSchema = {
    "plugin": Param("str", choices=BASE_PLUGINS, help="the model plugin whose architecture and input convention train"),
    "params": Param("dict", {}, help="the plugin's params, as in a suite's [[models]] entry"),
    "checkpoint": Param("path", None, help="weights to start from (default: the plugin's official file)"),
    "init": Param("str", "checkpoint", choices=("checkpoint", "random"),
                  help="checkpoint: start from weights; random: the upstream builder's random initialisation"),
    "architecture": Param("str", "full", choices=("full", "reduced"),
                          help="reduced: a small image encoder (random init only; SAM and SAM 2) for CPU smoke runs and tests"),
}
TRAIN_SCHEMA: ParamsSchema = {
    "mode": Param("str", "decoder", choices=TRAINS, help="what trains: decoder, full or adapters"),
    "epochs": Param("int", 10, minimum=0, maximum=100000,
                    help="0: no training; model.pt is the base model as training starts from it (a grid's base)"),
    "batch_size": Param("int", 4, minimum=1),
    "accumulate": Param("int", 1, minimum=1, help="optimizer step every N batches"),
    "lr": Param("float", 1e-4, minimum=0.0, maximum=1.0),
    "weight_decay": Param("float", 0.01, minimum=0.0),
    "warmup_steps": Param("int", 0, minimum=0, help="linear warm-up over this many optimizer steps"),
    "restart_epochs": Param("int", 10, minimum=1, help="epochs to the first warm restart of the cosine schedule"),
    "restart_mult": Param("int", 1, minimum=1, help="each cosine period is this many times the last"),
    "min_lr": Param("float", 0.0, minimum=0.0),
    "grad_clip": Param("float", 1.0, minimum=0.0, help="max gradient norm (0: no clipping)"),
    "precision": Param("str", "fp32", choices=("fp32", "bf16"), help="bf16: autocast on CUDA only"),
    "patience": Param("int", 0, minimum=0, help="stop after N epochs without a better val Dice (0: never)"),
    "min_delta": Param("float", 0.0, minimum=0.0, help="what counts as better: val Dice above best + min_delta"),
    "loss": Param("str", "dice+bce", choices=tuple(LOSSES)),
    "adapter_ratio": Param("float", 0.25, minimum=0.01, maximum=1.0, help="adapters: bottleneck width / block width"),
    "embedding_cache": Param("path", None, help="decoder: embedding cache folder (default OUT/embeddings)"),
    "embedding_cache_max_gb": Param("float", 20.0, minimum=0.001),
}
PROMPT_SCHEMA: ParamsSchema = {
    "kind": Param("str", "box", choices=PROMPT_KINDS),
    "max_shift": Param("float", 0.0, minimum=0.0, maximum=1024.0, help="each box side moves out by U[0, max_shift]"),
    "shift_space": Param("str", "model_1024", choices=RESOLUTIONS,
                         help="model_1024: pixels of the 1024 model input (MedSAM's training); original: the slice's"),
}
_SUITE_ONLY = ("split", "limit_subjects")
TRAIN_DATASET_SCHEMA: ParamsSchema = {
    **{key: param for key, param in DATASET_SCHEMA.items() if key not in _SUITE_ONLY},
    "subjects": Param("str", "all", pattern=r"all|[1-9][0-9]*",
                      help='training subjects: a count such as 5, 10, 20, 40, or "all"'),
    "weight": Param("float", 1.0, minimum=0.0, help="share of each epoch's samples (with several datasets)"),
    "train_split": Param("str", "train", choices=("train", "val", "test", "all")),
    "val_split": Param("str", "val", choices=("train", "val", "test", "all")),
    "slices_per_subject": Param("int", None, minimum=1, help="evenly spaced labelled slices per subject (default all)"),
}


@dataclass(frozen=True)
class TrainDataset:
    """One ``[[datasets]]`` entry: the suite's dataset entry plus how many subjects and what share of samples."""

    entry: DatasetEntry
    subjects: int | str  # a count or "all"
    weight: float
    train_split: str
    val_split: str
    slices_per_subject: int | None


@dataclass(frozen=True)
class Recipe:
    name: str
    seed: int
    device: str
    base: dict[str, Any]
    train: dict[str, Any]
    prompt: dict[str, Any]
    datasets: tuple[TrainDataset, ...]
    config: dict[str, Any]  # the TOML as read: recorded on the card, hashed
    path: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.config, sort_keys=True).encode()).hexdigest()


def _table(schema: ParamsSchema, table: Any, where: str) -> dict[str, Any]:
    return validate_params(schema, table, where, noun="key", error=SuiteError)


def _dataset(table: Any, i: int) -> TrainDataset:
    where = f"datasets[{i}]"
    raw = dict(table) if isinstance(table, dict) else table
    if isinstance(raw, dict) and isinstance(raw.get("subjects"), int) and not isinstance(raw["subjects"], bool):
        raw["subjects"] = str(raw["subjects"])  # a count, checked by the pattern like "all"
    values = _table(TRAIN_DATASET_SCHEMA, raw, where)
    subjects = "all" if values["subjects"] == "all" else int(values["subjects"])
    entry = DatasetEntry(
        name=values["name"] or values["plugin"],
        plugin=values["plugin"],
        params=values["params"],
        slice_axis=values["slice_axis"],
        labels=None if values["labels"] is None else tuple(values["labels"]),
        merge={k: tuple(v) for k, v in values["merge"].items()},
        preprocess=values["preprocess"],
    )
    return TrainDataset(entry, subjects, values["weight"], values["train_split"], values["val_split"],
                        values["slices_per_subject"])


def parse_recipe(config: dict[str, Any], path: str, name: str) -> Recipe:
    """A validated :class:`Recipe` from the parsed TOML; ``name`` is the default recipe name."""
    top = _table(TOP_SCHEMA, config, "")
    head = _table(RECIPE_SCHEMA, top["recipe"], "recipe")
    base = _table(BASE_SCHEMA, top["base"], "base")
    train = _table(TRAIN_SCHEMA, top["train"], "train")
    prompt = _table(PROMPT_SCHEMA, top["prompt"], "prompt")
    if base["architecture"] == "reduced" and base["init"] != "random":
        raise SuiteError('base.architecture = "reduced" has no published weights; set init = "random" with it')
    if base["init"] == "random" and base["checkpoint"] is not None:
        raise SuiteError('base.checkpoint is given but init = "random" ignores it; remove one of them')
    datasets = tuple(_dataset(table, i) for i, table in enumerate(top["datasets"]))
    names = [d.entry.name for d in datasets]
    for i, dataset_name in enumerate(names):
        if dataset_name in names[:i]:
            raise SuiteError(f"datasets[{i}]: name '{dataset_name}' is used twice; give each entry a unique name")
    if not any(d.weight > 0 for d in datasets):
        raise SuiteError("datasets: every weight is 0; give at least one dataset a weight > 0")
    return Recipe(head["name"] or name, head["seed"], head["device"], base, train, prompt, datasets, config, path)


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file; every problem is one :class:`SuiteError` line."""
    path = Path(path)
    if not path.is_file():
        raise SuiteError(f"{path}: recipe file not found{' (it is a directory)' if path.is_dir() else ''}; "
                         "give the .toml recipe (see recipes/)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: TOML syntax error: {exc}") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not a UTF-8 text file; a recipe is a .toml file") from None
    # ${VAR} from the environment and ${RECIPE_DIR}, as suites interpolate theirs (dataset roots stay out of the file)
    config = interpolate(raw, "", {**os.environ, "RECIPE_DIR": str(path.resolve().parent)})
    return parse_recipe(config, str(path.resolve()), path.stem)

"""The suite a grid writes: every run (and the base model) on the held-out split of the recipes' datasets.

Datasets are the recipes' ``[[datasets]]`` entries with their suite keys only (plugin, params, labels, merge,
preprocess, slice_axis) and ``split`` from the grid's ``[evaluate]``; ``${RECIPE_DIR}`` becomes the recipe's
folder, other ``${VAR}`` stay for the suite to read from the environment. Each run is a model entry of the
base plugin with ``checkpoint = "${SUITE_DIR}/<run>/model.pt"`` (the suite sits in the grid's OUT, so the
folder can be moved whole) and ``on_missing_checkpoint = "error"``. The base model joins as ``base`` unless
``[evaluate] base = false``: with its own checkpoint, or, randomly initialised, as the grid's untrained run
``base`` (``${SUITE_DIR}/base/model.pt``, see :func:`~mskbench.training.grid.untrained_base`), so `mskbench gate
--baseline base` can ask whether a run beats it. The leakage guard then checks every run's card against the
evaluated split when the suite is planned.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mskbench.errors import SuiteError, UserError
from mskbench.output_paths import make_folder, write_text
from mskbench.plugin_manager import Registry
from mskbench.suite import DATASET_SCHEMA, load_suite
from mskbench.training.card import MODEL_NAME
from mskbench.training.grid import BASE_RUN, Grid
from mskbench.training.toml_text import document

SUITE_NAME = "suite.toml"
DEFAULT_PROMPTERS = ({"name": "gt_box", "plugin": "gt_box"},)
_SUITE_DATASET_KEYS = tuple(k for k in DATASET_SCHEMA if k not in ("split", "limit_subjects"))


def _recipe_dir(item: Any, folder: str) -> Any:
    if isinstance(item, str):
        return item.replace("${RECIPE_DIR}", folder)
    if isinstance(item, Mapping):
        return {k: _recipe_dir(v, folder) for k, v in item.items()}
    if isinstance(item, list):
        return [_recipe_dir(v, folder) for v in item]
    return item


def _datasets(grid: Grid) -> list[dict[str, Any]]:
    """The datasets of every run, once each; a grid that changes what a dataset name means is refused."""
    by_name: dict[str, dict[str, Any]] = {}
    for run in grid.runs:
        for entry in run.recipe.get("datasets", []):
            name = entry.get("name") or entry.get("plugin")
            table = {"name": name, **{k: entry[k] for k in _SUITE_DATASET_KEYS if k in entry and k != "name"}}
            if by_name.setdefault(name, table) != table:
                raise SuiteError(f"{grid.path}: run {run.name} changes dataset '{name}' (plugin, params or labels); "
                                 "the suite evaluates one dataset per name: vary subjects or weight, or give the "
                                 "other data another name")
    split = grid.evaluate["split"]
    return [_recipe_dir({**table, "split": split}, str(grid.recipe_path.parent)) for table in by_name.values()]


def _model(base: Mapping[str, Any], folder: str) -> dict[str, Any]:
    entry = {"plugin": base["plugin"]}
    if base.get("params"):
        entry["params"] = _recipe_dir(base["params"], folder)
    return entry


def _models(grid: Grid) -> list[dict[str, Any]]:
    folder = str(grid.recipe_path.parent)
    base = grid.base.get("base", {})
    models = []
    if grid.evaluate["base"] and base.get("init", "checkpoint") != "random":
        models.append({"name": BASE_RUN, **_model(base, folder),
                       **({"checkpoint": _recipe_dir(base["checkpoint"], folder)} if base.get("checkpoint") else {})})
    for run in grid.trained:
        models.append({"name": run.name, **_model(run.recipe["base"], folder),
                       "checkpoint": f"${{SUITE_DIR}}/{run.name}/{MODEL_NAME}", "on_missing_checkpoint": "error"})
    return models


def suite_text(grid: Grid) -> str:
    suite: dict[str, Any] = {"name": grid.name, "device": grid.evaluate["device"]}
    if grid.evaluate["seeds"] is not None:
        suite["seeds"] = grid.evaluate["seeds"]
    header = (f"Written by `mskbench train --grid {grid.path}`: its {len(grid.runs)} runs on the "
              f"'{grid.evaluate['split']}' split.\nmskbench run {SUITE_NAME} (from any folder; results go beside it)")
    tables: dict[str, dict[str, Any]] = {"suite": suite, "output": {"db": "${SUITE_DIR}/results.duckdb"}}
    if grid.evaluate["metrics"] is not None:
        tables["metrics"] = {"names": grid.evaluate["metrics"]}
    if not grid.evaluate["biomarkers"]:
        tables["biomarkers"] = {"enabled": False}
    return document(
        tables,
        {"datasets": _datasets(grid), "models": _models(grid),
         "prompters": list(grid.evaluate["prompters"] or DEFAULT_PROMPTERS)},
        header,
    )


def write_suite(grid: Grid, out: Path, registry: Registry) -> Path:
    """Write ``out/suite.toml`` and check it as a suite (keys, types, prompter plugins); removed if it fails."""
    path = make_folder(out, "--out") / SUITE_NAME
    write_text(path, suite_text(grid), "--out")
    try:
        suite = load_suite(path)
        for i, prompter in enumerate(suite.prompters):
            registry.get("prompter", prompter.plugin, f"{grid.path}: evaluate.prompters[{i}]")
    except UserError:
        path.unlink()
        raise
    return path

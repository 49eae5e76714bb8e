"""Recipes on small phantom knees, trained on the tiny random SAM of sam_family_tiny (swapped in for ViT-B)."""

from __future__ import annotations

import copy
import json

import pytest

from sam_family_tiny import tiny_sam

#: 10 knees at ~1 mm in-plane (about 98 x 99 pixels per sagittal slice, 3.2 mm apart): 7 train, 2 val, 1 test
PHANTOM = {"anatomy": "knee", "subjects": 10, "seed": 3, "pixel_spacing_min": 0.9, "pixel_spacing_max": 1.1,
           "supersample": 1}
RECIPE = {
    "recipe": {"seed": 0, "device": "cpu"},
    "base": {"plugin": "sam", "init": "random"},
    "train": {"mode": "decoder", "epochs": 2, "batch_size": 4, "lr": 1e-3, "restart_epochs": 50},
    "prompt": {"kind": "box", "max_shift": 20},
    "datasets": [{"name": "knee", "plugin": "phantom", "params": PHANTOM, "labels": ["femur", "tibia"],
                  "subjects": 2, "slices_per_subject": 2}],
}


def recipe_config(**tables) -> dict:
    """:data:`RECIPE` with some tables' keys replaced, e.g. ``train={"mode": "full"}``."""
    config = copy.deepcopy(RECIPE)
    for table, values in tables.items():
        if table == "dataset":
            config["datasets"][0].update(values)
        else:
            config[table].update(values)
    return config


def toml_value(value) -> str:
    """A TOML literal for the JSON-like values of a recipe (JSON strings are valid TOML basic strings)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def write_recipe(path, config) -> str:
    lines = []
    for table, values in config.items():
        for entry in values if isinstance(values, list) else [values]:
            lines.append(f"[[{table}]]" if isinstance(values, list) else f"[{table}]")
            lines.extend(f"{k} = {toml_value(v)}" for k, v in entry.items())
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def recipe(**tables):
    from mskbench.training.recipe import parse_recipe

    return parse_recipe(recipe_config(**tables), "test.toml", "test")


@pytest.fixture
def tiny_vit_b(monkeypatch, tmp_path):
    """segment_anything's ViT-B builder swapped for the tiny SAM (random init happens in the builder)."""
    from segment_anything import sam_model_registry

    monkeypatch.setitem(sam_model_registry, "vit_b", lambda checkpoint=None: tiny_sam(seed=0))
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path / "checkpoints"))

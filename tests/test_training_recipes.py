"""The shipped recipes/: every recipe validates, and the tiny phantom variants train on CPU from the command line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mskbench.cli.main import main
from sam_family_tiny import single_torch_thread  # noqa: F401  (autouse fixture)

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
SINGLE = sorted(p for p in RECIPES.glob("*.toml") if "grid" not in p.name)


@pytest.mark.parametrize("path", SINGLE, ids=lambda p: p.stem)
def test_every_shipped_recipe_validates(path, monkeypatch):
    from mskbench.training.recipe import load_recipe

    monkeypatch.setenv("OAIZIB_CM_ROOT", "/data/oaizib")
    monkeypatch.setenv("SPIDER_ROOT", "/data/spider")
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    if path.stem.endswith("_tiny"):
        assert recipe.base["architecture"] == "reduced" and recipe.device == "cpu"
        assert all(d.entry.plugin == "phantom" for d in recipe.datasets)
    else:
        assert (RECIPES / f"{path.stem}_tiny.toml").exists()  # every recipe ships its phantom variant


@pytest.mark.parametrize("grid", sorted(RECIPES.glob("*grid*.toml")), ids=lambda p: p.stem)
def test_grid_files_name_existing_recipes_and_keys(grid, monkeypatch):
    from mskbench.training.recipe import load_recipe

    monkeypatch.setenv("OAIZIB_CM_ROOT", "/data/oaizib")
    data = tomllib.loads(grid.read_text())
    base = load_recipe(RECIPES / data["recipe"])
    names = {d.entry.name for d in base.datasets}
    for key, values in data["grid"].items():
        table, *rest = key.split(".")
        assert values and (table in ("train", "prompt", "base", "recipe") or (table == "datasets" and rest[0] in names))


@pytest.mark.parametrize("name", ["samri_decoder_tiny", "source_study_tiny"])
def test_the_tiny_recipes_train_from_the_command_line(name, tmp_path, capsys):
    assert main(["train", str(RECIPES / f"{name}.toml"), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "card:" in out and (tmp_path / "out" / "model.pt").exists() and (tmp_path / "out" / "card.json").exists()

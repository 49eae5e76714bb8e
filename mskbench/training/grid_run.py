"""`mskbench train --grid GRID.toml [--out DIR]`: check every run, write the suite, train what is unfinished.

:func:`recipe_trainer` is the one place that connects the grid to the trainer (``mskbench.training.recipe``
and ``mskbench.training.trainer``); everything else works on the injected :class:`~mskbench.training.grid.Trainer`,
so the grid logic is tested with a stand-in that writes a card.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mskbench.output_paths import writable_folder
from mskbench.plugin_manager import Registry, get_registry
from mskbench.training.card import CARD_NAME
from mskbench.training.grid import Grid, Trainer, check_runs, load_grid, run_grid
from mskbench.training.grid_suite import write_suite


@dataclass(frozen=True)
class GridOutcome:
    suite: Path
    cards: dict[str, Path]  # run name -> its card


def recipe_trainer(grid: Grid) -> Trainer:
    """The real trainer: each run's recipe read as `mskbench train RECIPE.toml` reads the grid's base recipe.

    MERGE POINT (wt-train): uses the trainer branch's ``parse_recipe`` (mskbench/training/recipe.py) and
    ``train`` (mskbench/training/trainer.py); ``${VAR}`` and ``${RECIPE_DIR}`` are resolved as
    ``load_recipe`` resolves them, so a run's card records the same ``recipe`` a single-recipe run would.
    """
    from mskbench.suite import _interpolate
    from mskbench.training.recipe import parse_recipe
    from mskbench.training.trainer import train

    variables = {**os.environ, "RECIPE_DIR": str(grid.recipe_path.parent)}

    def parsed(recipe: dict[str, Any]) -> Any:
        return parse_recipe(_interpolate(recipe, "", variables), str(grid.recipe_path), grid.recipe_path.stem)

    def train_one(recipe: dict[str, Any], out_dir: Path, resume: bool) -> Path:
        train(parsed(recipe), out_dir, resume=resume)
        return out_dir / CARD_NAME

    return Trainer(check=lambda recipe, where: parsed(recipe).config, train=train_one)


def train_grid(grid_path: str | Path, out: str | Path | None = None, *, trainer: Trainer | None = None,
               registry: Registry | None = None, report: Callable[[str], None] = print) -> GridOutcome:
    """Every check before the first run (grid keys, each run's recipe, --out, the suite), then the runs."""
    grid = load_grid(grid_path)
    trainer = trainer or recipe_trainer(grid)
    out_dir = writable_folder(Path("trained") / grid.name if out is None else Path(out), "--out")
    checked = check_runs(grid, trainer)
    suite = write_suite(grid, out_dir, registry or get_registry())
    cards = run_grid(grid, out_dir, trainer, checked, report)
    report(f"suite: {suite} ({len(cards)} runs)")
    return GridOutcome(suite, cards)

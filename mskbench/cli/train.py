"""`mskbench train RECIPE.toml`: fine-tune a SAM-family model from a recipe into a checkpoint and its card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mskbench.cli.main import app
from mskbench.errors import UserError


@app.command()
def train(
    recipe: Annotated[Path | None, typer.Argument(help="Recipe TOML file, e.g. recipes/samri_decoder_tiny.toml.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder: model.pt, card.json, metrics.parquet "
                                                  "(default: trained/<recipe name>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue a killed run in --out after its last completed epoch.")] = False,
    grid: Annotated[Path | None, typer.Option(help="Ablation grid TOML: train every combination into --out/<run> and "
                                                   "write --out/suite.toml (docs/training.md).")] = None,
) -> None:
    """Train a model from a recipe (docs/training.md); the checkpoint loads in a suite with `checkpoint = ...`."""
    if grid is not None:
        if recipe is not None or resume:
            raise UserError("--grid trains the grid's own recipe and resumes by itself: give either RECIPE or "
                            "--grid GRID.toml, without --resume")
        from mskbench.training.grid_run import train_grid
        train_grid(grid, out, report=typer.echo)
        return
    if recipe is None:
        raise UserError("give a recipe (mskbench train RECIPE.toml) or a grid (mskbench train --grid GRID.toml)")
    from mskbench.training.recipe import load_recipe
    from mskbench.training.trainer import train as run_training

    loaded = load_recipe(recipe)
    outcome = run_training(loaded, out or Path("trained") / loaded.name, resume=resume)
    if outcome.card is None:  # a torchrun rank other than 0
        return
    card = outcome.card
    typer.echo(f"model: {outcome.out_dir / card.checkpoint_file}")
    typer.echo(f"card:  {outcome.out_dir / 'card.json'}")
    typer.echo(f"best epoch {card.best_epoch} of {card.epochs_run}: val Dice {card.best_val_dice:.4f} "
               f"(untrained {card.untrained_val_dice:.4f})")

"""`mskbench train RECIPE.toml`: fine-tune a SAM-family model from a recipe into a checkpoint and its card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mskbench.cli.main import app


@app.command()
def train(
    recipe: Annotated[Path, typer.Argument(help="Recipe TOML file, e.g. recipes/samri_decoder_tiny.toml.")],
    out: Annotated[Path | None, typer.Option(help="Output folder: model.pt, card.json, metrics.parquet "
                                                  "(default: trained/<recipe name>).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue a killed run in --out after its last completed epoch.")] = False,
) -> None:
    """Train a model from a recipe (docs/training.md); the checkpoint loads in a suite with `checkpoint = ...`."""
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

"""`mskbench train`: recipes, trainer and model cards (docs/training.md)."""

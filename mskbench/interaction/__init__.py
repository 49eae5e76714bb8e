"""Interactive evaluation (DESIGN §11): click placement, the `clicks` prompter, interaction metrics."""

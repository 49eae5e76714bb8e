"""`mskbench biomarkers` commands."""

import typer

app = typer.Typer(help="biomarkers commands.", no_args_is_help=True)

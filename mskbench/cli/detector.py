"""`mskbench detector` commands."""

import typer

app = typer.Typer(help="detector commands.", no_args_is_help=True)

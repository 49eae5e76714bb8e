"""`python -m mskbench` runs the CLI."""

from mskbench.cli.main import run

run()

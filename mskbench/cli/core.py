"""Core commands attached to the top-level app: run, validate, plugins, export."""

from mskbench.cli.main import app  # noqa: F401

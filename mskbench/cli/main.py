"""The `mskbench` command: one typer app with a sub-app per area.

User errors (:class:`mskbench.errors.UserError`) become one line on stderr and
exit code 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import sys

import typer

from mskbench.cli import biomarkers, data, detector, metrics, models
from mskbench.errors import UserError

# typer bundles its own click in recent releases; find the base class wherever it lives.
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

app = typer.Typer(
    help="Benchmark segmentation foundation models on musculoskeletal MRI.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _options(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log progress details (INFO) to stderr."),
) -> None:
    """Benchmark segmentation foundation models on musculoskeletal MRI."""
    logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)


app.add_typer(data.app, name="data")
app.add_typer(metrics.app, name="metrics")
app.add_typer(models.app, name="models")
app.add_typer(detector.app, name="detector")
app.add_typer(biomarkers.app, name="biomarkers")


def _register_core_commands() -> None:
    """Import the modules whose commands attach to `app` directly."""
    from mskbench.cli import analysis, core, predict, train  # noqa: F401  (register run, validate, stats, report, predict, train, ...)


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the process exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register_core_commands()
    try:
        result = app(args=argv, standalone_mode=False)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except _CLICK_ERROR as exc:  # usage errors: unknown option, missing argument, bad value
        exc.show()
        return 2
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())

"""Core commands on the top-level app: run, validate, plugins, export, runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from mskbench.cli.main import app
from mskbench.errors import UserError

DEFAULT_DB = "results/mskbench.duckdb"


def _plan(suite_path: Path):
    from mskbench.plan import build_plan
    from mskbench.plugin_manager import get_registry
    from mskbench.suite import load_suite

    return build_plan(load_suite(suite_path), get_registry())


@app.command()
def validate(suite: Annotated[Path, typer.Argument(help="Suite TOML file.")]) -> None:
    """Check a suite (keys, plugins, params, checkpoints, prompt kinds) without running it."""
    plan = _plan(suite)
    typer.echo(f"{suite}: valid; {len(plan.cells)} cells ({len(plan.skipped)} skipped: missing checkpoints)")


@app.command()
def run(
    suite: Annotated[Path, typer.Argument(help="Suite TOML file, e.g. suites/zero_shot.toml.")],
    db: Annotated[str | None, typer.Option(help="DuckDB results file (default: the suite's [output] db).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the last unfinished run of this suite in --db.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Print the cells, subjects and slice count; run nothing.")] = False,
    limit_subjects: Annotated[int | None, typer.Option(help="At most N subjects per dataset.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (default: the suite's device).")] = None,
    replay_prompts: Annotated[str | None, typer.Option(help="Re-use the prompts recorded by run RUN_ID.")] = None,
    skip_bad_subjects: Annotated[bool | None, typer.Option(help="Record unreadable subjects as skipped and go on.")] = None,
    executor: Annotated[str | None, typer.Option(help="local, processes or ray (default: the suite's executor; docs/scaling.md).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes or Ray actors (default: the CPU count).")] = None,
    ray_address: Annotated[str | None, typer.Option(help="Join this Ray cluster (host:port) instead of starting Ray here.")] = None,
) -> None:
    """Evaluate every dataset × model × prompter × seed cell of SUITE."""
    from mskbench.runner import RunOptions, run_plan
    from mskbench.summary import dry_run_report, headline_metric, print_summary

    from mskbench.params import check_value
    from mskbench.execution.executors import check_workers
    from mskbench.suite import DEVICE, EXECUTOR

    if limit_subjects is not None and limit_subjects < 1:
        raise UserError(f"--limit-subjects {limit_subjects}: must be at least 1")
    if device is not None:
        check_value(DEVICE, device, "--device", UserError)  # the suite's `device` rule, one message
    if executor is not None:
        check_value(EXECUTOR, executor, "--executor", UserError)
    check_workers(workers, "--workers")
    plan = _plan(suite)
    console = Console()
    if dry_run:
        dry_run_report(plan, limit_subjects, console)
        return
    db_path = db or plan.suite.output["db"]
    options = RunOptions(
        db=db_path, resume=resume, limit_subjects=limit_subjects, device=device,
        replay_prompts=replay_prompts, skip_bad_subjects=skip_bad_subjects,
        executor=executor, workers=workers, ray_address=ray_address,
    )
    result = run_plan(plan, options)
    print_summary(db_path, result.run_id, console, headline_metric(plan.suite.metric_names))
    if replay_prompts:
        from mskbench.replay_divergence import divergence_report
        from mskbench.store import Store

        with Store.open_for_reading(db_path) as store:
            for line in divergence_report(store, result.run_id, replay_prompts):
                typer.echo(line)
    if result.retried:
        typer.echo(f"{len(result.retried)} subject(s) were retried after a worker died; "
                   "any still failing are in subject_status as failed, and --resume tries them again")
    skipped_models = sorted({cell.model for cell in plan.cells if cell.cell_id in result.skipped_cells})
    if skipped_models:
        typer.echo(f"skipped models (their cells are in the database as skipped, with the reason): {', '.join(skipped_models)}")


@app.command()
def plugins(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """List every discovered plugin, its distribution, and load errors."""
    from mskbench.plugin_manager import get_registry

    rows = get_registry().rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title="mskbench plugins")
    for column in ("kind", "name", "distribution", "version", "description / error"):
        table.add_column(column)
    for row in rows:
        text = f"[red]{row['error']}[/]" if row["error"] else row["description"]
        table.add_row(row["kind"] or "?", row["name"], row["distribution"], row["version"] or "", text)
    Console().print(table)


@app.command()
def export(
    db: Annotated[Path, typer.Option(help="DuckDB results file.")],
    table: Annotated[str, typer.Option(help="Table name, e.g. subject_metrics.")],
    out: Annotated[Path, typer.Option(help="Output file.")],
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv.")] = "parquet",
) -> None:
    """Export one table of a results database to Parquet or CSV."""
    from mskbench.output_paths import writable_file
    from mskbench.store import Store

    if fmt not in ("parquet", "csv"):
        raise UserError(f"--format {fmt}: use parquet or csv")
    writable_file(out, "--out", f"{table}.{fmt}")
    with Store.open_for_reading(db) as store:
        count = store.export(table, out, fmt)
    typer.echo(f"wrote {count} rows of {table} to {out}")


@app.command()
def runs(db: Annotated[Path, typer.Option(help="DuckDB results file.")] = Path(DEFAULT_DB)) -> None:
    """List the runs recorded in a results database."""
    from mskbench.store import Store

    with Store.open_for_reading(db) as store:
        if "runs" not in store.tables():
            raise UserError(f"{db}: not an mskbench results database (no table runs); pass the --db written by `mskbench run`")
        rows = store.execute(
            "SELECT run_id, suite_name, status, started_at, finished_at FROM runs ORDER BY started_at"
        ).fetchall()
    table = Table(title=str(db))
    for column in ("run_id", "suite", "status", "started", "finished"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row))
    Console().print(table)

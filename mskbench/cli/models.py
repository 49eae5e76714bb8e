"""`mskbench models`: which model checkpoints are where, and fetching the official ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

app = typer.Typer(
    help="Model checkpoints: list their status (`mskbench models [--json]`) and fetch them.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def _rows() -> list[dict[str, Any]]:
    from mskbench.segmenters.checkpoints import checkpoint_status, load_registry

    rows = []
    for key, spec in load_registry().items():
        status, path = checkpoint_status(key)
        rows.append(
            {
                "name": key,
                "plugin": spec.plugin,
                "arch": spec.arch,
                "status": status,
                "path": str(path),
                "url": spec.url,
                "direct_download": spec.direct_download,
                "sha256": spec.sha256,
                "size": spec.size,
                "obtain": spec.obtain,
                "origin": spec.origin,
            }
        )
    return rows


@app.callback()
def models(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list (name, plugin, status, path, url, ...)."),
) -> None:
    """List every known checkpoint with its status: found, missing, hash_mismatch or unknown_hash."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Column, Table

    from mskbench.segmenters.checkpoints import CHECKPOINTS_ENV, checkpoint_dir

    rows = _rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    console = Console()
    console.print(f"Looking in {checkpoint_dir()} (set {CHECKPOINTS_ENV} to change, or `checkpoint = \"PATH\"` per model)")
    # names are what `mskbench models fetch NAME` takes: never shortened; the path folds instead
    table = Table(Column("name", no_wrap=True, min_width=max(len(row["name"]) for row in rows)), "plugin", "status", "size")
    table.add_column("path", overflow="fold")
    colours = {"found": "green", "missing": "yellow", "hash_mismatch": "red", "unknown_hash": "cyan"}
    for row in rows:
        size = f"{row['size'] / 1e6:.0f} MB" if row["size"] else "?"
        status = f"[{colours[row['status']]}]{row['status']}[/]"
        table.add_row(row["name"], row["plugin"], status, size, row["path"])
    console.print(table)
    if any(row["status"] == "missing" for row in rows):
        console.print("Fetch a missing one with `mskbench models fetch NAME`.")


@app.command("fetch")
def fetch(
    name: str = typer.Argument(..., help="Checkpoint name from `mskbench models`, e.g. sam_vit_b."),
    dest: Path | None = typer.Option(None, "--dest", help="Folder to put it in (default: the checkpoint folder)."),
    url: str | None = typer.Option(None, "--url", help="Download from this mirror instead of the official URL."),
    sha256: str | None = typer.Option(
        None, "--sha256", help="Expected sha256 (default: the official one; needed for files the registry has none for)."
    ),
) -> None:
    """Download a checkpoint from its official URL, resuming a partial download, and verify its sha256."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from mskbench.output_paths import writable_folder
    from mskbench.segmenters.checkpoints import CHECKPOINTS_ENV, checkpoint_dir, load_registry
    from mskbench.segmenters.download import fetch_checkpoint

    spec = load_registry().get(name)  # an unknown name is fetch_checkpoint's message
    folder = dest.expanduser() if dest is not None else checkpoint_dir()
    if spec is not None and not (folder / spec.filename).is_file():  # a present file is only verified
        writable_folder(folder, "--dest" if dest is not None else f"checkpoint folder (${CHECKPOINTS_ENV} or --dest)")
    with Progress(
        TextColumn(f"[bold]{name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), transient=True
    ) as progress:
        task = progress.add_task("download", total=None)

        def on_progress(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        path = fetch_checkpoint(name, dest, url=url, sha256=sha256, on_progress=on_progress)
    typer.echo(f"{name}: {path}")

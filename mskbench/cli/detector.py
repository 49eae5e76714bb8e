"""`mskbench detector`: train and inspect the detectors behind the `yolo` prompter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mskbench.errors import PluginError

app = typer.Typer(help="Train and inspect YOLO detectors for the `yolo` prompter.", no_args_is_help=True)


def _json_object(text: str, option: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        example = '{"key": 1}'
        raise PluginError(f"{option}: not valid JSON ({exc.msg} at column {exc.colno}); e.g. '{example}'") from None
    if not isinstance(value, dict):
        raise PluginError(f"{option}: expected a JSON object such as '{{\"key\": 1}}', got {text!r}")
    return value


@app.command()
def train(
    dataset: Annotated[str, typer.Option("--dataset", help="Dataset plugin name (see `mskbench plugins`).")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the weights file and its JSON card.")],
    split: Annotated[str, typer.Option(help="Split to train on.")] = "train",
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = 50,
    imgsz: Annotated[int, typer.Option(min=32, help="Network input size (pixels, multiple of 32).")] = 256,
    batch: Annotated[int, typer.Option(min=1, help="Batch size.")] = 16,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
    params: Annotated[str, typer.Option(help="Dataset plugin params as a JSON object.")] = "{}",
    slice_axis: Annotated[str | None, typer.Option(help="Slice axis; default: the dataset's.")] = None,
    val_split: Annotated[str, typer.Option(help="Split used for validation metrics, if it has subjects.")] = "val",
    empty_slices: Annotated[bool, typer.Option(help="Also train on slices without any label.")] = True,
    train_args: Annotated[str, typer.Option(help="More ultralytics train arguments, JSON (lr0, mosaic, ...).")] = "{}",
) -> None:
    """Train a YOLOv8n detector (random init, offline) on a dataset split; one class per label."""
    from mskbench.output_paths import writable_folder
    from mskbench.plugin_manager import get_registry
    from mskbench.prompting.yolo_train import TrainConfig, train_detector

    writable_folder(out, "--out")  # before the training, not after it
    dataset_params = _json_object(params, "--params")
    extra = _json_object(train_args, "--train-args")
    if imgsz % 32:
        nearest = imgsz // 32 * 32 or 32
        raise PluginError(f"--imgsz {imgsz}: must be a multiple of 32 (the network stride), e.g. {nearest}")
    source = get_registry().create("dataset", dataset, dataset_params, where="--dataset")
    config = TrainConfig(epochs=epochs, imgsz=imgsz, batch=batch, seed=seed, device=device, val_split=val_split,
                         empty_slices=empty_slices, train_args=extra)
    trained = train_detector(source, dataset_name=dataset, split=split, out_dir=out, config=config,
                             dataset_params=dataset_params, slice_axis=slice_axis)
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in trained.card["metrics"].items() if k != "fitness")
    typer.echo(f"weights: {trained.weights}")
    typer.echo(f"card:    {trained.weights.with_suffix('.json')}")
    typer.echo(f"validation ({trained.card['validation']}): {metrics}")


@app.command()
def info(weights: Annotated[Path, typer.Argument(help="A detector .pt written by `mskbench detector train`.")]) -> None:
    """Check a detector file against its card and show what it detects."""
    from mskbench.prompting.yolo_weights import read_card

    card = read_card(weights)
    meta = card.meta
    typer.echo(f"{card.weights.name}: {meta['architecture']} trained on '{card.dataset}' split '{meta.get('split')}'")
    typer.echo(f"labels: {card.describe_labels()}")
    versions = meta.get("versions", {})
    typer.echo(f"imgsz {card.imgsz}, slice axis {meta.get('slice_axis')}, ultralytics {versions.get('ultralytics')}")
    typer.echo("metrics: " + ", ".join(f"{k} {v:.3f}" for k, v in meta.get("metrics", {}).items()))

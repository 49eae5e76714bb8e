"""One unit of work: (subject, model, that model's pending cells for the subject) -> records.

A unit holds plain values (the prepared subject, cells, their round-0
prompts) and :func:`run_unit` reads no files, touches no database and keeps
no global state, so a later executor can ship units to other processes. The
model object is passed in: it is built and owned by whoever runs the unit.
Round-0 prompts are made by the scheduler once per (subject, prompter, seed)
(:func:`mskbench.execution.prompts.initial_prompts`, or replayed), because
they never depend on the model and a detector prompter is costly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mskbench.data.preprocess import PreparedSubject
from mskbench.execution.gpu_memory import PeakGpuMemory
from mskbench.execution.prompts import PromptsBySlice
from mskbench.execution.records import CellPrediction, CellRecords, cell_records, extent_used
from mskbench.execution.slice_model import predict_slice_model
from mskbench.execution.volume_model import predict_volume_model
from mskbench.model_kinds import ModelKind
from mskbench.model_output import model_label
from mskbench.plan import Cell, PlannedBiomarker
from mskbench.postprocess import Postprocess
from mskbench.prompting.seeding import prompt_rng
from mskbench.protocols import Metric


@dataclass(frozen=True)
class UnitContext:
    """What every unit of a plan shares: the prompter objects, the metric selection, which rounds get biomarkers."""

    prompters: Mapping[str, Any]
    metrics: Sequence[Metric]
    metric_names: Sequence[str] | None
    biomarker_rounds: str = "final"


@dataclass(frozen=True)
class Unit:
    """One subject, one model, the model's pending cells; ``initial`` and ``prompt_seconds`` are keyed by cell id."""

    dataset: str
    prepared: PreparedSubject
    model: str
    kind: ModelKind
    batch_size: int
    cells: tuple[Cell, ...]
    initial: Mapping[str, PromptsBySlice]
    prompt_seconds: Mapping[str, float] = field(default_factory=dict)
    biomarkers: tuple[PlannedBiomarker, ...] = ()
    reference_biomarkers: tuple[dict[str, Any], ...] = ()
    qc: bool = False
    plugin: str = ""  # the model's plugin, named in errors about what it returned
    postprocess: Postprocess = field(default_factory=Postprocess)


def _round_rng(cell: Cell, dataset: str, subject_id: str) -> Callable[[int, int], Any]:
    def rng(slice_index: int, round_: int):
        return prompt_rng(cell.seed, cell.prompter, dataset, subject_id, slice_index, round_)

    return rng


def _postprocess(prediction: CellPrediction, postprocess: Postprocess, prepared: PreparedSubject) -> None:
    """Every round's scored masks post-processed in place (clicks were already placed on the raw output)."""
    names = {label: info.name for label, info in prepared.subject.label_map.items()}
    began = time.perf_counter()
    prediction.rounds = [
        postprocess.apply(masks, names, prepared.axis, tuple(prepared.subject.spacing)) for masks in prediction.rounds
    ]
    prediction.timings.append((len(prediction.rounds) - 1, -1, "postprocess", time.perf_counter() - began))


def unit_predictions(
    unit: Unit, prompters: Mapping[str, Any], model: Any, on_slice: Callable[[], None] = lambda: None
) -> dict[str, CellPrediction]:
    """Every cell's final, post-processed masks, keyed by cell id.

    The one inference path: `mskbench run` scores what this returns and
    `mskbench predict` writes it, so a mask written by predict is the mask a
    suite run of the same model, prompter and post-processing would score.
    """
    prepared, subject, initial = unit.prepared, unit.prepared.subject, unit.initial
    label_ids = sorted(subject.label_map)
    rngs = {cell.cell_id: _round_rng(cell, unit.dataset, subject.id) for cell in unit.cells}
    with PeakGpuMemory(model) as peak_gpu:
        if unit.kind.kind == "volume":
            predictions = predict_volume_model(model, unit.model, prepared, unit.cells, prompters, initial, label_ids, rngs)
            for _ in prepared.slice_indices:
                on_slice()
        else:
            predictions = predict_slice_model(
                model, prepared, unit.cells, prompters, initial, label_ids, unit.batch_size, rngs, on_slice,
                model_label(unit.model, unit.plugin),
            )
    for cell in unit.cells:
        prediction = predictions[cell.cell_id]
        prediction.peak_gpu_memory_mb = peak_gpu.mb
        if unit.postprocess.active:
            _postprocess(prediction, unit.postprocess, prepared)
        prediction.prompt_seconds = unit.prompt_seconds.get(cell.cell_id, 0.0)
    return predictions


def run_unit(unit: Unit, context: UnitContext, model: Any, on_slice: Callable[[], None] = lambda: None) -> list[CellRecords]:
    """The records of every cell of the unit, in the unit's cell order."""
    predictions = unit_predictions(unit, context.prompters, model, on_slice)
    return [
        cell_records(
            unit.prepared, cell.cell_id, unit.dataset, predictions[cell.cell_id], context.metrics, context.metric_names,
            unit.biomarkers, unit.reference_biomarkers, unit.qc,
            bool(getattr(context.prompters[cell.prompter], "is_detector", False)), context.biomarker_rounds,
            reference_extent_used=extent_used(model, predictions[cell.cell_id].prompts),
        )
        for cell in unit.cells
    ]

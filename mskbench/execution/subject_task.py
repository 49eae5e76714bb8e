"""Everything one subject needs, as a job a worker process or Ray actor can run: load, preprocess, prompt, units.

A :class:`SubjectTask` names a subject and its pending cells; a worker
holding a :class:`WorkerState` (the plan and the models it may run) turns
it into a :class:`SubjectOutcome` of plain rows. The driver writes them, so
workers never touch the database. The same pieces serve the in-process
(`local`) runner: :func:`subject_prompts`, :func:`subject_units`,
:func:`subject_rows`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mskbench.data.labels import select_labels
from mskbench.data.preprocess import PreparedSubject, prepare_subject
from mskbench.errors import DataError
from mskbench.execution.prompts import PromptsBySlice, initial_prompts, slice_arrays
from mskbench.execution.records import CellRecords, biomarker_rows
from mskbench.execution.unit import Unit, UnitContext, run_unit
from mskbench.manifest import sha256_of
from mskbench.plan import Cell, Plan, PlannedDataset
from mskbench.store import RowBuffer, to_json
from mskbench.types import Subject

PromptKey = tuple[str, int]  # (prompter name, seed)


def load_prepared(planned: PlannedDataset, subject_id: str) -> tuple[Subject, PreparedSubject]:
    """Load one subject, apply the suite's label selection and preprocessing."""
    entry = planned.entry
    subject = planned.dataset.load(subject_id)
    if entry.labels is not None or entry.merge:
        subject = select_labels(subject, entry.labels, entry.merge or None)
    axis = entry.slice_axis or planned.dataset.slice_axis
    return subject, prepare_subject(subject, axis, planned.preprocess)


def subject_prompts(
    prompters: Mapping[str, Any], dataset: str, prepared: PreparedSubject, pending: Sequence[Cell],
    replayed: Mapping[PromptKey, PromptsBySlice] | None = None,
) -> tuple[dict[str, PromptsBySlice], dict[str, float]]:
    """Round-0 prompts per cell, made (or taken from ``replayed``) once per (prompter, seed): no model is part of the key."""
    label_ids = sorted(prepared.subject.label_map)
    images, references = slice_arrays(prepared)
    made: dict[PromptKey, tuple[PromptsBySlice, float]] = {}
    for key in sorted({(c.prompter, c.seed) for c in pending}):
        began = time.perf_counter()
        if replayed is not None:
            prompts = replayed[key]
        else:
            prompts = initial_prompts(prompters[key[0]], key[0], key[1], dataset, prepared, label_ids, images, references)
        made[key] = (prompts, time.perf_counter() - began)
    initial = {c.cell_id: made[(c.prompter, c.seed)][0] for c in pending}
    seconds = {c.cell_id: made[(c.prompter, c.seed)][1] for c in pending}
    return initial, seconds


def subject_units(
    plan: Plan, planned: PlannedDataset, prepared: PreparedSubject, pending: Sequence[Cell],
    replayed: Mapping[PromptKey, PromptsBySlice] | None, qc: bool,
) -> list[Unit]:
    """One unit per model with pending cells, in the cells' model order."""
    dataset = planned.entry.name
    initial, prompt_seconds = subject_prompts(plan.prompters, dataset, prepared, pending, replayed)
    reference = biomarker_rows(planned.biomarkers, prepared.labels, prepared, "reference")
    by_model: dict[str, list[Cell]] = defaultdict(list)
    for cell in pending:
        by_model[cell.model].append(cell)
    units = []
    for model_name, cells in by_model.items():
        entry = plan.models[model_name]
        units.append(Unit(
            dataset, prepared, model_name, entry.kind, entry.entry.batch_size, tuple(cells),
            initial={c.cell_id: initial[c.cell_id] for c in cells},
            prompt_seconds={c.cell_id: prompt_seconds[c.cell_id] for c in cells},
            biomarkers=tuple(planned.biomarkers), reference_biomarkers=tuple(reference), qc=qc,
            plugin=entry.entry.plugin, postprocess=entry.entry.postprocess,
        ))
    return units


def subject_rows(run_id: str, dataset: str, subject: Subject, prepared: PreparedSubject) -> RowBuffer:
    """The subject's `subjects` row and its `preprocessing` rows (reference voxels per label before and after
    small-object removal)."""
    acq, demo = subject.acquisition, subject.demographics
    hashes = {path: sha256_of(path) for path in subject.source_files}
    buffer = RowBuffer()
    buffer.add(
        "subjects", run_id=run_id, dataset=dataset, subject_id=subject.id, split=subject.split,
        anatomy=subject.anatomy, field_strength_t=acq.field_strength_t, vendor=acq.vendor,
        sequence=acq.sequence, te_ms=acq.te_ms, tr_ms=acq.tr_ms, flip_angle_deg=acq.flip_angle_deg,
        slice_thickness_mm=acq.slice_thickness_mm, pixel_spacing_mm=acq.pixel_spacing_mm,
        acquisition_type=acq.acquisition_type, sex=demo.sex, age_years=demo.age_years,
        weight_kg=demo.weight_kg, spacing=to_json(list(subject.spacing)),
        shape=to_json(list(subject.volume.shape)), n_slices=len(prepared.slice_indices),
        source_sha256=to_json(hashes) if hashes else None,
    )
    for label_id, counts in sorted(prepared.label_voxels.items()):
        info = subject.label_map.get(label_id)
        buffer.add(
            "preprocessing", run_id=run_id, dataset=dataset, subject_id=subject.id, label=label_id,
            label_name=info.name if info is not None else str(label_id), voxels_before=counts.before,
            voxels_after=counts.after, lost_fraction=counts.lost_fraction, outcome=counts.outcome,
            min_object_pixels=prepared.min_pixels, min_object_voxels=prepared.min_voxels,
        )
    return buffer


@dataclass(frozen=True)
class SubjectTask:
    """One subject and its pending cells; ``replayed``: the recorded round-0 prompts under --replay-prompts."""

    dataset: str
    subject_id: str
    cells: tuple[Cell, ...]
    qc: bool = False
    replayed: Mapping[PromptKey, PromptsBySlice] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.dataset, self.subject_id


@dataclass
class SubjectOutcome:
    """What a worker made of a task: the subject's rows and each cell's records, or why the subject was skipped.

    ``deferred`` holds the units of models the worker does not hold (they
    need the device the driver owns); the driver runs them and writes their
    records.
    """

    task: SubjectTask
    skipped: str | None = None
    subject_rows: RowBuffer | None = None
    records: list[CellRecords] = field(default_factory=list)
    deferred: list[Unit] = field(default_factory=list)


@dataclass(frozen=True)
class WorkerState:
    """What each worker holds for the whole run: the plan, the models it runs itself, the unit context."""

    plan: Plan
    run_id: str
    models: Mapping[str, Any]  # model name -> built model; a name missing here is run by the driver
    context: UnitContext
    skip_bad_subjects: bool


def run_subject_task(state: WorkerState, task: SubjectTask) -> SubjectOutcome:
    """Load, preprocess, prompt and run every unit the worker holds the model of; defer the others."""
    planned = state.plan.datasets[task.dataset]
    try:
        subject, prepared = load_prepared(planned, task.subject_id)
    except DataError as exc:
        if not state.skip_bad_subjects:
            raise
        return SubjectOutcome(task, skipped=str(exc))
    outcome = SubjectOutcome(task, subject_rows=subject_rows(state.run_id, task.dataset, subject, prepared))
    for unit in subject_units(state.plan, planned, prepared, task.cells, task.replayed, task.qc):
        if unit.model in state.models:
            outcome.records.extend(run_unit(unit, state.context, state.models[unit.model]))
        else:
            outcome.deferred.append(unit)
    return outcome

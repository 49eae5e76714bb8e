"""Execute a plan: the scheduling loop (DESIGN §2, §12).

Subjects stream in (the next one loads in the background while the current
one runs; at most two in memory); for each subject the pending cells are
grouped into one unit per model (:mod:`mskbench.execution.unit`), run in
this process, and each (subject, cell)'s records go to the single writer
(:mod:`mskbench.execution.writer`). Resume, replay and progress live here.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from mskbench.data.preprocess import WARN_LOST_FRACTION, PreparedSubject, PreprocessConfig
from mskbench.device import resolve_device
from mskbench.errors import CheckpointError, DataError, PluginError, SuiteError, UserError
from mskbench.execution.executors import check_executor, open_executor
from mskbench.execution.executors.device_actors import DeviceState, actor_device
from mskbench.execution.executors.pool import RetryingPool, TaskFailure
from mskbench.execution.model_build import construct_planned, with_embedding_cache
from mskbench.execution.prompts import PromptsBySlice
from mskbench.execution.records import CellRecords
from mskbench.execution.subject_task import (
    PromptKey,
    SubjectOutcome,
    SubjectTask,
    WorkerState,
    load_prepared,
    subject_rows,
    subject_units,
)
from mskbench.execution.unit import Unit, UnitContext, run_unit
from mskbench.execution.writer import write_records
from mskbench.manifest import build_manifest
from mskbench.model_kinds import feedback_given, pair_problem
from mskbench.plan import Cell, Plan, PlannedDataset, PlannedModel, subject_ids
from mskbench.progress import RunProgress
from mskbench.protocols import InteractivePrompter, InteractiveSegmenter, InteractiveVolumeModel, Segmenter, VolumeModel
from mskbench.replay import PromptReplay
from mskbench.store import RowBuffer, Store, to_json, utcnow
from mskbench.training.covariates import card_columns
from mskbench.types import Subject

log = logging.getLogger(__name__)

QC_SUBJECTS_PER_DATASET = 3  # the report's QC overlays come from the first subjects of each dataset


@dataclass
class RunOptions:
    db: str
    resume: bool = False
    limit_subjects: int | None = None
    device: str | None = None
    replay_prompts: str | None = None
    skip_bad_subjects: bool | None = None
    show_progress: bool = True
    executor: str | None = None  # None: the suite's [suite] executor
    workers: int | None = None
    ray_address: str | None = None


@dataclass
class RunResult:
    run_id: str
    skipped_cells: dict[str, str] = field(default_factory=dict)
    retried: dict[tuple[str, str], int] = field(default_factory=dict)  # (dataset, subject) -> dead workers


def _find_resumable(store: Store, suite_hash: str) -> tuple[str, dict[str, Any] | None] | None:
    """The last unfinished run of the suite and the subject selection it recorded (None: not recorded)."""
    row = store.execute(
        "SELECT run_id, manifest FROM runs WHERE suite_hash = ? AND status <> 'finished' "
        "ORDER BY started_at DESC LIMIT 1",
        [suite_hash],
    ).fetchone()
    if row is None:
        return None
    try:
        manifest = json.loads(row[1]) if row[1] else {}
    except ValueError:
        manifest = {}
    selection = manifest.get("subject_selection") if isinstance(manifest, dict) else None
    return row[0], selection if isinstance(selection, dict) else None


def _selection_change(run_id: str, then: dict[str, Any], now: dict[str, Any]) -> str | None:
    """Why a resume of ``run_id`` would evaluate other subjects than it started with, or None when it would not.

    Resuming with another subject selection would finish the run with an
    unequal number of subjects per cell, so it is refused rather than
    extended: the message says what changed, how to resume the run as it
    was, or to start a new one. Only the subjects count: another
    ``--limit-subjects`` that selects the same subjects resumes.
    """
    old_subjects, new_subjects = then.get("subjects") or {}, now.get("subjects") or {}
    changes = []
    for dataset in sorted(set(old_subjects) | set(new_subjects)):
        before, after = set(old_subjects.get(dataset, [])), set(new_subjects.get(dataset, []))
        if before != after:
            changes.append(f"dataset '{dataset}': {len(after - before)} subject(s) added, {len(before - after)} dropped")
    if not changes:
        return None
    what = "; ".join(changes)
    old_limit, new_limit = then.get("limit_subjects"), now.get("limit_subjects")
    if old_limit != new_limit:
        as_was = f"--limit-subjects {old_limit}" if old_limit is not None else "no --limit-subjects"
        shown = f"--limit-subjects {new_limit}" if new_limit is not None else "no --limit-subjects"
        return (f"--resume: run {run_id} was started with {as_was}, this command has {shown} ({what}); "
                f"resume with {as_was}, or leave out --resume to start a new run with the new selection")
    return (f"--resume: the subjects changed since run {run_id} was started ({what}); restore the data as it was "
            f"to resume, or leave out --resume to start a new run with the new selection")


def _feedback_used(prompter: Any, model: PlannedModel) -> dict[str, str]:
    """An interactive cell records what its model really gets back each round, which may be less than
    the prompter's ``feedback`` asks (SAM takes no mask; region_growing_3d takes nothing)."""
    if not isinstance(prompter, InteractivePrompter):
        return {}
    return {"feedback_used": feedback_given(prompter.feedback, model.kind.feedback)}


class Runner:
    """Runs one plan against one store; see :func:`run_plan`."""

    def __init__(self, plan: Plan, store: Store, options: RunOptions):
        self.plan = plan
        self.store = store
        self.options = options
        self.suite = plan.suite
        self.models: dict[str, Any] = {}
        self.context = UnitContext(plan.prompters, plan.metrics, self.suite.metric_names, self.suite.biomarker_rounds)
        self.replay = PromptReplay(store, options.replay_prompts) if options.replay_prompts else None
        needs_torch = any(
            m.skip_reason is None and ("torch" in m.info.requires or "checkpoint" in m.info.requires)
            for m in plan.models.values()
        )
        self.device = resolve_device(options.device or self.suite.device, needs_torch)
        skip_bad = options.skip_bad_subjects
        self.skip_bad_subjects = bool(self.suite.output.get("skip_bad_subjects", False)) if skip_bad is None else skip_bad

    # -- run bookkeeping -------------------------------------------------------------------
    def start(self, subjects: dict[str, list[str]] | None = None) -> RunResult:
        """Begin a run, or continue the last unfinished one with ``--resume``.

        ``subjects`` (dataset -> subject ids to evaluate) is recorded in the
        manifest with ``--limit-subjects``; a resume must select the same.
        """
        selection = {"limit_subjects": self.options.limit_subjects, "subjects": subjects or {}}
        if self.options.resume:
            found = _find_resumable(self.store, self.suite.hash)
            if found is not None:
                run_id, recorded = found
                if recorded is None:
                    log.warning("run %s did not record its subject selection; resuming it without checking", run_id)
                else:
                    change = _selection_change(run_id, recorded, selection)
                    if change:
                        raise UserError(change)
                log.warning("resuming run %s", run_id)
                self.store.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", [run_id])
                # subjects whose workers died are tried again
                self.store.execute("DELETE FROM subject_status WHERE run_id = ? AND status = 'failed'", [run_id])
                self._refresh_cell_status(run_id)
                return RunResult(run_id, skipped_cells=dict(self.plan.skipped))
            log.warning("nothing to resume for this suite in %s; starting a new run", self.store.path)
        run_id = uuid.uuid4().hex[:12]
        manifest = build_manifest(self.suite.path, self.device, self.suite.seeds, self.plan.resolved_config())
        manifest["subject_selection"] = selection
        buffer = RowBuffer()
        buffer.add(
            "runs", run_id=run_id, suite_name=self.suite.name, suite_hash=self.suite.hash,
            suite_path=self.suite.path, config=to_json(self.suite.config), manifest=to_json(manifest),
            started_at=utcnow(), status="running",
        )
        for cell in self.plan.cells:
            planned = self.plan.models[cell.model]
            buffer.add(
                "cells", run_id=run_id, cell_id=cell.cell_id, dataset=cell.dataset, model=cell.model,
                prompter=cell.prompter, seed=cell.seed,
                dataset_plugin=self.plan.datasets[cell.dataset].entry.plugin,
                model_plugin=planned.entry.plugin,
                prompter_plugin=self.plan.prompter_entries[cell.prompter].plugin,
                params=to_json({
                    "dataset": self.plan.datasets[cell.dataset].params,
                    "model": planned.params,
                    "prompter": self.plan.prompter_entries[cell.prompter].params,
                    **_feedback_used(self.plan.prompters[cell.prompter], planned),
                }),
                status="skipped" if cell.cell_id in self.plan.skipped else "planned",
                skip_reason=self.plan.skipped.get(cell.cell_id),
                allow_training_subjects=planned.entry.allow_training_subjects,
                **card_columns(planned.card),
            )
        self.store.write(buffer)
        return RunResult(run_id, skipped_cells=dict(self.plan.skipped))

    def _refresh_cell_status(self, run_id: str) -> None:
        """On resume, which models are skipped is decided anew (a checkpoint may have appeared or gone)."""
        for cell in self.plan.cells:
            skipped = cell.cell_id in self.plan.skipped
            self.store.execute(
                "UPDATE cells SET status = ?, skip_reason = ? WHERE run_id = ? AND cell_id = ?",
                ["skipped" if skipped else "planned", self.plan.skipped.get(cell.cell_id), run_id, cell.cell_id],
            )

    def finish(self, result: RunResult) -> None:
        self.warn_preprocessing(result.run_id)
        self.store.execute(
            "UPDATE cells SET status = 'done' WHERE run_id = ? AND status = 'planned'", [result.run_id]
        )
        failed = self.store.execute(
            "SELECT count(*) FROM subject_status WHERE run_id = ? AND status = 'failed'", [result.run_id]
        ).fetchone()[0]
        if failed:  # left open, so --resume tries them again
            log.warning("run %s: %d (subject, cell) pairs failed (their workers died); --resume tries them again",
                        result.run_id, failed)
        self.store.set_run_status(result.run_id, "incomplete" if failed else "finished")

    # -- models ------------------------------------------------------------------------------
    def _model(self, name: str, result: RunResult) -> Any:
        if name in self.models:
            return self.models[name]
        planned: PlannedModel = self.plan.models[name]
        where = f"models.{name}"
        try:
            model = construct_planned(self.plan, name, self.device)
        except CheckpointError as exc:
            if planned.entry.on_missing_checkpoint == "error":
                raise CheckpointError(f"{where}: {exc}") from None
            log.warning("skipping model %s: %s", name, exc)
            self._skip_model(name, str(exc), result)
            self.models[name] = None
            return None
        self._check_prompt_support(name, model)
        model = with_embedding_cache(self.plan, name, model)
        self._record_model_manifest(name, model, result.run_id)
        self.models[name] = model
        return model

    def _check_prompt_support(self, name: str, model: Any) -> None:
        """The plan's checks again on the built model: its protocol, and prompts for factories that do not declare them."""
        planned = self.plan.models[name]
        kind = planned.kind
        protocols = [Segmenter if kind.kind == "slice" else VolumeModel]
        if kind.interactive:
            protocols.append(InteractiveSegmenter if kind.kind == "slice" else InteractiveVolumeModel)
        for protocol in protocols:
            if not isinstance(model, protocol):
                raise PluginError(
                    f"models.{name}: plugin '{planned.entry.plugin}' declares a {kind.kind} model"
                    f"{' (interactive)' if kind.interactive else ''} but builds a {type(model).__name__} "
                    f"without the methods of {protocol.__name__} (mskbench.protocols)"
                )
        for cell in self.plan.cells:
            if cell.model != name:
                continue
            mismatch = pair_problem(
                name, kind, frozenset(model.supported_prompts), planned.entry.per_slice, cell.prompter,
                self.plan.prompters[cell.prompter],
            )
            if mismatch:
                raise SuiteError(mismatch)

    def _record_model_manifest(self, name: str, model: Any, run_id: str) -> None:
        self.store.execute(
            "UPDATE runs SET manifest = json_merge_patch(manifest, ?) WHERE run_id = ?",
            [to_json({"models": {name: model.describe()}}), run_id],
        )

    def _skip_model(self, name: str, reason: str, result: RunResult) -> None:
        for cell in self.plan.cells:
            if cell.model == name:
                result.skipped_cells[cell.cell_id] = reason
        self.store.execute(
            "UPDATE cells SET status = 'skipped', skip_reason = ? WHERE run_id = ? AND model = ?",
            [reason, result.run_id, name],
        )

    # -- subjects ----------------------------------------------------------------------------
    def try_load(self, planned: PlannedDataset, subject_id: str) -> tuple[Subject, PreparedSubject] | str:
        """The loaded subject, or its error message when bad subjects may be skipped."""
        try:
            return load_prepared(planned, subject_id)
        except DataError as exc:
            if not self.skip_bad_subjects:
                raise
            log.warning("skipping subject %s: %s", subject_id, exc)
            return str(exc)

    def record_subject(self, run_id: str, rows: RowBuffer) -> None:
        """Write a subject's `subjects` and `preprocessing` rows unless a previous session of the run did."""
        subject = rows.columns["subjects"]
        exists = self.store.execute(
            "SELECT 1 FROM subjects WHERE run_id = ? AND dataset = ? AND subject_id = ?",
            [run_id, subject["dataset"][0], subject["subject_id"][0]],
        ).fetchone()
        if not exists:
            self.store.write(rows)

    def warn_preprocessing(self, run_id: str) -> None:
        """One warning line per dataset where preprocessing took > 10 % of a reference label (or all of it).

        Read back from the `preprocessing` table, so a resumed run counts the
        subjects of every session.
        """
        for name, planned in self.plan.datasets.items():
            rows = self.store.execute(
                "SELECT subject_id, label_name, outcome FROM preprocessing WHERE run_id = ? AND dataset = ? "
                "AND voxels_before > 0 AND (voxels_after = 0 OR lost_fraction > ?) ORDER BY subject_id, label",
                [run_id, name, WARN_LOST_FRACTION],
            ).fetchall()
            if rows:
                total = self.store.execute(
                    "SELECT count(DISTINCT subject_id) FROM preprocessing WHERE run_id = ? AND dataset = ?", [run_id, name]
                ).fetchone()[0]
                log.warning("%s", preprocessing_warning(name, planned.preprocess, rows, total))

    def skip_subject(self, run_id: str, dataset: str, subject_id: str, cells: Sequence[Cell], reason: str,
                     status: str = "skipped") -> None:
        """``skipped`` (unreadable data) is final; ``failed`` (its workers died) is tried again by --resume."""
        buffer = RowBuffer()
        for cell in cells:
            buffer.add(
                "subject_status", run_id=run_id, cell_id=cell.cell_id, dataset=dataset, subject_id=subject_id,
                status=status, reason=reason, finished_at=utcnow(),
            )
        self.store.write(buffer)

    # -- one subject, all pending cells ------------------------------------------------------
    def replayed_prompts(self, dataset: str, subject_id: str, pending: Sequence[Cell]) -> dict[PromptKey, PromptsBySlice] | None:
        """Under --replay-prompts, the recorded round-0 prompts of the subject per (prompter, seed); else None."""
        if self.replay is None:
            return None
        keys = sorted({(c.prompter, c.seed) for c in pending})
        return {key: self.replay.subject_prompts(dataset, key[0], key[1], subject_id) for key in keys}

    def run_subject(
        self, result: RunResult, planned: PlannedDataset, prepared: PreparedSubject,
        pending: Sequence[Cell], progress: RunProgress, qc: bool = False,
    ) -> None:
        """Schedule one unit per model with pending cells, run it here, hand its records to the writer."""
        replayed = self.replayed_prompts(planned.entry.name, prepared.subject.id, pending)
        for unit in subject_units(self.plan, planned, prepared, pending, replayed, qc):
            self.run_unit_here(result, unit, progress.advance_slice)

    def run_unit_here(self, result: RunResult, unit: Unit, on_slice: Callable[[], None] = lambda: None) -> None:
        """Run a unit with the model this process holds (none: the model was skipped) and write its records."""
        model = self._model(unit.model, result)
        if model is not None:
            self.write_all(result, run_unit(unit, self.context, model, on_slice))

    def write_all(self, result: RunResult, records: Sequence[CellRecords]) -> None:
        for cell_records in records:
            write_records(self.store, result.run_id, cell_records)

    # -- worker executors --------------------------------------------------------------------
    def _needs_device(self, name: str) -> bool:
        """A torch model on an accelerator runs in this process, which owns the device; CPU models go to workers."""
        info = self.plan.models[name].info
        return self.device != "cpu" and ("torch" in info.requires or "checkpoint" in info.requires)

    def open_executor(self, result: RunResult, executor: str, workers: int | None, ray_address: str | None,
                      work: dict[str, list[tuple[int, str, list[Cell]]]]) -> RetryingPool:
        """Build each model with pending cells once here (manifest, checks), then start workers holding the CPU ones."""
        names = sorted({cell.model for items in work.values() for _, _, pending in items for cell in pending})
        built = {name: self._model(name, result) for name in names}
        held = {name: model for name, model in built.items() if model is not None and not self._needs_device(name)}
        state = WorkerState(self.plan, result.run_id, held, self.context, self.skip_bad_subjects)
        on_device = tuple(name for name, model in built.items() if model is not None and name not in held)
        device_state = None
        if executor == "ray" and on_device:
            device_state = DeviceState(self.plan, self.context, on_device, actor_device(self.device))
        return open_executor(executor, state, workers, ray_address, device_state)

    def write_outcome(self, result: RunResult, outcome: SubjectOutcome | TaskFailure) -> None:
        """A worker's answer into the database; units it deferred (device models) run here first."""
        task = outcome.task
        if isinstance(outcome, TaskFailure):
            self.skip_subject(result.run_id, task.dataset, task.subject_id, task.cells, outcome.reason, status="failed")
        elif outcome.skipped is not None:
            self.skip_subject(result.run_id, task.dataset, task.subject_id, task.cells, outcome.skipped)
        else:
            self.record_subject(result.run_id, outcome.subject_rows)
            self.write_all(result, outcome.records)
            for unit in outcome.deferred:
                self.run_unit_here(result, unit)


def preprocessing_warning(dataset: str, config: PreprocessConfig, rows: Sequence[tuple[str, str, str]], total: int) -> str:
    """The one-line warning for a dataset; ``rows`` = (subject_id, label_name, outcome) of the flagged labels."""
    subjects = {subject for subject, _, _ in rows}
    removed: dict[str, int] = defaultdict(int)
    reduced: dict[str, int] = defaultdict(int)
    for _, label, outcome in rows:
        (removed if outcome == "removed" else reduced)[label] += 1
    parts = []
    if removed:
        parts.append("vanished: " + ", ".join(f"{label} in {n}" for label, n in sorted(removed.items())))
    if reduced:
        parts.append("lost > 10 %: " + ", ".join(f"{label} in {n}" for label, n in sorted(reduced.items())))
    per_slice, per_volume = config.threshold_keys
    return (
        f"dataset {dataset}: small-object removal deleted reference anatomy in {len(subjects)} of {total} "
        f"subject{'s' if total != 1 else ''} ({'; '.join(parts)}); lower or zero "
        f"datasets.{dataset}.preprocess.{per_slice} / {per_volume} (0 disables), counts per subject in the "
        "`preprocessing` table"
    )


def _pending_cells(cells: Sequence[Cell], subject_id: str, finished: set[tuple[str, str]], skipped: dict[str, str]) -> list[Cell]:
    return [c for c in cells if c.cell_id not in skipped and (c.cell_id, subject_id) not in finished]


def _prefetch(runner: Runner, planned: PlannedDataset, work: Sequence[tuple[int, str, list[Cell]]]) -> Iterator[
    tuple[int, str, list[Cell], tuple[Subject, PreparedSubject] | str]
]:
    """Yield each work item with its loaded subject, loading the next one in a background thread.

    Reading and preprocessing (file I/O, decompression, percentiles, connected
    components) mostly release the GIL, so they overlap with encoding and
    scoring of the current subject. At most two subjects are in memory.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mskbench-load") as pool:
        queue: deque = deque()
        items = iter(work)

        def submit_next() -> None:
            item = next(items, None)
            if item is not None:
                queue.append((item, pool.submit(runner.try_load, planned, item[1])))

        try:
            submit_next()
            while queue:
                item, future = queue.popleft()
                submit_next()
                yield (*item, future.result())
        finally:  # an error here or in the consumer: do not wait for loads nobody will use
            for _, pending_future in queue:
                pending_future.cancel()


def _subject_work(plan: Plan, name: str, ids: Sequence[str], finished: set[tuple[str, str]],
                  skipped: dict[str, str]) -> list[tuple[int, str, list[Cell]]]:
    """(position in the selection, subject id, pending cells) of each subject of the dataset with work left."""
    cells = plan.cells_for(name)
    work = [(position, subject_id, _pending_cells(cells, subject_id, finished, skipped)) for position, subject_id in enumerate(ids)]
    return [item for item in work if item[2]]


def _run_here(runner: Runner, result: RunResult, planned: PlannedDataset, work: Sequence[tuple[int, str, list[Cell]]],
              progress: RunProgress) -> None:
    """The `local` executor: load the next subject in the background, run its units in this process."""
    name = planned.entry.name
    for position, subject_id, pending, loaded in _prefetch(runner, planned, work):
        if isinstance(loaded, str):
            runner.skip_subject(result.run_id, name, subject_id, pending, loaded)
        else:
            subject, prepared = loaded
            runner.record_subject(result.run_id, subject_rows(result.run_id, name, subject, prepared))
            progress.start_slices(subject_id, len(prepared.slice_indices) * len({c.model for c in pending}))
            runner.run_subject(result, planned, prepared, pending, progress, position < QC_SUBJECTS_PER_DATASET)
        progress.advance_subject()


def _run_on_workers(runner: Runner, result: RunResult, pool: RetryingPool, name: str,
                    work: Sequence[tuple[int, str, list[Cell]]], progress: RunProgress) -> None:
    """The `processes` and `ray` executors: workers compute each subject, this process writes what they return."""
    tasks = [
        SubjectTask(name, subject_id, tuple(pending), position < QC_SUBJECTS_PER_DATASET,
                    runner.replayed_prompts(name, subject_id, pending))
        for position, subject_id, pending in work
    ]
    for outcome in pool.run(tasks):
        runner.write_outcome(result, outcome)
        progress.advance_subject()


def run_plan(plan: Plan, options: RunOptions) -> RunResult:
    """Run every pending (subject, cell) of the plan; safe to kill and ``--resume``."""
    executor = options.executor or plan.suite.executor
    workers = options.workers if options.workers is not None else plan.suite.workers
    ray_address = options.ray_address or plan.suite.ray_address
    check_executor(executor, workers, ray_address)
    selection = {name: subject_ids(planned, options.limit_subjects) for name, planned in plan.datasets.items()}
    for name, ids in selection.items():
        if not ids:
            split = plan.datasets[name].entry.split
            raise SuiteError(f"datasets.{name}: no subjects in split '{split}'; check the data, or set "
                             f"split = \"all\" for a dataset without a test split")
    store = Store.open_for_writing(options.db)
    try:
        runner = Runner(plan, store, options)
        result = runner.start(selection)
        finished = store.finished_pairs(result.run_id)
        work = {name: _subject_work(plan, name, selection[name], finished, result.skipped_cells) for name in plan.datasets}
        pool = None if executor == "local" else runner.open_executor(result, executor, workers, ray_address, work)
        with RunProgress(enabled=options.show_progress) as progress, pool or nullcontext():
            for name, planned in plan.datasets.items():
                progress.start_dataset(name, len(selection[name]))
                for _ in range(len(selection[name]) - len(work[name])):
                    progress.advance_subject()
                if pool is None:
                    _run_here(runner, result, planned, work[name], progress)
                else:
                    _run_on_workers(runner, result, pool, name, work[name], progress)
        if pool is not None:
            result.retried = dict(pool.deaths)
        runner.finish(result)
        return result
    finally:
        store.close()

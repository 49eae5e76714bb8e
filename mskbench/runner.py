"""Execute a plan: stream subjects, encode once per (model, slice), decode all
prompts of a slice in one call, score, and write one transaction per
(subject, cell) (DESIGN §2, §5).
"""

from __future__ import annotations

import dataclasses
import logging
import resource
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mskbench.data.labels import select_labels
from mskbench.data.preprocess import PreparedSubject, prepare_subject, take_slice
from mskbench.device import resolve_device
from mskbench.errors import CheckpointError, DataError, SuiteError
from mskbench.manifest import build_manifest, sha256_of
from mskbench.plan import Cell, Plan, PlannedDataset, PlannedModel, construct, prompt_mismatch
from mskbench.progress import RunProgress
from mskbench.prompting.seeding import prompt_rng
from mskbench.protocols import Segmenter
from mskbench.replay import PromptReplay
from mskbench.scoring import score_subject
from mskbench.store import RowBuffer, Store, to_json, utcnow
from mskbench.types import Prompt, SliceRef, Subject

log = logging.getLogger(__name__)

PromptKey = tuple[str, int]  # (prompter name, seed)
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


@dataclass
class RunResult:
    run_id: str
    skipped_cells: dict[str, str] = field(default_factory=dict)


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _find_resumable(store: Store, suite_hash: str) -> str | None:
    row = store.execute(
        "SELECT run_id FROM runs WHERE suite_hash = ? AND status <> 'finished' ORDER BY started_at DESC LIMIT 1",
        [suite_hash],
    ).fetchone()
    return row[0] if row else None


def subject_ids(planned: PlannedDataset, limit_subjects: int | None) -> list[str]:
    """The dataset's subjects in the suite's split, cut to the tightest subject limit."""
    entry = planned.entry
    ids = planned.dataset.subject_ids(None if entry.split == "all" else entry.split)
    limits = [n for n in (entry.limit_subjects, limit_subjects) if n is not None]
    return ids[: min(limits)] if limits else ids


def load_prepared(planned: PlannedDataset, subject_id: str) -> tuple[Subject, PreparedSubject]:
    """Load one subject, apply the suite's label selection and preprocessing."""
    entry = planned.entry
    subject = planned.dataset.load(subject_id)
    if entry.labels is not None or entry.merge:
        subject = select_labels(subject, entry.labels, entry.merge or None)
    axis = entry.slice_axis or planned.dataset.slice_axis
    return subject, prepare_subject(subject, axis, planned.preprocess)


class Runner:
    """Runs one plan against one store; see :func:`run_plan`."""

    def __init__(self, plan: Plan, store: Store, options: RunOptions):
        self.plan = plan
        self.store = store
        self.options = options
        self.suite = plan.suite
        self.models: dict[str, Segmenter] = {}
        self.replay = PromptReplay(store, options.replay_prompts) if options.replay_prompts else None
        needs_torch = any(
            m.skip_reason is None and ("torch" in m.info.requires or "checkpoint" in m.info.requires)
            for m in plan.models.values()
        )
        self.device = resolve_device(options.device or self.suite.device, needs_torch)
        skip_bad = options.skip_bad_subjects
        self.skip_bad_subjects = bool(self.suite.output.get("skip_bad_subjects", False)) if skip_bad is None else skip_bad

    # -- run bookkeeping -------------------------------------------------------------------
    def start(self) -> RunResult:
        if self.options.resume:
            run_id = _find_resumable(self.store, self.suite.hash)
            if run_id is not None:
                log.warning("resuming run %s", run_id)
                self.store.execute("UPDATE runs SET status = 'running' WHERE run_id = ?", [run_id])
                self._refresh_cell_status(run_id)
                return RunResult(run_id, skipped_cells=dict(self.plan.skipped))
            log.warning("nothing to resume for this suite in %s; starting a new run", self.store.path)
        run_id = uuid.uuid4().hex[:12]
        manifest = build_manifest(self.suite.path, self.device, self.suite.seeds, self.plan.resolved_config())
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
                }),
                status="skipped" if cell.cell_id in self.plan.skipped else "planned",
                skip_reason=self.plan.skipped.get(cell.cell_id),
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
        self.store.execute(
            "UPDATE cells SET status = 'done' WHERE run_id = ? AND status = 'planned'", [result.run_id]
        )
        self.store.set_run_status(result.run_id, "finished")

    # -- models ------------------------------------------------------------------------------
    def _model(self, name: str, result: RunResult) -> Segmenter | None:
        if name in self.models:
            return self.models[name]
        planned: PlannedModel = self.plan.models[name]
        where = f"models.{name}"
        try:
            model = construct(planned.info, planned.params, where, device=self.device, checkpoint=planned.entry.checkpoint)
        except CheckpointError as exc:
            if planned.entry.on_missing_checkpoint == "error":
                raise CheckpointError(f"{where}: {exc}") from None
            log.warning("skipping model %s: %s", name, exc)
            self._skip_model(name, str(exc), result)
            self.models[name] = None
            return None
        self._check_prompt_support(name, model)
        model = self._maybe_cache(name, model)
        self._record_model_manifest(name, model, result.run_id)
        self.models[name] = model
        return model

    def _check_prompt_support(self, name: str, model: Segmenter) -> None:
        """The plan's check, for factories that do not declare `supported_prompts` before building."""
        for cell in self.plan.cells:
            if cell.model != name:
                continue
            produces = self.plan.prompters[cell.prompter].produces
            mismatch = prompt_mismatch(name, cell.prompter, produces, frozenset(model.supported_prompts))
            if mismatch:
                raise SuiteError(mismatch)

    def _maybe_cache(self, name: str, model: Segmenter) -> Segmenter:
        directory = self.suite.output.get("embedding_cache")
        if not directory:
            return model
        from pathlib import Path

        from mskbench.segmenters.cache import CachedSegmenter, EmbeddingCache, segmenter_key_prefix

        max_gb = float(self.suite.output.get("embedding_cache_max_gb", 2.0))
        cache = EmbeddingCache(Path(directory), max_bytes=int(max_gb * 1e9))
        prefix = segmenter_key_prefix(self.plan.models[name].entry.plugin, model)
        return CachedSegmenter(model, cache, key_prefix=prefix)

    def _record_model_manifest(self, name: str, model: Segmenter, run_id: str) -> None:
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

    def record_subject(self, run_id: str, dataset: str, subject: Subject, prepared: PreparedSubject) -> None:
        exists = self.store.execute(
            "SELECT 1 FROM subjects WHERE run_id = ? AND dataset = ? AND subject_id = ?", [run_id, dataset, subject.id]
        ).fetchone()
        if exists:
            return
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
        self.store.write(buffer)

    def skip_subject(self, run_id: str, dataset: str, subject_id: str, cells: Sequence[Cell], reason: str) -> None:
        buffer = RowBuffer()
        for cell in cells:
            buffer.add(
                "subject_status", run_id=run_id, cell_id=cell.cell_id, dataset=dataset, subject_id=subject_id,
                status="skipped", reason=reason, finished_at=utcnow(),
            )
        self.store.write(buffer)

    # -- prompts -----------------------------------------------------------------------------
    def _prompts(
        self, key: PromptKey, dataset: str, subject: Subject, prepared: PreparedSubject,
        image: np.ndarray, reference: np.ndarray, index: int,
    ) -> list[Prompt]:
        prompter_name, seed = key
        if self.replay is not None:
            return self.replay.prompts(dataset, prompter_name, seed, subject.id, index)
        rng, derived = prompt_rng(seed, prompter_name, dataset, subject.id, index)
        where = SliceRef(dataset, subject.id, index, prepared.pixel_spacing)
        label_ids = sorted(subject.label_map)
        raw = self.plan.prompters[prompter_name].prompts(image, reference, label_ids, rng, where)
        return [dataclasses.replace(p, prompter=prompter_name, seed=derived) for p in raw]

    # -- one subject, all pending cells ------------------------------------------------------
    def run_subject(
        self, result: RunResult, planned: PlannedDataset, subject: Subject, prepared: PreparedSubject,
        pending: Sequence[Cell], progress: RunProgress, qc: bool = False,
    ) -> None:
        dataset = planned.entry.name
        axis = prepared.axis
        keys = sorted({(c.prompter, c.seed) for c in pending})
        # Prompts depend on (prompter, seed, slice), never on the model: made once, shared by all models.
        prompts: dict[PromptKey, dict[int, list[Prompt]]] = defaultdict(dict)
        images = {k: take_slice(prepared.image, axis, k) for k in prepared.slice_indices}
        references = {k: take_slice(prepared.labels, axis, k) for k in prepared.slice_indices}
        prompt_seconds: dict[PromptKey, float] = defaultdict(float)
        for key in keys:
            for k in prepared.slice_indices:
                started = time.perf_counter()
                prompts[key][k] = self._prompts(key, dataset, subject, prepared, images[k], references[k], k)
                prompt_seconds[key] += time.perf_counter() - started

        reference_biomarkers = self._biomarkers(planned, prepared.labels, subject, axis, "reference")
        by_model: dict[str, list[Cell]] = defaultdict(list)
        for cell in pending:
            by_model[cell.model].append(cell)
        for model_name, cells in by_model.items():
            model = self._model(model_name, result)
            if model is None:
                continue
            model_keys = [(c.prompter, c.seed) for c in cells]
            batch_size = self.plan.models[model_name].entry.batch_size
            predictions, timings = self._predict(model, batch_size, model_keys, prompts, images, prepared, progress)
            for cell in cells:
                key = (cell.prompter, cell.seed)
                self._write_cell(
                    result, planned, subject, prepared, cell, prompts[key], predictions[key],
                    reference_biomarkers, timings, prompt_seconds[key], references, qc,
                )

    def _predict(
        self, model: Segmenter, batch_size: int, keys: Sequence[PromptKey], prompts: dict[PromptKey, dict[int, list[Prompt]]],
        images: dict[int, np.ndarray], prepared: PreparedSubject, progress: RunProgress,
    ) -> tuple[dict[PromptKey, dict[int, np.ndarray]], list[tuple[int, str, float]]]:
        """Per prompt key, per label: a bool volume of the union of that label's masks."""
        shape = prepared.labels.shape
        predictions: dict[PromptKey, dict[int, np.ndarray]] = {key: {} for key in keys}
        timings: list[tuple[int, str, float]] = []
        indices = list(prepared.slice_indices)
        for start in range(0, len(indices), batch_size):
            batch = indices[start : start + batch_size]
            began = time.perf_counter()
            embeddings = model.encode([images[k] for k in batch])
            per_slice = (time.perf_counter() - began) / len(batch)
            for k, embedding in zip(batch, embeddings):
                timings.append((k, "encode", per_slice))
                all_prompts = [p for key in keys for p in prompts[key][k]]
                began = time.perf_counter()
                masks = model.decode(embedding, all_prompts) if all_prompts else np.zeros((0, *images[k].shape), bool)
                timings.append((k, "decode", time.perf_counter() - began))
                offset = 0
                for key in keys:
                    for prompt in prompts[key][k]:
                        volume = predictions[key].get(prompt.label)
                        if volume is None:
                            volume = predictions[key][prompt.label] = np.zeros(shape, dtype=bool)
                        target = take_slice(volume, prepared.axis, k)
                        np.logical_or(target, masks[offset], out=target)
                        offset += 1
                progress.advance_slice()
        return predictions, timings

    def _biomarkers(
        self, planned: PlannedDataset, labels: np.ndarray, subject: Subject, axis: int, source: str
    ) -> list[dict[str, Any]]:
        rows = []
        for item in planned.biomarkers:
            for value in item.biomarker.compute(labels, subject, item.structures, axis):
                rows.append({
                    "structure": value.structure, "biomarker": value.biomarker, "method": value.method,
                    "source": source, "instance": value.instance, "value": value.value, "unit": value.unit,
                })
        return rows

    def _write_cell(
        self, result: RunResult, planned: PlannedDataset, subject: Subject, prepared: PreparedSubject,
        cell: Cell, prompts: dict[int, list[Prompt]], predictions: dict[int, np.ndarray],
        reference_biomarkers: list[dict[str, Any]], model_timings: list[tuple[int, str, float]],
        prompt_seconds: float, references: dict[int, np.ndarray], qc: bool,
    ) -> None:
        base = {"run_id": result.run_id, "cell_id": cell.cell_id, "subject_id": subject.id}
        buffer = RowBuffer()
        labels = [subject.label_map[i] for i in sorted(subject.label_map)]
        began = time.perf_counter()
        slice_rows, subject_rows = score_subject(
            prepared.labels, predictions, labels, prepared.slice_indices, prepared.axis,
            subject.spacing, self.plan.metrics, base, self.suite.metric_names,
        )
        metric_seconds = time.perf_counter() - began
        buffer.extend("slice_metrics", slice_rows)
        buffer.extend("subject_metrics", subject_rows)
        began = time.perf_counter()
        predicted_labels = np.zeros(prepared.labels.shape, dtype=np.int32)
        for label_id in sorted(predictions):
            predicted_labels[predictions[label_id]] = label_id
        prediction_biomarkers = self._biomarkers(planned, predicted_labels, subject, prepared.axis, "prediction")
        biomarker_seconds = time.perf_counter() - began
        buffer.extend("biomarkers", ({**base, **row} for row in reference_biomarkers + prediction_biomarkers))
        self._buffer_prompts(buffer, base, prompts, references, cell, subject.label_map)
        peak = _peak_memory_mb()
        for k, stage, seconds in model_timings:
            buffer.add("timings", **base, slice_index=k, stage=stage, seconds=seconds, peak_memory_mb=peak)
        for stage, seconds in (("prompt", prompt_seconds), ("metrics", metric_seconds), ("biomarkers", biomarker_seconds)):
            buffer.add("timings", **base, slice_index=-1, stage=stage, seconds=seconds, peak_memory_mb=peak)
        if qc and prepared.slice_indices:
            self._buffer_qc(buffer, base, prepared, references, predicted_labels)
        buffer.add(
            "subject_status", **base, dataset=cell.dataset, status="done", reason=None, finished_at=utcnow()
        )
        self.store.write(buffer)
        log.info("committed subject %s cell %s", subject.id, cell.cell_id)

    @staticmethod
    def _buffer_qc(
        buffer: RowBuffer, base: dict[str, Any], prepared: PreparedSubject,
        references: dict[int, np.ndarray], predicted_labels: np.ndarray,
    ) -> None:
        """A thumbnail of the slice with the most reference foreground, for the report's QC overlays."""
        from mskbench.report.qc import encode_qc_slice

        k = max(prepared.slice_indices, key=lambda i: int(np.count_nonzero(references[i])))
        image = take_slice(prepared.image, prepared.axis, k)
        thumbnail = encode_qc_slice(image, references[k], take_slice(predicted_labels, prepared.axis, k))
        buffer.add("qc_slices", **base, slice_index=k, **thumbnail)

    def _buffer_prompts(
        self, buffer: RowBuffer, base: dict[str, Any], prompts: dict[int, list[Prompt]],
        references: dict[int, np.ndarray], cell: Cell, label_map: dict[int, Any],
    ) -> None:
        prompter = self.plan.prompters[cell.prompter]
        is_detector = bool(getattr(prompter, "is_detector", False))
        for k, slice_prompts in prompts.items():
            for i, p in enumerate(slice_prompts):
                box = p.box or (None, None, None, None)
                buffer.add(
                    "prompts", **base, slice_index=k, prompt_index=i, label=p.label, instance=p.instance,
                    kind=p.kind, x_min=box[0], y_min=box[1], x_max=box[2], y_max=box[3],
                    points=to_json([list(pt) for pt in p.points]), point_labels=to_json(list(p.point_labels)),
                    prompter=p.prompter, seed=p.seed, score=p.score, detector_class=p.detector_class,
                    clipped=p.clipped,
                )
            if is_detector:
                from mskbench.prompting.detections import detection_records

                for record in detection_records(slice_prompts, references[k], sorted(label_map)):
                    buffer.add("detections", **base, slice_index=k, **dataclasses.asdict(record))


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


def run_plan(plan: Plan, options: RunOptions) -> RunResult:
    """Run every pending (subject, cell) of the plan; safe to kill and ``--resume``."""
    store = Store(options.db)
    try:
        runner = Runner(plan, store, options)
        result = runner.start()
        finished = store.finished_pairs(result.run_id)
        with RunProgress(enabled=options.show_progress) as progress:
            for name, planned in plan.datasets.items():
                cells = plan.cells_for(name)
                ids = subject_ids(planned, options.limit_subjects)
                progress.start_dataset(name, len(ids))
                work = []
                for position, subject_id in enumerate(ids):
                    pending = _pending_cells(cells, subject_id, finished, result.skipped_cells)
                    if pending:
                        work.append((position, subject_id, pending))
                    else:
                        progress.advance_subject()
                for position, subject_id, pending, loaded in _prefetch(runner, planned, work):
                    if isinstance(loaded, str):
                        runner.skip_subject(result.run_id, name, subject_id, pending, loaded)
                    else:
                        subject, prepared = loaded
                        runner.record_subject(result.run_id, name, subject, prepared)
                        progress.start_slices(subject_id, len(prepared.slice_indices) * len({c.model for c in pending}))
                        qc = position < QC_SUBJECTS_PER_DATASET
                        runner.run_subject(result, planned, subject, prepared, pending, progress, qc)
                    progress.advance_subject()
        runner.finish(result)
        return result
    finally:
        store.close()

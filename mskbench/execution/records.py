"""Turn one cell's predictions on one subject into table rows (plain dicts, no run id, no database).

Every round is scored (slice and subject rows carry ``round``); an
interactive cell adds its derived metrics (:mod:`mskbench.interaction.summary`)
as subject rows of the final round. Predicted biomarkers are measured on the
final round, or on every round with ``[biomarkers] rounds = "all"``; reference
biomarkers do not depend on the round and are stored once with round NULL.
The QC thumbnail uses the final round. Every metric and biomarker row carries
``reference_extent_used``: whether the cell's model used the reference's
extent (see :func:`extent_used`).
"""

from __future__ import annotations

import dataclasses
import resource
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mskbench.data.preprocess import PreparedSubject, take_slice
from mskbench.interaction.summary import interaction_summary
from mskbench.plan import PlannedBiomarker
from mskbench.protocols import Metric
from mskbench.scoring import score_subject
from mskbench.store import to_json
from mskbench.types import Prompt

Rows = dict[str, list[dict[str, Any]]]


@dataclass
class CellPrediction:
    """What a model produced for one cell: per round, label -> bool volume; the prompts of every round."""

    rounds: list[dict[int, np.ndarray]]
    prompts: list[Prompt]
    timings: list[tuple[int, int, str, float]] = field(default_factory=list)  # round, slice, stage, seconds
    prompt_seconds: float = 0.0
    interactive: bool = False
    peak_gpu_memory_mb: float | None = None  # the model's peak on this subject, on CUDA only


@dataclass(frozen=True)
class CellRecords:
    """The rows of one (subject, cell), ready for the single writer."""

    cell_id: str
    dataset: str
    subject_id: str
    tables: Rows


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def label_volume(masks: dict[int, np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
    """One label volume from per-label bool masks; where masks overlap the higher label id wins."""
    out = np.zeros(shape, dtype=np.int32)
    for label_id in sorted(masks):
        out[masks[label_id]] = label_id
    return out


def biomarker_rows(
    biomarkers: Sequence[PlannedBiomarker], labels: np.ndarray, prepared: PreparedSubject, source: str
) -> list[dict[str, Any]]:
    rows = []
    for item in biomarkers:
        for value in item.biomarker.compute(labels, prepared.subject, item.structures, prepared.axis):
            rows.append({
                "structure": value.structure, "biomarker": value.biomarker, "method": value.method,
                "source": source, "instance": value.instance, "value": value.value, "unit": value.unit,
            })
    return rows


def _predicted_biomarkers(biomarkers: Sequence[PlannedBiomarker], rounds: Sequence[dict[int, np.ndarray]],
                          prepared: PreparedSubject, every_round: bool) -> list[dict[str, Any]]:
    """Prediction rows with their ``round``: the final round, or each round when ``every_round``."""
    if not biomarkers:  # no label volume to build
        return []
    final = len(rounds) - 1
    chosen = range(len(rounds)) if every_round else [final]
    return [{**row, "round": r} for r in chosen
            for row in biomarker_rows(biomarkers, label_volume(rounds[r], prepared.labels.shape), prepared, "prediction")]


def _derived_rows(subject_rows: Sequence[dict[str, Any]], final_round: int, base: dict[str, Any]) -> list[dict[str, Any]]:
    """dsc_auc, nsd_auc, final_dsc, final_nsd, noc_80, noc_90 per label, from the per-round subject rows."""
    series: dict[tuple[int, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    state: dict[tuple[int, str], str] = {}
    tissue: dict[tuple[int, str], str | None] = {}
    for row in subject_rows:  # rows come round by round, so each list is in round order
        key = (row["label"], row["label_name"])
        series[key][row["metric"]].append(row["value"])
        tissue[key] = row.get("tissue")
        if row["round"] == final_round:
            state[key] = row["case_state"]
    out = []
    for (label, name), values in series.items():
        if "dice" not in values:
            continue
        for metric, value in interaction_summary(values["dice"], values.get("nsd")).items():
            out.append({
                **base, "round": final_round, "label": label, "label_name": name, "tissue": tissue[(label, name)],
                "case_state": state[(label, name)],
                "metric": metric, "value": value, "substituted": False, "slice_mean": float("nan"), "n_slices": 0,
            })
    return out


def _prompt_rows(base: dict[str, Any], prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
    rows, counters = [], defaultdict(int)
    for p in prompts:
        key = (p.slice_index, p.round)
        box = p.box or (None, None, None, None)
        extent = p.extent or (None, None)
        rows.append({
            **base, "slice_index": p.slice_index, "round": p.round, "prompt_index": counters[key], "label": p.label,
            "instance": p.instance, "kind": p.kind, "x_min": box[0], "y_min": box[1], "x_max": box[2], "y_max": box[3],
            "points": to_json([list(pt) for pt in p.points]), "point_labels": to_json(list(p.point_labels)),
            "prompter": p.prompter, "seed": p.seed, "score": p.score, "detector_class": p.detector_class,
            "clipped": p.clipped, "first_slice": extent[0], "last_slice": extent[1],
        })
        counters[key] += 1
    return rows


def extent_used(model: Any, prompts: Sequence[Prompt]) -> bool:
    """Whether a cell's rows rest on the reference's extent beyond the prompt (a leak of ground truth).

    A model that confines its output to a ``box3d`` prompt's ``extent`` (the
    reference's first and last slice along the slicing axis) says so with
    ``uses_reference_extent = True``; it used the extent wherever the cell's
    prompts carried one.
    """
    return bool(getattr(model, "uses_reference_extent", False)) and any(p.extent is not None for p in prompts)


def cell_records(
    prepared: PreparedSubject, cell_id: str, dataset: str, prediction: CellPrediction, metrics: Sequence[Metric],
    metric_names: Sequence[str] | None, biomarkers: Sequence[PlannedBiomarker],
    reference_biomarkers: Sequence[dict[str, Any]], qc: bool, detector: bool, biomarker_rounds: str = "final",
    reference_extent_used: bool = False,
) -> CellRecords:
    """Score every round and assemble the rows of one (subject, cell); ``reference_extent_used`` flags its
    metric and biomarker rows (all of them, the reference's biomarkers included: they belong to the cell)."""
    subject = prepared.subject
    base = {"cell_id": cell_id, "subject_id": subject.id}
    scored = {**base, "reference_extent_used": bool(reference_extent_used)}
    tables: Rows = defaultdict(list)
    labels = [subject.label_map[i] for i in sorted(subject.label_map)]
    began = time.perf_counter()
    all_subject_rows = []
    for r, predictions in enumerate(prediction.rounds):
        slice_rows, subject_rows = score_subject(
            prepared.labels, predictions, labels, prepared.slice_indices, prepared.axis, subject.spacing,
            metrics, {**scored, "round": r}, metric_names, prepared.removed_labels,
        )
        tables["slice_metrics"].extend(slice_rows)
        all_subject_rows.extend(subject_rows)
    if prediction.interactive:
        all_subject_rows.extend(_derived_rows(all_subject_rows, len(prediction.rounds) - 1, scored))
    tables["subject_metrics"] = all_subject_rows
    metric_seconds = time.perf_counter() - began

    began = time.perf_counter()
    predicted_biomarkers = _predicted_biomarkers(biomarkers, prediction.rounds, prepared, biomarker_rounds == "all")
    biomarker_seconds = time.perf_counter() - began
    reference_rows = [{**row, "round": None} for row in reference_biomarkers]
    tables["biomarkers"] = [{**scored, **row} for row in [*reference_rows, *predicted_biomarkers]]
    tables["prompts"] = _prompt_rows(base, prediction.prompts)
    if detector:
        tables["detections"] = _detection_rows(base, prepared, prediction.prompts)
    peak = {"peak_memory_mb": peak_memory_mb(), "peak_gpu_memory_mb": prediction.peak_gpu_memory_mb}
    tables["timings"] = [
        {**base, "round": r, "slice_index": k, "stage": stage, "seconds": seconds, **peak}
        for r, k, stage, seconds in prediction.timings
    ] + [
        {**base, "round": 0, "slice_index": -1, "stage": stage, "seconds": seconds, **peak}
        for stage, seconds in (("prompt", prediction.prompt_seconds), ("metrics", metric_seconds),
                               ("biomarkers", biomarker_seconds))
    ]
    if qc and prepared.slice_indices:
        tables["qc_slices"] = [_qc_row(base, prepared, label_volume(prediction.rounds[-1], prepared.labels.shape))]
    return CellRecords(cell_id, dataset, subject.id, dict(tables))


def _detection_rows(base: dict[str, Any], prepared: PreparedSubject, prompts: Sequence[Prompt]) -> list[dict[str, Any]]:
    from mskbench.prompting.detections import detection_records

    by_slice: dict[int, list[Prompt]] = {k: [] for k in prepared.slice_indices}
    for p in prompts:
        by_slice.setdefault(p.slice_index, []).append(p)
    rows = []
    for k, slice_prompts in by_slice.items():
        reference = take_slice(prepared.labels, prepared.axis, k)
        for record in detection_records(slice_prompts, reference, sorted(prepared.subject.label_map)):
            rows.append({**base, "slice_index": k, **dataclasses.asdict(record)})
    return rows


def _qc_row(base: dict[str, Any], prepared: PreparedSubject, predicted_labels: np.ndarray) -> dict[str, Any]:
    """A thumbnail of the slice with the most reference foreground, for the report's QC overlays."""
    from mskbench.report.qc import encode_qc_slice

    axis = prepared.axis
    k = max(prepared.slice_indices, key=lambda i: int(np.count_nonzero(take_slice(prepared.labels, axis, i))))
    image = take_slice(prepared.image, axis, k)
    thumbnail = encode_qc_slice(image, take_slice(prepared.labels, axis, k), take_slice(predicted_labels, axis, k))
    return {**base, "slice_index": k, **thumbnail}

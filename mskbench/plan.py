"""Turn a validated suite into a plan: the cells and the plugin objects they use.

Everything that can be checked without touching data happens here, so a bad
suite fails before the first subject is loaded: plugin names, params,
checkpoints (through each model's preflight), prompt-kind compatibility.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mskbench.data.labels import select_labels
from mskbench.data.preprocess import PreprocessConfig, parse_physical
from mskbench.errors import CheckpointError, DataError, PluginError, SuiteError
from mskbench.model_kinds import ModelKind, declared_kind, pair_problem
from mskbench.params import suggest
from mskbench.plugin_manager import PluginInfo, Registry
from mskbench.protocols import Biomarker, Dataset, Metric, Prompter
from mskbench.suite import DatasetEntry, ModelEntry, PrompterEntry, Suite
from mskbench.training.card import ModelCard
from mskbench.training.guard import check_leakage, model_card
from mskbench.types import LabelInfo, Subject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    """One dataset × model × prompter × seed combination."""

    dataset: str
    model: str
    prompter: str
    seed: int

    @property
    def cell_id(self) -> str:
        return f"{self.dataset}:{self.model}:{self.prompter}:{self.seed}"


@dataclass
class PlannedModel:
    entry: ModelEntry
    info: PluginInfo
    params: dict[str, Any]
    kind: ModelKind
    skip_reason: str | None = None
    card: ModelCard | None = None  # the training card beside its checkpoint (mskbench.training.card)


@dataclass
class PlannedBiomarker:
    name: str
    plugin: str
    biomarker: Biomarker
    structures: list[LabelInfo]


@dataclass
class PlannedDataset:
    """A dataset of the plan; ``label_map`` is after the suite's label selection and merges."""

    entry: DatasetEntry
    info: PluginInfo
    params: dict[str, Any]
    dataset: Dataset
    preprocess: PreprocessConfig
    label_map: dict[int, LabelInfo]
    biomarkers: list[PlannedBiomarker] = field(default_factory=list)


@dataclass
class Plan:
    suite: Suite
    cells: list[Cell]
    skipped: dict[str, str]  # cell_id -> reason
    datasets: dict[str, PlannedDataset]
    models: dict[str, PlannedModel]
    prompters: dict[str, Prompter]
    prompter_entries: dict[str, PrompterEntry]
    metrics: list[Metric]

    def cells_for(self, dataset: str) -> list[Cell]:
        return [cell for cell in self.cells if cell.dataset == dataset]

    def resolved_config(self) -> dict[str, Any]:
        """The suite with every plugin's defaults filled in, for the manifest."""
        return {
            "suite": self.suite.config,
            "datasets": {name: d.params for name, d in self.datasets.items()},
            "preprocess": {name: d.preprocess.describe() for name, d in self.datasets.items()},
            "models": {name: m.params for name, m in self.models.items()},
            "prompters": {name: e.params for name, e in self.prompter_entries.items()},
        }


def construct(info: PluginInfo, params: dict[str, Any], where: str, **extra: Any) -> Any:
    """Call a plugin's factory with validated params; its argument errors become one line."""
    try:
        return info.factory(**params, **extra)
    except (TypeError, ValueError, FileNotFoundError) as exc:
        raise PluginError(f"{where}: cannot create {info.kind} '{info.name}': {exc}") from None


def _create(registry: Registry, kind: str, name: str, params: dict[str, Any], where: str) -> Any:
    info = registry.get(kind, name, where)
    return construct(info, registry.resolve_params(kind, name, params, where), where)


def _plan_metrics(suite: Suite, registry: Registry) -> list[Metric]:
    metrics: list[Metric] = []
    provided: list[str] = []
    for info in registry.of_kind("metric"):
        params = suite.metric_params.get(info.name, {})
        metric = _create(registry, "metric", info.name, params, f"metrics.params.{info.name}")
        wanted = suite.metric_names is None or any(n in suite.metric_names for n in metric.names)
        provided.extend(metric.names)
        if wanted:
            metrics.append(metric)
    for key in suite.metric_params:
        registry.get("metric", key, f"metrics.params.{key}")
    for name in suite.metric_names or ():
        if name not in provided:
            raise SuiteError(f"metrics.names: unknown metric '{name}'{suggest(name, provided)}; available: {', '.join(provided)}")
    return metrics


def preprocess_config(entry: DatasetEntry) -> PreprocessConfig:
    """The dataset's `[datasets.preprocess]` table as a checked config.

    Small-object thresholds: ``min_object_mm2`` / ``min_object_mm3`` take a
    number (mm² / mm³) or a string with a unit (``"25 mm2"``, ``"0.125 ml"``);
    ``min_object_pixels`` / ``min_object_voxels`` take a whole number of
    voxels. Giving both forms of one threshold, a unit that does not parse or
    a negative value fails the plan with one line naming the key.
    """
    values = dict(entry.preprocess)
    where = f"datasets.{entry.name}.preprocess"
    if "clip_percentiles" in values:
        clip = values["clip_percentiles"]
        if not (isinstance(clip, list) and len(clip) == 2 and all(isinstance(v, (int, float)) for v in clip)):
            raise SuiteError(f"{where}.clip_percentiles: expected two numbers like [0.5, 99.5], got {clip!r}")
        values["clip_percentiles"] = tuple(float(v) for v in clip)
    for physical, voxels, kind in (
        ("min_object_mm2", "min_object_pixels", "area"), ("min_object_mm3", "min_object_voxels", "volume")
    ):
        if physical in values and voxels in values:
            raise SuiteError(
                f"{where}: {physical} and {voxels} are both set; keep one: {physical} (physical size, scales "
                f"with the spacing) or {voxels} (a voxel count, to reproduce a voxel rule exactly)"
            )
        if voxels in values:
            count = values[voxels]
            if not isinstance(count, int) or isinstance(count, bool):
                raise SuiteError(f"{where}.{voxels}: expected a whole number of voxels, got {count!r}")
            if count < 0:
                raise SuiteError(f"{where}.{voxels}: {count} is negative; use a count >= 0 (0 disables the removal)")
        if physical in values:
            try:
                values[physical] = parse_physical(values[physical], kind)
            except DataError as exc:
                raise SuiteError(f"{where}.{physical}: {exc}") from None
    if "include_empty_slices" in values and not isinstance(values["include_empty_slices"], bool):
        raise SuiteError(f"{where}.include_empty_slices: expected true or false")
    try:
        return PreprocessConfig(**values)
    except DataError as exc:
        raise SuiteError(f"{where}: {exc}") from None


def selected_label_map(entry: DatasetEntry, label_map: dict[int, LabelInfo]) -> dict[int, LabelInfo]:
    """The label map after the suite's `labels` / `merge`; unknown names fail the plan."""
    if entry.labels is None and not entry.merge:
        return dict(label_map)
    probe = Subject(
        id="(plan)", volume=np.zeros((1, 1, 1), np.float32), labels=np.zeros((1, 1, 1), np.int32),
        spacing=(1.0, 1.0, 1.0), affine=np.eye(4), label_map=dict(label_map),
    )
    try:
        return select_labels(probe, entry.labels, entry.merge or None).label_map
    except DataError as exc:
        raise SuiteError(f"datasets.{entry.name}: {exc}") from None


def _plan_biomarkers(
    suite: Suite, registry: Registry, dataset: Dataset, label_map: dict[int, LabelInfo], where: str
) -> list[PlannedBiomarker]:
    if not suite.biomarkers_enabled:
        return []
    if suite.biomarkers is None:
        return default_biomarker_plan(registry, getattr(dataset, "anatomy", None), label_map, where)
    entries = [(b.name, b.plugin, b.labels, b.tissues, b.params) for b in suite.biomarkers]
    return _biomarker_plan(registry, entries, label_map, where)


def default_biomarker_plan(
    registry: Registry, anatomy: str | None, label_map: dict[int, LabelInfo], where: str
) -> list[PlannedBiomarker]:
    """The anatomy's default biomarkers (:func:`mskbench.biomarkers.selection.default_biomarkers`) on these labels."""
    from mskbench.biomarkers.selection import default_biomarkers

    entries = [
        (name, spec.get("plugin", name), spec.get("labels"), spec.get("tissues"), spec.get("params", {}))
        for name, spec in default_biomarkers(anatomy).items()
    ]
    return _biomarker_plan(registry, entries, label_map, where)


def _biomarker_plan(
    registry: Registry, entries: list[tuple[str, str, Any, Any, dict[str, Any]]], label_map: dict[int, LabelInfo],
    where: str,
) -> list[PlannedBiomarker]:
    from mskbench.biomarkers.selection import select_structures

    planned = []
    for name, plugin, labels, tissues, params in entries:
        structures = select_structures(label_map, names=labels, tissues=tissues, default_for=plugin)
        if not structures:
            log.info("%s: biomarker %s has no matching labels; left out", where, name)
            continue
        biomarker = _create(registry, "biomarker", plugin, params, f"biomarkers.{name}")
        planned.append(PlannedBiomarker(name, plugin, biomarker, structures))
    return planned


def _plan_model(entry: ModelEntry, index: int, registry: Registry) -> PlannedModel:
    where = f"models[{index}]"
    info = registry.get("model", entry.plugin, where)
    params = registry.resolve_params("model", entry.plugin, entry.params, where)
    planned = PlannedModel(entry, info, params, declared_kind(info.factory, f"{where} ({entry.name})"),
                           card=model_card(entry, where))
    if info.preflight is not None:
        try:
            info.preflight(params, entry.checkpoint)
        except CheckpointError as exc:
            if entry.on_missing_checkpoint == "error":
                raise CheckpointError(f"{where} ({entry.name}): {exc}") from None
            planned.skip_reason = str(exc)
            log.warning("skipping model %s: %s", entry.name, exc)
    return planned


def _check_postprocess_labels(suite: Suite, datasets: dict[str, PlannedDataset]) -> None:
    """A per-label closing kernel must name a label some dataset of the suite evaluates."""
    known = sorted({info.name for planned in datasets.values() for info in planned.label_map.values()})
    for i, entry in enumerate(suite.models):
        for name in entry.postprocess.closing_px_by_label:
            if name not in known:
                raise SuiteError(
                    f"models[{i}].postprocess.closing_px_by_label.{name}: no dataset of the suite has this label"
                    f"{suggest(name, known)}; labels: {', '.join(known)}"
                )


def _check_detector_labels(planned: PlannedDataset, prompters: dict[str, Prompter]) -> None:
    """A detector trained for another label set fails the plan, not the first slice."""
    for prompter in prompters.values():
        check = getattr(prompter, "check_label_map", None)
        if check is not None:
            check(planned.label_map)


def _check_model_labels(name: str, planned: PlannedDataset, models: dict[str, PlannedModel]) -> None:
    """A model trained for other labels (an nnU-Net's dataset.json) fails the plan, not the first subject.

    A factory that knows its labels declares ``check_label_map(params, label_map)``.
    """
    for model_name, model in models.items():
        check = getattr(model.info.factory, "check_label_map", None)
        if check is None or model.skip_reason or not runs_on(model.entry, name):
            continue
        try:
            check(model.params, planned.label_map)
        except PluginError as exc:
            raise PluginError(f"model '{model_name}' on dataset '{name}': {exc}") from None


def runs_on(entry: ModelEntry, dataset: str) -> bool:
    """Whether the model's `datasets` list (absent: every dataset) includes ``dataset``."""
    return entry.datasets is None or dataset in entry.datasets


def subject_ids(planned: PlannedDataset, limit_subjects: int | None) -> list[str]:
    """The dataset's subjects in the suite's split, cut to the tightest subject limit."""
    entry = planned.entry
    ids = planned.dataset.subject_ids(None if entry.split == "all" else entry.split)
    limits = [n for n in (entry.limit_subjects, limit_subjects) if n is not None]
    return ids[: min(limits)] if limits else ids


def supported_prompts(info: PluginInfo) -> frozenset[str] | None:
    """What a model accepts, read from its factory without building the model."""
    value = getattr(info.factory, "supported_prompts", None)
    return frozenset(value) if value is not None else None


def _check_every_model_has_cells(suite: Suite, cells: list[Cell]) -> None:
    """An empty plan, or a model left without any prompter, is a suite mistake, not a run that writes nothing."""
    with_cells = {cell.model for cell in cells}
    for index, entry in enumerate(suite.models):
        if entry.name not in with_cells:
            raise SuiteError(
                f"models[{index}] ({entry.name}): no cell left for this model: every prompter was left out by its "
                f"`prompters` list or by only_supported = true on the datasets its `datasets` list allows; give it "
                f"a prompter it can take or remove the model"
            )
    if not cells:
        raise SuiteError("the plan has no cells; a suite needs at least one dataset × model × prompter × seed")


def build_plan(suite: Suite, registry: Registry) -> Plan:
    """Validate every plugin reference of the suite and enumerate its cells."""
    datasets: dict[str, PlannedDataset] = {}
    for i, entry in enumerate(suite.datasets):
        where = f"datasets[{i}]"
        info = registry.get("dataset", entry.plugin, where)
        params = registry.resolve_params("dataset", entry.plugin, entry.params, where)
        dataset = construct(info, params, where)
        datasets[entry.name] = PlannedDataset(
            entry, info, params, dataset, preprocess_config(entry), selected_label_map(entry, dataset.label_map)
        )
    models = {entry.name: _plan_model(entry, i, registry) for i, entry in enumerate(suite.models)}
    prompters: dict[str, Prompter] = {}
    for i, entry in enumerate(suite.prompters):
        prompters[entry.name] = _create(registry, "prompter", entry.plugin, entry.params, f"prompters[{i}]")
    metrics = _plan_metrics(suite, registry)
    for name, planned in datasets.items():
        planned.biomarkers = _plan_biomarkers(suite, registry, planned.dataset, planned.label_map, f"datasets.{name}")
        _check_detector_labels(planned, prompters)
        _check_model_labels(name, planned, models)

    cells: list[Cell] = []
    skipped: dict[str, str] = {}
    prompter_entries = {p.name: p for p in suite.prompters}
    for dataset_name, planned_dataset in datasets.items():
        for model_index, (model_name, model) in enumerate(models.items()):
            if not runs_on(model.entry, dataset_name):
                continue
            if model.card is not None:
                check_leakage(model.entry, f"models[{model_index}]", model.card, planned_dataset.entry,
                              planned_dataset.params, subject_ids(planned_dataset, None))
            accepts = supported_prompts(model.info)
            for prompter_name, prompter in prompters.items():
                if model.entry.prompters is not None and prompter_name not in model.entry.prompters:
                    continue
                mismatch = pair_problem(
                    model_name, model.kind, accepts, model.entry.per_slice, prompter_name, prompter
                )
                if mismatch:
                    if prompter_entries[prompter_name].only_supported:
                        continue
                    raise SuiteError(f"models[{model_index}]: {mismatch}")
                for seed in suite.seeds:
                    cell = Cell(dataset_name, model_name, prompter_name, seed)
                    cells.append(cell)
                    if model.skip_reason:
                        skipped[cell.cell_id] = model.skip_reason
    _check_every_model_has_cells(suite, cells)
    _check_postprocess_labels(suite, datasets)
    return Plan(suite, cells, skipped, datasets, models, prompters, prompter_entries, metrics)

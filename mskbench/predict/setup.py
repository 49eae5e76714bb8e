"""What `mskbench predict` runs: a model, a reference-free prompter, labels, preprocessing, post-processing.

Two ways in, one result (:class:`PredictSetup`): a suite's model, prompter
and dataset entries (``--suite S --model M``: the very objects `mskbench run`
builds, so both paths agree), or plugin names and params on the command line.
Everything is checked before any study is read: a prompter that reads the
reference (predict has none), a model that cannot take the prompter, a
detector trained for other labels.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mskbench.data.labels import label_map_from_names
from mskbench.data.preprocess import PreprocessConfig
from mskbench.errors import UserError
from mskbench.model_kinds import declared_kind, pair_problem
from mskbench.params import suggest, validate_params
from mskbench.plan import (
    PlannedBiomarker,
    PlannedDataset,
    PlannedModel,
    construct,
    default_biomarker_plan,
    supported_prompts,
)
from mskbench.postprocess import POSTPROCESS_SCHEMA, Postprocess
from mskbench.suite import ModelEntry
from mskbench.types import LabelInfo

#: The name prompt seeds are derived from when no suite dataset names the studies.
PREDICT_DATASET = "predict"


@dataclass
class PredictSetup:
    """A checked model + prompter + label map; ``dataset`` and ``seed`` derive the prompt seeds as a suite would."""

    model: PlannedModel
    prompter_name: str
    prompter: Any
    prompter_plugin: str
    prompter_params: dict[str, Any]
    label_map: dict[int, LabelInfo]
    dataset: str
    seed: int
    slice_axis: str
    preprocess: PreprocessConfig
    biomarkers: list[PlannedBiomarker]
    device: str
    planned_dataset: PlannedDataset | None = None  # --suite mode: its subjects can be the inputs

    def build_model(self) -> Any:
        """The model object, checked against the prompter as the runner checks it."""
        entry = self.model.entry
        model = construct(self.model.info, self.model.params, f"--model {entry.name}", device=self.device,
                          checkpoint=entry.checkpoint)
        _check_pair(self, frozenset(model.supported_prompts))
        return model


def parse_json_option(text: str | None, option: str) -> dict[str, Any]:
    """A ``{...}`` option value as a dict; anything else is one line naming the option."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UserError(f"{option} {text!r}: not valid JSON ({exc}); write e.g. {option} '{{\"key\": 1}}'") from None
    if not isinstance(value, dict):
        raise UserError(f"{option} {text!r}: expected a JSON object like '{{\"key\": 1}}'")
    return value


def parse_labels(text: str) -> dict[int, LabelInfo]:
    """``"1=femur,2=tibia"`` -> a label map; tissue classes are guessed from the names."""
    names: dict[int, str] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        label, _, name = part.partition("=")
        if not label.strip().isdigit() or not name.strip() or int(label) == 0:
            raise UserError(f"--labels {text!r}: '{part}' is not ID=NAME with ID >= 1; write e.g. --labels 1=femur,2=tibia")
        names[int(label)] = name.strip()
    if not names:
        raise UserError(f"--labels {text!r}: no labels; write e.g. --labels 1=femur,2=tibia")
    return label_map_from_names(names)


def _reference_free(prompter: Any) -> bool:
    return bool(getattr(prompter, "reference_free", False))


def _check_pair(setup: PredictSetup, accepts: frozenset[str] | None) -> None:
    entry = setup.model.entry
    problem = pair_problem(entry.name, setup.model.kind, accepts, entry.per_slice, setup.prompter_name, setup.prompter)
    if problem:
        raise UserError(problem)


def _check(setup: PredictSetup, suite_prompters: dict[str, Any] | None = None) -> PredictSetup:
    """Refuse what predict cannot do before reading any study."""
    if not _reference_free(setup.prompter):
        usable = sorted(name for name, p in (suite_prompters or {}).items() if _reference_free(p))
        in_suite = f"; this suite's reference-free prompters: {', '.join(usable)}" if usable else ""
        raise UserError(
            f"prompter '{setup.prompter_name}' (plugin {setup.prompter_plugin}) places its prompts from the reference "
            f"labels, which predict does not have; use a prompter that needs no reference: none (automatic models), "
            f"a detector (--prompter yolo --detector WEIGHTS.pt) or your own boxes (--prompter box3d-from-file)"
            f"{in_suite}"
        )
    _check_pair(setup, supported_prompts(setup.model.info))
    check_detector = getattr(setup.prompter, "check_label_map", None)
    if check_detector is not None:
        check_detector(setup.label_map)
    check_model = getattr(setup.model.info.factory, "check_label_map", None)
    if check_model is not None:
        check_model(setup.model.params, setup.label_map)
    return setup


def _device(requested: str | None, planned: PlannedModel) -> str:
    from mskbench.device import resolve_device

    needs_torch = "torch" in planned.info.requires or "checkpoint" in planned.info.requires
    return resolve_device(requested or "auto", needs_torch)


def from_options(
    model: str, model_params: dict[str, Any], checkpoint: str | None, prompter: str, prompter_params: dict[str, Any],
    labels: str | None, postprocess: dict[str, Any], slice_axis: str, anatomy: str | None, device: str | None,
    registry: Any, per_slice: bool = False,
) -> PredictSetup:
    """A setup from plugin names and params; labels from ``--labels`` or the detector's card."""
    info = registry.get("model", model, "--model")
    params = registry.resolve_params("model", model, model_params, "--model")
    post = Postprocess.from_table(
        validate_params(POSTPROCESS_SCHEMA, postprocess, "--postprocess", noun="key", error=UserError), "--postprocess"
    )
    planned = PlannedModel(ModelEntry(model, model, params, checkpoint, "error", postprocess=post,
                                      per_slice=per_slice), info, params,
                           declared_kind(info.factory, f"--model {model}"))
    if info.preflight is not None:
        info.preflight(params, checkpoint)
    prompter_info = registry.get("prompter", prompter, "--prompter")
    resolved = registry.resolve_params("prompter", prompter, prompter_params, "--prompter")
    prompter_object = construct(prompter_info, resolved, f"--prompter {prompter}")
    card = getattr(prompter_object, "card", None)
    if labels:
        label_map = parse_labels(labels)
    elif card is not None:
        label_map = label_map_from_names(card.label_names)
    else:
        raise UserError(
            f"--model {model}: which labels to predict is unknown; give --labels 1=NAME,2=NAME,... "
            "(or use a detector, whose card names its labels, or --suite with a dataset entry)"
        )
    biomarkers = default_biomarker_plan(registry, anatomy, label_map, "--biomarkers")
    setup = PredictSetup(
        planned, prompter, prompter_object, prompter, resolved, label_map, PREDICT_DATASET, 0, slice_axis,
        dataclasses.replace(PreprocessConfig(), include_empty_slices=True), biomarkers, _device(device, planned),
    )
    return _check(setup)


def from_suite(
    suite_path: Path, model: str, prompter: str | None, dataset: str | None, device: str | None, registry: Any
) -> PredictSetup:
    """The suite's model entry (params, checkpoint, post-processing) with one of its prompters, and one dataset
    entry's labels, slice axis and preprocessing (every slice is predicted, not only those with reference labels)."""
    from mskbench.plan import build_plan, runs_on
    from mskbench.suite import load_suite

    plan = build_plan(load_suite(suite_path), registry)
    where = f"--suite {suite_path}"
    if model not in plan.models:
        names = list(plan.models)
        raise UserError(f"{where}: no model '{model}'{suggest(model, names)}; models: {', '.join(names)}")
    planned = plan.models[model]
    if planned.skip_reason:
        raise UserError(f"{where}: model '{model}' cannot run: {planned.skip_reason}")
    names = list(plan.datasets)
    if dataset is None and len(names) > 1:
        raise UserError(f"{where}: the suite has datasets {', '.join(names)}; choose one with --dataset NAME")
    dataset = dataset or names[0]
    if dataset not in plan.datasets:
        raise UserError(f"{where}: no dataset '{dataset}'{suggest(dataset, names)}; datasets: {', '.join(names)}")
    if not runs_on(planned.entry, dataset):
        raise UserError(f"{where}: model '{model}' runs only on {', '.join(planned.entry.datasets)} (its `datasets` "
                        "list); choose one of those with --dataset NAME")
    chosen = _suite_prompter(plan, model, dataset, prompter, where)
    planned_dataset = plan.datasets[dataset]
    entry = planned_dataset.entry
    setup = PredictSetup(
        planned, chosen, plan.prompters[chosen], plan.prompter_entries[chosen].plugin,
        plan.prompter_entries[chosen].params, planned_dataset.label_map, dataset, plan.suite.seed,
        entry.slice_axis or planned_dataset.dataset.slice_axis,
        dataclasses.replace(planned_dataset.preprocess, include_empty_slices=True), planned_dataset.biomarkers,
        _device(device or plan.suite.device, planned), planned_dataset,
    )
    return _check(setup, plan.prompters)


def _suite_prompter(plan: Any, model: str, dataset: str, prompter: str | None, where: str) -> str:
    """``--prompter``, or the one reference-free prompter the suite pairs with the model."""
    if prompter is not None:
        if prompter not in plan.prompters:
            names = list(plan.prompters)
            raise UserError(f"{where}: no prompter '{prompter}'{suggest(prompter, names)}; prompters: {', '.join(names)}")
        return prompter
    paired = sorted({c.prompter for c in plan.cells if c.model == model and c.dataset == dataset})
    usable = [name for name in paired if _reference_free(plan.prompters[name])]
    if len(usable) == 1:
        return usable[0]
    if not usable:
        raise UserError(
            f"{where}: model '{model}' has no reference-free prompter in the suite (its prompters: {', '.join(paired)}); "
            "add a `none`, `yolo` or `box3d-from-file` prompter entry, or predict without --suite"
        )
    raise UserError(f"{where}: model '{model}' has several reference-free prompters ({', '.join(usable)}); "
                    "choose one with --prompter NAME")

"""Parse and validate suite TOML files (docs/suites.md is the user-facing schema).

Reading resolves ``include`` inheritance and ``${ENV}`` (and ``${SUITE_DIR}``)
interpolation, then checks every key against the schemas below so a typo is
reported with its key path and the nearest valid key, and a value of the wrong
type or out of range with its key path, before any work starts. The schemas are
:class:`mskbench.params.Param` tables checked by
:func:`mskbench.params.validate_params`, the mechanism plugin params use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mskbench.errors import SuiteError
from mskbench.params import Param, ParamsSchema, check_value, suggest, validate_params
from mskbench.postprocess import POSTPROCESS_SCHEMA, Postprocess

MAX_SEED = 2**31 - 1
DEFAULT_DB = "results/mskbench.duckdb"
EXECUTOR = Param("str", "local", choices=("local", "processes", "ray"), help="where subjects are computed (docs/scaling.md)")
DEVICE = Param("str", "auto", help="auto, cpu, cuda or cuda:N", pattern=r"auto|cpu|cuda(:[0-9]+)?")
_SLICE_AXES = ("axial", "sagittal", "coronal", "through_plane")
_SPLITS = ("train", "val", "test", "all")
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = Param("str", None, help="must be non-empty and must not contain ':' (cell ids join names with it)",
              pattern=r"[^:]+")
_NAMES = Param("list", None, items="str", min_items=1)

# The suite's own tables, declared like plugin params and checked by the same
# `validate_params` (docs/suites.md lists them). A `dict` param is a free-form
# table (a plugin's params) checked later against that plugin's schema.
TOP_SCHEMA: ParamsSchema = {
    "include": Param("list", None, items="str", help="other suite files merged first (read before validation)"),
    "suite": Param("dict", {}),
    "datasets": Param("list", [], items="dict"),
    "models": Param("list", [], items="dict"),
    "prompters": Param("list", [], items="dict"),
    "metrics": Param("dict", {}),
    "biomarkers": Param("dict", None),
    "output": Param("dict", {}),
}
SUITE_SCHEMA: ParamsSchema = {
    "name": Param("str", None, help="recorded in runs.suite_name (default: the file's stem)", pattern=r".*\S.*"),
    "description": Param("str", ""),
    "seed": Param("int", 0, minimum=0, maximum=MAX_SEED),
    "seeds": Param("list", None, items="int", min_items=1, minimum=0, maximum=MAX_SEED),
    "device": DEVICE,
    "executor": EXECUTOR,
    "workers": Param("int", None, minimum=1, help="worker processes or Ray actors (default: the CPU count)"),
    "ray_address": Param("str", None, help="an existing Ray cluster, host:port (default: start Ray locally)"),
}
# how a suite is executed never changes its results, so it is no part of the suite's identity (--resume)
EXECUTION_KEYS = ("executor", "workers", "ray_address")
DATASET_SCHEMA: ParamsSchema = {
    "name": _NAME,
    "plugin": Param("str"),
    "params": Param("dict", {}),
    "split": Param("str", "test", choices=_SPLITS),
    "slice_axis": Param("str", None, choices=_SLICE_AXES),
    "labels": _NAMES,
    "merge": Param("dict", {}),
    "preprocess": Param("dict", {}),
    "limit_subjects": Param("int", None, minimum=1),
}
_MERGE_ENTRY = Param("list", items="str", min_items=1)
_PREPROCESS_KEYS = {
    "clip_percentiles", "min_object_mm2", "min_object_mm3", "min_object_pixels", "min_object_voxels",
    "include_empty_slices",
}
MODEL_SCHEMA: ParamsSchema = {
    "name": _NAME,
    "plugin": Param("str"),
    "params": Param("dict", {}),
    "checkpoint": Param("path", None),
    "on_missing_checkpoint": Param("str", "skip", choices=("skip", "error")),
    "batch_size": Param("int", 4, minimum=1),
    "prompters": _NAMES,
    "datasets": Param("list", None, items="str", min_items=1,
                      help="restrict this model to these dataset names (a model trained for one anatomy)"),
    "per_slice": Param("bool", False, help="a slice model takes box3d prompts as the key slice's box on every slice of the extent"),
    "postprocess": Param("dict", {}, help="post-processing of the predicted masks (docs/postprocess.md)"),
    "allow_training_subjects": Param("bool", False, help="score a fine-tuned model on subjects its card says it "
                                     "trained on (recorded on the cells; docs/training.md, leakage guard)"),
}
PROMPTER_SCHEMA: ParamsSchema = {
    "name": _NAME,
    "plugin": Param("str"),
    "params": Param("dict", {}),
    "only_supported": Param("bool", False),
}
METRICS_SCHEMA: ParamsSchema = {
    "names": _NAMES,
    "params": Param("dict", {}),
}
_METRIC_PARAMS = Param("dict")
BIOMARKERS_SWITCH: ParamsSchema = {
    "enabled": Param("bool", True),
    "rounds": Param("str", "final", choices=("final", "all"),
                    help="interactive prompters: measure the prediction of the final round only, or of every round"),
}
BIOMARKER_SCHEMA: ParamsSchema = {
    "plugin": Param("str", None),
    "labels": _NAMES,
    "tissues": _NAMES,
    "params": Param("dict", {}),
}
OUTPUT_SCHEMA: ParamsSchema = {
    "db": Param("path", DEFAULT_DB, help="results database (--db overrides)"),
    "embedding_cache": Param("path", None, help="on-disk embedding cache directory"),
    "embedding_cache_max_gb": Param("float", 2.0, minimum=0.001, help="the cache's size bound in GB"),
    "skip_bad_subjects": Param("bool", False, help="record unreadable subjects as skipped and go on"),
}


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    plugin: str
    params: dict[str, Any]
    split: str = "test"
    slice_axis: str | None = None
    labels: tuple[str, ...] | None = None
    merge: dict[str, tuple[str, ...]] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)
    limit_subjects: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    name: str
    plugin: str
    params: dict[str, Any]
    checkpoint: str | None = None
    on_missing_checkpoint: str = "skip"
    batch_size: int = 4
    prompters: tuple[str, ...] | None = None
    datasets: tuple[str, ...] | None = None  # None: every dataset of the suite
    per_slice: bool = False  # a slice model takes box3d prompts as the key slice's box on every slice of the extent
    postprocess: Postprocess = field(default_factory=Postprocess)
    allow_training_subjects: bool = False  # the leakage guard lets this model score its card's training subjects


@dataclass(frozen=True)
class PrompterEntry:
    name: str
    plugin: str
    params: dict[str, Any]
    only_supported: bool = False


@dataclass(frozen=True)
class BiomarkerEntry:
    name: str
    plugin: str
    labels: tuple[str, ...] | None = None
    tissues: tuple[str, ...] | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A validated suite; ``config`` is the resolved TOML as a plain dict (its hash identifies the suite),
    ``output`` the ``[output]`` table with its defaults filled in."""

    name: str
    description: str
    seeds: tuple[int, ...]
    device: str
    datasets: tuple[DatasetEntry, ...]
    models: tuple[ModelEntry, ...]
    prompters: tuple[PrompterEntry, ...]
    metric_names: tuple[str, ...] | None
    metric_params: dict[str, dict[str, Any]]
    biomarkers: tuple[BiomarkerEntry, ...] | None  # None: per-anatomy defaults
    biomarkers_enabled: bool
    biomarker_rounds: str  # "final" or "all"
    output: dict[str, Any]
    config: dict[str, Any]
    path: str
    executor: str = "local"
    workers: int | None = None
    ray_address: str | None = None

    @property
    def seed(self) -> int:
        return self.seeds[0]

    @property
    def hash(self) -> str:
        config = self.config
        if any(key in config.get("suite", {}) for key in EXECUTION_KEYS):
            config = {**config, "suite": {k: v for k, v in config["suite"].items() if k not in EXECUTION_KEYS}}
        canonical = json.dumps(config, sort_keys=True, default=str).encode()
        return hashlib.sha256(canonical).hexdigest()


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise SuiteError(
                f"{prefix}{key}: unknown key{suggest(key, sorted(allowed))}; valid keys: {', '.join(sorted(allowed))}"
            )


def _interpolate(value: Any, where: str, variables: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in variables:
                raise SuiteError(f"{where}: environment variable ${{{var}}} is not set; export it or edit the suite")
            return variables[var]

        return _ENV_PATTERN.sub(replace, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else k, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]", variables) for i, v in enumerate(value)]
    return value


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """Child tables override base tables key by key; arrays are replaced whole."""
    out = dict(base)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in chain:
        raise SuiteError(f"{path}: include cycle ({' -> '.join(str(p) for p in (*chain, path))}); remove one include")
    where = f" (included from {chain[-1]})" if chain else ""
    if not path.exists():
        raise SuiteError(f"{path}: suite file not found{where}; check the path")
    if path.is_dir():
        raise SuiteError(f"{path}: is a directory, not a suite file{where}; name the .toml file inside it")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: TOML syntax error: {exc}") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not a UTF-8 text file; a suite is a .toml file") from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite file{where}: {exc.strerror or exc}") from None
    includes = data.pop("include", None)
    if includes is None:
        return data
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise SuiteError(f"{path}: include must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for include in includes:
        merged = _merge(merged, _read_toml((path.parent / include).resolve(), (*chain, path)))
    return _merge(merged, data)


def _table(schema: ParamsSchema, table: Any, where: str) -> dict[str, Any]:
    """One suite table checked against its schema (the mechanism plugin params use), defaults filled in."""
    return validate_params(schema, table, where, noun="key", error=SuiteError)


def _strings(value: list[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SuiteError(f"{where}: name '{name}' is used twice; give each entry a unique name")
        seen.add(name)


def _parse_dataset(table: dict[str, Any], i: int) -> DatasetEntry:
    where = f"datasets[{i}]"
    values = _table(DATASET_SCHEMA, table, where)
    _check_keys(values["preprocess"], _PREPROCESS_KEYS, f"{where}.preprocess")
    merge = {
        name: tuple(check_value(_MERGE_ENTRY, members, f"{where}.merge.{name}", SuiteError))
        for name, members in values["merge"].items()
    }
    return DatasetEntry(
        name=values["name"] or values["plugin"],
        plugin=values["plugin"],
        params=values["params"],
        split=values["split"],
        slice_axis=values["slice_axis"],
        labels=_strings(values["labels"]),
        merge=merge,
        preprocess=values["preprocess"],
        limit_subjects=values["limit_subjects"],
    )


def _parse_model(table: dict[str, Any], i: int) -> ModelEntry:
    values = _table(MODEL_SCHEMA, table, f"models[{i}]")
    return ModelEntry(
        name=values["name"] or values["plugin"],
        plugin=values["plugin"],
        params=values["params"],
        checkpoint=values["checkpoint"],
        on_missing_checkpoint=values["on_missing_checkpoint"],
        batch_size=values["batch_size"],
        prompters=_strings(values["prompters"]),
        datasets=_strings(values["datasets"]),
        per_slice=values["per_slice"],
        postprocess=Postprocess.from_table(
            _table(POSTPROCESS_SCHEMA, values["postprocess"], f"models[{i}].postprocess"), f"models[{i}].postprocess"
        ),
        allow_training_subjects=values["allow_training_subjects"],
    )


def _parse_prompter(table: dict[str, Any], i: int) -> PrompterEntry:
    values = _table(PROMPTER_SCHEMA, table, f"prompters[{i}]")
    return PrompterEntry(
        name=values["name"] or values["plugin"],
        plugin=values["plugin"],
        params=values["params"],
        only_supported=values["only_supported"],
    )


def _parse_biomarkers(table: dict[str, Any] | None) -> tuple[tuple[BiomarkerEntry, ...] | None, dict[str, Any]]:
    """The biomarker entries (None: per-anatomy defaults) and the switches ``enabled`` and ``rounds``."""
    table = {} if table is None else table
    switches = _table(BIOMARKERS_SWITCH, {k: v for k, v in table.items() if k in BIOMARKERS_SWITCH}, "biomarkers")
    entries = []
    for name, entry in table.items():
        if name in BIOMARKERS_SWITCH:
            continue
        where = f"biomarkers.{name}"
        if not isinstance(entry, dict):
            raise SuiteError(f"{where}: expected a table ([{where}]), `enabled = false` or `rounds = \"all\"`, "
                             f"got {entry!r}")
        values = _table(BIOMARKER_SCHEMA, entry, where)
        entries.append(
            BiomarkerEntry(
                name=name,
                plugin=values["plugin"] or name,
                labels=_strings(values["labels"]),
                tissues=_strings(values["tissues"]),
                params=values["params"],
            )
        )
    return (tuple(entries) if entries else None), switches


def load_suite(path: str | Path) -> Suite:
    """Read, merge includes, interpolate ``${ENV}`` and check every key by type and range."""
    path = Path(path).resolve()
    # ${SUITE_DIR}: files shipped next to a suite (a model folder) are found whatever the working directory
    config = _interpolate(_read_toml(path), "", {**os.environ, "SUITE_DIR": str(path.parent)})
    top = _table(TOP_SCHEMA, config, "")
    head = _table(SUITE_SCHEMA, top["suite"], "suite")
    seeds = head["seeds"] if head["seeds"] is not None else [head["seed"]]
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"suite.seeds: {seeds} repeats a seed; each seed is one repetition of every cell")

    datasets = [_parse_dataset(t, i) for i, t in enumerate(top["datasets"])]
    models = [_parse_model(t, i) for i, t in enumerate(top["models"])]
    prompters = [_parse_prompter(t, i) for i, t in enumerate(top["prompters"])]
    for key, entries in (("datasets", datasets), ("models", models), ("prompters", prompters)):
        if not entries:
            raise SuiteError(f"{path}: no [[{key}]] entries; a suite needs at least one of each")
        _unique([e.name for e in entries], key)
    prompter_names = [p.name for p in prompters]
    dataset_names = [d.name for d in datasets]
    for i, model in enumerate(models):
        for name in model.prompters or ():
            if name not in prompter_names:
                raise SuiteError(f"models[{i}].prompters: unknown prompter '{name}'{suggest(name, prompter_names)}")
        for name in model.datasets or ():
            if name not in dataset_names:
                raise SuiteError(f"models[{i}].datasets: unknown dataset '{name}'{suggest(name, dataset_names)}")

    metrics = _table(METRICS_SCHEMA, top["metrics"], "metrics")
    for plugin, params in metrics["params"].items():
        check_value(_METRIC_PARAMS, params, f"metrics.params.{plugin}", SuiteError)
    biomarkers, biomarker_switches = _parse_biomarkers(top["biomarkers"])
    output = _table(OUTPUT_SCHEMA, top["output"], "output")
    return Suite(
        name=head["name"] if head["name"] is not None else path.stem,
        description=head["description"],
        seeds=tuple(seeds),
        device=head["device"],
        datasets=tuple(datasets),
        models=tuple(models),
        prompters=tuple(prompters),
        metric_names=_strings(metrics["names"]),
        metric_params=metrics["params"],
        biomarkers=biomarkers,
        biomarkers_enabled=biomarker_switches["enabled"],
        biomarker_rounds=biomarker_switches["rounds"],
        output=output,
        config=config,
        path=str(path),
        executor=head["executor"],
        workers=head["workers"],
        ray_address=head["ray_address"],
    )

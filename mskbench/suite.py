"""Parse and validate suite TOML files (docs/suites.md is the user-facing schema).

Reading resolves ``include`` inheritance and ``${ENV}`` interpolation, then
checks every key against the schema below so a typo is reported with its key
path and the nearest valid key before any work starts.
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
from mskbench.params import suggest

# Allowed keys per table; a value of dict means "free-form table" (plugin params).
_SUITE_KEYS = {"name", "description", "seed", "seeds", "device"}
_DATASET_KEYS = {"name", "plugin", "params", "split", "slice_axis", "labels", "merge", "preprocess", "limit_subjects"}
_PREPROCESS_KEYS = {"clip_percentiles", "min_object_pixels", "min_object_voxels", "include_empty_slices"}
_MODEL_KEYS = {"name", "plugin", "params", "checkpoint", "on_missing_checkpoint", "batch_size", "prompters"}
_PROMPTER_KEYS = {"name", "plugin", "params", "only_supported"}
_METRICS_KEYS = {"names", "params"}
_BIOMARKER_ENTRY_KEYS = {"labels", "tissues", "params", "plugin"}
_OUTPUT_KEYS = {"db", "embedding_cache", "embedding_cache_max_gb", "skip_bad_subjects"}
_TOP_KEYS = {"include", "suite", "datasets", "models", "prompters", "metrics", "biomarkers", "output"}
_SLICE_AXES = ("axial", "sagittal", "coronal", "through_plane")
_SPLITS = ("train", "val", "test", "all")
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


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
    """A validated suite; ``config`` is the resolved TOML as a plain dict."""

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
    output: dict[str, Any]
    config: dict[str, Any]
    path: str

    @property
    def seed(self) -> int:
        return self.seeds[0]

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.config, sort_keys=True, default=str).encode()
        return hashlib.sha256(canonical).hexdigest()


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            prefix = f"{where}." if where else ""
            raise SuiteError(
                f"{prefix}{key}: unknown key{suggest(key, sorted(allowed))}; valid keys: {', '.join(sorted(allowed))}"
            )


def _interpolate(value: Any, where: str) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in os.environ:
                raise SuiteError(f"{where}: environment variable ${{{var}}} is not set; export it or edit the suite")
            return os.environ[var]

        return _ENV_PATTERN.sub(replace, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}" if where else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
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
    if not path.exists():
        where = f" (included from {chain[-1]})" if chain else ""
        raise SuiteError(f"{path}: suite file not found{where}; check the path")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: TOML syntax error: {exc}") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not a UTF-8 text file; a suite is a .toml file") from None
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


def _require(table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in table:
        raise SuiteError(f"{where}.{key}: required key is missing")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise SuiteError(f"{where}.{key}: expected {kind.__name__}, got {value!r}")
    return value


def _optional(table: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str, default: Any) -> Any:
    value = table.get(key, default)
    if value is default:
        return value
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float)):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise SuiteError(f"{where}.{key}: expected {names}, got {value!r}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...] | None:
    """A list of strings as a tuple; None stays None; anything else is an error."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SuiteError(f"{where}: expected a list of names like [\"a\", \"b\"], got {value!r}")
    return tuple(value)


def _name(table: Mapping[str, Any], default: str, where: str) -> str:
    """An entry's name; ':' is reserved because cell ids join names with it."""
    name = _optional(table, "name", str, where, default)
    if not name or ":" in name:
        raise SuiteError(f"{where}.name: '{name}' must be non-empty and must not contain ':'")
    return name


def _entries(config: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = config.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise SuiteError(f"{key}: expected an array of tables ([[{key}]])")
    return value


def _unique(names: list[str], where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise SuiteError(f"{where}: name '{name}' is used twice; give each entry a unique name")
        seen.add(name)


def _parse_dataset(table: dict[str, Any], i: int) -> DatasetEntry:
    where = f"datasets[{i}]"
    _check_keys(table, _DATASET_KEYS, where)
    plugin = _require(table, "plugin", str, where)
    split = _optional(table, "split", str, where, "test")
    if split not in _SPLITS:
        raise SuiteError(f"{where}.split: '{split}' is not one of {', '.join(_SPLITS)}{suggest(split, _SPLITS)}")
    axis = _optional(table, "slice_axis", str, where, None)
    if axis is not None and axis not in _SLICE_AXES:
        raise SuiteError(f"{where}.slice_axis: '{axis}' is not one of {', '.join(_SLICE_AXES)}{suggest(axis, _SLICE_AXES)}")
    preprocess = _optional(table, "preprocess", dict, where, {})
    _check_keys(preprocess, _PREPROCESS_KEYS, f"{where}.preprocess")
    labels = _strings(table.get("labels"), f"{where}.labels")
    merge = _optional(table, "merge", dict, where, {})
    merged = {k: _strings(v, f"{where}.merge.{k}") for k, v in merge.items()}
    limit = _optional(table, "limit_subjects", int, where, None)
    if limit is not None and limit < 1:
        raise SuiteError(f"{where}.limit_subjects: must be at least 1, got {limit}")
    return DatasetEntry(
        name=_name(table, plugin, where),
        plugin=plugin,
        params=_optional(table, "params", dict, where, {}),
        split=split,
        slice_axis=axis,
        labels=labels,
        merge=merged,
        preprocess=preprocess,
        limit_subjects=limit,
    )


def _parse_model(table: dict[str, Any], i: int) -> ModelEntry:
    where = f"models[{i}]"
    _check_keys(table, _MODEL_KEYS, where)
    plugin = _require(table, "plugin", str, where)
    policy = _optional(table, "on_missing_checkpoint", str, where, "skip")
    if policy not in ("skip", "error"):
        raise SuiteError(f"{where}.on_missing_checkpoint: must be 'skip' or 'error', got '{policy}'")
    prompters = _strings(table.get("prompters"), f"{where}.prompters")
    batch = _optional(table, "batch_size", int, where, 4)
    if batch < 1:
        raise SuiteError(f"{where}.batch_size: must be at least 1, got {batch}")
    return ModelEntry(
        name=_name(table, plugin, where),
        plugin=plugin,
        params=_optional(table, "params", dict, where, {}),
        checkpoint=_optional(table, "checkpoint", str, where, None),
        on_missing_checkpoint=policy,
        batch_size=batch,
        prompters=prompters,
    )


def _parse_prompter(table: dict[str, Any], i: int) -> PrompterEntry:
    where = f"prompters[{i}]"
    _check_keys(table, _PROMPTER_KEYS, where)
    plugin = _require(table, "plugin", str, where)
    return PrompterEntry(
        name=_name(table, plugin, where),
        plugin=plugin,
        params=_optional(table, "params", dict, where, {}),
        only_supported=_optional(table, "only_supported", bool, where, False),
    )


def _parse_biomarkers(table: Any) -> tuple[tuple[BiomarkerEntry, ...] | None, bool]:
    if table is None:
        return None, True
    if not isinstance(table, dict):
        raise SuiteError("biomarkers: expected a table ([biomarkers])")
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise SuiteError(f"biomarkers.enabled: expected true or false, got {enabled!r}")
    entries = []
    for name, entry in table.items():
        if name == "enabled":
            continue
        where = f"biomarkers.{name}"
        if not isinstance(entry, dict):
            raise SuiteError(f"{where}: expected a table ([{where}]) or `enabled = false`")
        _check_keys(entry, _BIOMARKER_ENTRY_KEYS, where)
        entries.append(
            BiomarkerEntry(
                name=name,
                plugin=_optional(entry, "plugin", str, where, name),
                labels=_strings(entry.get("labels"), f"{where}.labels"),
                tissues=_strings(entry.get("tissues"), f"{where}.tissues"),
                params=_optional(entry, "params", dict, where, {}),
            )
        )
    return (tuple(entries) if entries else None), enabled


def load_suite(path: str | Path) -> Suite:
    """Read, merge includes, interpolate ``${ENV}`` and check the structure."""
    path = Path(path).resolve()
    config = _interpolate(_read_toml(path), "")
    _check_keys(config, _TOP_KEYS, "")
    head = _optional(config, "suite", dict, "", {})
    _check_keys(head, _SUITE_KEYS, "suite")
    name = _optional(head, "name", str, "suite", path.stem)
    seed = _optional(head, "seed", int, "suite", 0)
    if not 0 <= seed < 2**31:
        raise SuiteError(f"suite.seed: {seed} is outside 0 to 2147483647")
    seeds = _optional(head, "seeds", list, "suite", [seed])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in seeds):
        raise SuiteError("suite.seeds: expected a non-empty list of integers from 0 to 2147483647")
    if len(set(seeds)) != len(seeds):
        raise SuiteError(f"suite.seeds: {seeds} repeats a seed; each seed is one repetition of every cell")
    device = _optional(head, "device", str, "suite", "auto")
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise SuiteError(f"suite.device: '{device}' is not auto, cpu or cuda{suggest(device, ['auto', 'cpu', 'cuda'])}")

    datasets = [_parse_dataset(t, i) for i, t in enumerate(_entries(config, "datasets"))]
    models = [_parse_model(t, i) for i, t in enumerate(_entries(config, "models"))]
    prompters = [_parse_prompter(t, i) for i, t in enumerate(_entries(config, "prompters"))]
    for key, entries in (("datasets", datasets), ("models", models), ("prompters", prompters)):
        if not entries:
            raise SuiteError(f"{path}: no [[{key}]] entries; a suite needs at least one of each")
        _unique([e.name for e in entries], key)
    prompter_names = [p.name for p in prompters]
    for i, model in enumerate(models):
        for name in model.prompters or ():
            if name not in prompter_names:
                raise SuiteError(f"models[{i}].prompters: unknown prompter '{name}'{suggest(name, prompter_names)}")

    metrics = _optional(config, "metrics", dict, "", {})
    _check_keys(metrics, _METRICS_KEYS, "metrics")
    metric_names = _strings(metrics.get("names"), "metrics.names")
    if metric_names is not None and not metric_names:
        raise SuiteError("metrics.names: empty; list the metrics to record or remove the key to record all")
    metric_params = _optional(metrics, "params", dict, "metrics", {})
    biomarkers, biomarkers_enabled = _parse_biomarkers(config.get("biomarkers"))
    output = _optional(config, "output", dict, "", {})
    _check_keys(output, _OUTPUT_KEYS, "output")
    return Suite(
        name=name,
        description=_optional(head, "description", str, "suite", ""),
        seeds=tuple(seeds),
        device=device,
        datasets=tuple(datasets),
        models=tuple(models),
        prompters=tuple(prompters),
        metric_names=metric_names,
        metric_params=metric_params,
        biomarkers=biomarkers,
        biomarkers_enabled=biomarkers_enabled,
        output=output,
        config=config,
        path=str(path),
    )

"""Plugin discovery through the `mskbench` entry-point group (DESIGN §3).

Built-ins and third-party packages take the same path: each entry point names
a module implementing hooks from :mod:`mskbench.hookspecs`. A module that fails
to import or register is recorded with its error and never breaks the CLI.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from mskbench import hookspecs
from mskbench.errors import PluginError
from mskbench.params import Param, ParamsSchema, suggest, validate_params

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mskbench"
BUILTIN_DISTRIBUTION = "mskbench"
ALLOW_LIST_ENV = "MSKBENCH_LOAD_PLUGINS"

#: hook name -> plugin kind it registers
HOOK_KINDS = {
    "mskbench_register_datasets": "dataset",
    "mskbench_register_models": "model",
    "mskbench_register_prompters": "prompter",
    "mskbench_register_biomarkers": "biomarker",
    "mskbench_register_metrics": "metric",
}
KINDS = tuple(HOOK_KINDS.values())


@dataclass(frozen=True)
class PluginInfo:
    """One registered factory and its metadata."""

    name: str
    kind: str
    factory: Callable[..., Any]
    description: str
    version: str
    distribution: str
    params: ParamsSchema = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    preflight: Callable[[dict[str, Any], str | None], None] | None = None

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "distribution": self.distribution,
            "version": self.version,
            "description": self.description,
            "params": {key: param.describe() for key, param in self.params.items()},
            "requires": list(self.requires),
            "error": None,
        }


@dataclass(frozen=True)
class PluginFailure:
    """A plugin module that could not be imported or registered."""

    distribution: str
    entry_point: str
    error: str
    kind: str | None = None
    name: str | None = None

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name or self.entry_point,
            "kind": self.kind,
            "distribution": self.distribution,
            "version": None,
            "description": None,
            "params": {},
            "requires": [],
            "error": self.error,
        }


@dataclass
class Registry:
    """Everything the loaded plugins registered, looked up by (kind, name)."""

    plugins: dict[tuple[str, str], PluginInfo] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    conflicts: dict[tuple[str, str], str] = field(default_factory=dict)

    def names(self, kind: str) -> list[str]:
        return sorted(name for k, name in self.plugins if k == kind)

    def of_kind(self, kind: str) -> list[PluginInfo]:
        return [self.plugins[(kind, name)] for name in self.names(kind)]

    def get(self, kind: str, name: str, where: str) -> PluginInfo:
        """Look a plugin up; unknown names get a suggestion and the valid list."""
        if (kind, name) in self.conflicts:
            raise PluginError(f"{where}: {self.conflicts[(kind, name)]}")
        info = self.plugins.get((kind, name))
        if info is None:
            failed = [f for f in self.failures if f.name == name or f.entry_point == name]
            if failed:
                raise PluginError(f"{where}: {kind} '{name}' failed to load: {failed[0].error}")
            valid = self.names(kind)
            broken = [f for f in self.failures if f.kind in (kind, None)]
            note = f"; note: {broken[0].distribution}:{broken[0].entry_point} failed to load ({broken[0].error})" if broken else ""
            raise PluginError(
                f"{where}: unknown {kind} '{name}'{suggest(name, valid)}; available: {', '.join(valid) or 'none'}"
                f" (see `mskbench plugins`){note}"
            )
        return info

    def resolve_params(self, kind: str, name: str, params: Mapping[str, Any], where: str) -> dict[str, Any]:
        return validate_params(self.get(kind, name, where).params, params, f"{where}.params")

    def create(self, kind: str, name: str, params: Mapping[str, Any], where: str, **extra: Any) -> Any:
        """Validate params and call the factory (``extra`` for models: device, checkpoint)."""
        info = self.get(kind, name, where)
        resolved = validate_params(info.params, params, f"{where}.params")
        return info.factory(**resolved, **extra)

    def rows(self) -> list[dict[str, Any]]:
        rows = [info.row() for info in sorted(self.plugins.values(), key=lambda i: (i.kind, i.name))]
        return rows + [failure.row() for failure in self.failures]


def _allowed_distributions() -> set[str] | None:
    """Normalised distribution names from MSKBENCH_LOAD_PLUGINS; None when it is unset."""
    raw = os.environ.get(ALLOW_LIST_ENV)
    if raw is None:
        return None
    return {_normalise(part.strip()) for part in raw.split(",") if part.strip()}


def _distribution(ep: EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return ("unknown", "unknown")
    return (dist.metadata["Name"], dist.version)


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


class _Registrar:
    """The ``register`` callable handed to one plugin's hooks."""

    def __init__(self, registry: Registry, kind: str, distribution: str, version: str, entry_point: str):
        self.registry = registry
        self.kind = kind
        self.distribution = distribution
        self.version = version
        self.entry_point = entry_point

    def __call__(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        description: str,
        params: Mapping[str, Param] | None = None,
        version: str | None = None,
        requires: Sequence[str] = (),
        preflight: Callable[[dict[str, Any], str | None], None] | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise TypeError(f"plugin name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise TypeError(f"factory for '{name}' is not callable")
        params = dict(params or {})
        for key, param in params.items():
            if not isinstance(param, Param):
                raise TypeError(f"params['{key}'] of '{name}' must be a mskbench.params.Param")
        info = PluginInfo(
            name=name,
            kind=self.kind,
            factory=factory,
            description=str(description).strip().splitlines()[0] if description else "",
            version=version or self.version,
            distribution=self.distribution,
            params=params,
            requires=tuple(requires),
            preflight=preflight,
        )
        key = (self.kind, name)
        existing = self.registry.plugins.get(key)
        if existing is not None:
            message = (
                f"{self.kind} '{name}' is registered by both '{existing.distribution}' and "
                f"'{self.distribution}'; uninstall one or restrict {ALLOW_LIST_ENV}"
            )
            self.registry.conflicts[key] = message
            self.registry.failures.append(
                PluginFailure(self.distribution, self.entry_point, message, kind=self.kind, name=name)
            )
            return
        self.registry.plugins[key] = info


def load_registry(entry_point_list: Sequence[EntryPoint] | None = None) -> Registry:
    """Import every allowed entry point and collect what its hooks register."""
    registry = Registry()
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    allowed = _allowed_distributions()
    eps = list(entry_point_list) if entry_point_list is not None else list(entry_points(group=ENTRY_POINT_GROUP))
    for ep in sorted(eps, key=lambda e: (_distribution(e)[0] != BUILTIN_DISTRIBUTION, e.name)):
        distribution, version = _distribution(ep)
        normalised = _normalise(distribution)
        if allowed is not None and normalised != BUILTIN_DISTRIBUTION and normalised not in allowed:
            log.debug("skipping %s (%s not in %s)", ep.name, distribution, ALLOW_LIST_ENV)
            continue
        _load_one(manager, registry, ep, distribution, version)
    if allowed:
        _warn_unknown_allowed(allowed, eps)
    return registry


def _warn_unknown_allowed(allowed: set[str], eps: Sequence[EntryPoint]) -> None:
    """One warning line when MSKBENCH_LOAD_PLUGINS names a distribution that provides no mskbench plugin."""
    installed = {_normalise(name): name for name, _ in map(_distribution, eps)}
    written = {_normalise(part.strip()): part.strip() for part in os.environ.get(ALLOW_LIST_ENV, "").split(",")}
    unknown = sorted(written.get(name, name) for name in allowed if name not in installed)
    if unknown:
        others = sorted(name for key, name in installed.items() if key != BUILTIN_DISTRIBUTION)
        log.warning(
            "%s names %s, which is not an installed mskbench plugin distribution; installed: %s",
            ALLOW_LIST_ENV, ", ".join(unknown), ", ".join(others) or f"none besides {BUILTIN_DISTRIBUTION}",
        )


def _load_one(manager: pluggy.PluginManager, registry: Registry, ep: EntryPoint, distribution: str, version: str) -> None:
    plugin_id = f"{distribution}:{ep.name}"
    try:
        module = ep.load()
        manager.register(module, name=plugin_id)
        manager.check_pending()
    except Exception as exc:  # isolate: a broken plugin must not break the CLI
        if manager.has_plugin(plugin_id):
            manager.unregister(name=plugin_id)
        log.warning("plugin %s failed to load: %s", plugin_id, exc)
        registry.failures.append(PluginFailure(distribution, ep.name, f"{type(exc).__name__}: {exc}"))
        return
    others = [p for p in manager.get_plugins() if p is not module]
    for hook_name, kind in HOOK_KINDS.items():
        caller = manager.subset_hook_caller(hook_name, remove_plugins=others)
        if not caller.get_hookimpls():
            continue
        registrar = _Registrar(registry, kind, distribution, version, ep.name)
        try:
            caller(register=registrar)
        except Exception as exc:
            log.warning("plugin %s failed in %s: %s", plugin_id, hook_name, exc)
            registry.failures.append(
                PluginFailure(distribution, ep.name, f"{type(exc).__name__}: {exc}", kind=kind)
            )


_cached: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded once on first use."""
    global _cached
    if _cached is None:
        _cached = load_registry()
    return _cached

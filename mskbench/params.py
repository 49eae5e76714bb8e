"""Plugin parameter schemas and their validation (DESIGN §3).

Hand-written because the checks are small and the error messages matter:
JSON-schema validators do not name the suite key path or suggest the nearest
valid key, which is what a researcher needs to fix a typo.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mskbench.errors import PluginError

_MISSING = object()


@dataclass(frozen=True)
class Param:
    """One accepted parameter: its type, default and bounds.

    ``type`` is one of ``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``
    or ``path`` (a string that is a filesystem path). ``required`` params have
    no default.
    """

    type: str
    default: Any = _MISSING
    help: str = ""
    choices: Sequence[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description for `mskbench plugins --json` and docs."""
        out: dict[str, Any] = {"type": self.type, "help": self.help}
        if not self.required:
            out["default"] = self.default
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


ParamsSchema = Mapping[str, Param]


def suggest(key: str, valid: Sequence[str]) -> str:
    """A ' (did you mean 'x'?)' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_type(value: Any, param: Param, where: str) -> Any:
    kind = param.type
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    expected = {
        "str": str,
        "path": str,
        "int": int,
        "float": float,
        "bool": bool,
        "list": list,
        "dict": dict,
    }[kind]
    if not isinstance(value, expected) or (kind in ("int", "float") and isinstance(value, bool)):
        raise PluginError(f"{where}: expected {kind}, got {value!r}; fix the value in the suite")
    return value


def validate_params(schema: ParamsSchema, given: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Return the params with defaults filled in, or raise naming the key path.

    ``where`` is the suite key path of the params table, e.g.
    ``models[0].params``.
    """
    unknown = [key for key in given if key not in schema]
    if unknown:
        key = unknown[0]
        valid = ", ".join(sorted(schema)) or "none"
        raise PluginError(
            f"{where}.{key}: unknown parameter{suggest(key, list(schema))}; valid keys: {valid}"
        )
    resolved: dict[str, Any] = {}
    for key, param in schema.items():
        if key not in given:
            if param.required:
                raise PluginError(f"{where}.{key}: required parameter is missing; add it to the suite")
            resolved[key] = param.default
            continue
        value = _check_type(given[key], param, f"{where}.{key}")
        if param.choices is not None and value not in param.choices:
            choices = ", ".join(repr(c) for c in param.choices)
            raise PluginError(
                f"{where}.{key}: {value!r} is not one of {choices}{suggest(str(value), [str(c) for c in param.choices])}"
            )
        if param.minimum is not None and value < param.minimum:
            raise PluginError(f"{where}.{key}: {value!r} is below the minimum {param.minimum}")
        if param.maximum is not None and value > param.maximum:
            raise PluginError(f"{where}.{key}: {value!r} is above the maximum {param.maximum}")
        resolved[key] = value
    return resolved

"""Parameter schemas and their validation, for plugin params and suite tables (DESIGN §3).

Hand-written because the checks are small and the error messages matter:
JSON-schema validators do not name the suite key path or suggest the nearest
valid key, which is what a researcher needs to fix a typo. The suite's own
tables (``[suite]``, ``[output]``, ``[[models]]``, ...) are declared with the
same :class:`Param` and checked by the same :func:`validate_params` as every
plugin's params, so a value of the wrong type or out of range is reported the
same way wherever it is written.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mskbench.errors import PluginError, UserError

_MISSING = object()

_PYTHON_TYPES = {"str": str, "path": str, "int": int, "float": float, "bool": bool, "list": list, "dict": dict}


@dataclass(frozen=True)
class Param:
    """One accepted parameter: its type, default and bounds.

    ``type`` is one of ``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``
    or ``path`` (a non-empty string that is a filesystem path). ``required``
    params have no default. For a ``list``, ``items`` is the type of every
    element and ``choices`` / ``minimum`` / ``maximum`` apply to each element;
    ``min_items`` bounds its length. ``pattern`` is a regular expression a
    ``str`` value must match whole; ``help`` then says what is accepted.
    """

    type: str
    default: Any = _MISSING
    help: str = ""
    choices: Sequence[Any] | None = None
    minimum: float | None = None
    maximum: float | None = None
    items: str | None = None
    min_items: int | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.type not in _PYTHON_TYPES:
            raise TypeError(f"Param type must be one of {', '.join(_PYTHON_TYPES)}, got {self.type!r}")
        if self.items is not None and (self.type != "list" or self.items not in _PYTHON_TYPES):
            raise TypeError(f"Param items={self.items!r} needs type 'list' and an element type")

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def describe(self) -> dict[str, Any]:
        """JSON-friendly description for `mskbench plugins --json` and docs."""
        out: dict[str, Any] = {"type": self.type, "help": self.help}
        if not self.required:
            out["default"] = self.default
        for key in ("choices", "minimum", "maximum", "items", "min_items", "pattern"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "choices" else value
        return out


ParamsSchema = Mapping[str, Param]


def suggest(key: str, valid: Sequence[str]) -> str:
    """A ' (did you mean 'x'?)' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


def join(where: str, key: str) -> str:
    """The key path of ``key`` inside the table at ``where`` ('' is the top level)."""
    return f"{where}.{key}" if where else key


_PHRASES = {
    "str": "a string",
    "path": "a path (a non-empty string)",
    "int": "a whole number",
    "float": "a finite number",
    "bool": "true or false",
    "list": "a list",
    "dict": "a table like { key = value }",
}
_LIST_PHRASES = {
    "str": 'a list of names like ["a", "b"]',
    "path": 'a list of paths like ["a.nii.gz"]',
    "int": "a list of whole numbers like [0, 1]",
    "float": "a list of numbers like [0.5, 1.0]",
    "bool": "a list of true/false values",
    "list": "a list of lists",
}


def _phrase(param: Param, where: str) -> str:
    if param.type != "list" or param.items is None:
        return _PHRASES[param.type]
    if param.items == "dict":
        name = where.rsplit(".", 1)[-1]
        return f"an array of tables ([[{name}]])"
    return _LIST_PHRASES[param.items]


def _is(value: Any, kind: str) -> bool:
    """Whether ``value`` (as TOML / JSON gives it) is of the schema type ``kind``."""
    if isinstance(value, bool) and kind in ("int", "float"):
        return False
    if kind == "float":
        return isinstance(value, (int, float)) and math.isfinite(value)
    if kind == "path":
        return isinstance(value, str) and bool(value.strip())
    return isinstance(value, _PYTHON_TYPES[kind])


def _quoted_hint(value: Any, kind: str) -> str:
    """'write it without quotes' when a string holds what the type wanted (`"false"`, `"5"`), else ''."""
    if not isinstance(value, str):
        return ""
    text = value.strip().lower()
    if kind == "bool" and text in ("true", "false"):
        return f"write {text} without quotes"
    if kind in ("int", "float"):
        try:
            float(text)
        except ValueError:
            return ""
        return "write the number without quotes"
    return ""


def _check_scalar(value: Any, param: Param, where: str, error: type[UserError]) -> Any:
    """Bounds, choices and pattern of one (already type-checked) value."""
    if param.choices is not None and value not in param.choices:
        choices = ", ".join(repr(c) for c in param.choices)
        raise error(f"{where}: {value!r} is not one of {choices}{suggest(str(value), [str(c) for c in param.choices])}")
    if param.minimum is not None and value < param.minimum:
        raise error(f"{where}: {value!r} is below the minimum {param.minimum}")
    if param.maximum is not None and value > param.maximum:
        raise error(f"{where}: {value!r} is above the maximum {param.maximum}")
    if param.pattern is not None and isinstance(value, str) and not re.fullmatch(param.pattern, value):
        raise error(f"{where}: {value!r} is not valid: {param.help or 'expected a value matching ' + param.pattern}")
    return value


def check_value(param: Param, value: Any, where: str, error: type[UserError] = PluginError) -> Any:
    """One value checked against its :class:`Param`: type, then range; returns it (ints widened to float)."""
    if not _is(value, param.type):
        hint = _quoted_hint(value, param.type) or "fix the value in the suite"
        raise error(f"{where}: expected {_phrase(param, where)}, got {value!r}; {hint}")
    if param.type == "float":
        value = float(value)
    if param.type != "list":
        return _check_scalar(value, param, where, error)
    if param.items is not None:
        if not all(_is(item, param.items) for item in value):
            raise error(f"{where}: expected {_phrase(param, where)}, got {value!r}; fix the value in the suite")
        if param.items == "float":
            value = [float(item) for item in value]
        for i, item in enumerate(value):
            _check_scalar(item, param, f"{where}[{i}]", error)
    if param.min_items is not None and len(value) < param.min_items:
        if not value:
            raise error(f"{where}: empty; list at least {param.min_items} or remove the key to use the default")
        raise error(f"{where}: {len(value)} item(s), at least {param.min_items} needed")
    return value


def validate_params(
    schema: ParamsSchema,
    given: Mapping[str, Any],
    where: str,
    *,
    noun: str = "parameter",
    error: type[UserError] = PluginError,
) -> dict[str, Any]:
    """Return the params with defaults filled in, or raise naming the key path.

    ``where`` is the suite key path of the params table, e.g.
    ``models[0].params`` ('' for the top level of the suite). ``noun`` and
    ``error`` let the suite's own tables say "unknown key" and raise a
    :class:`~mskbench.errors.SuiteError`.
    """
    if not isinstance(given, Mapping):
        raise error(f"{where or 'suite'}: expected a table like {{ key = value }}, got {given!r}")
    unknown = [key for key in given if key not in schema]
    if unknown:
        key = unknown[0]
        valid = ", ".join(sorted(schema)) or "none"
        raise error(f"{join(where, key)}: unknown {noun}{suggest(key, list(schema))}; valid keys: {valid}")
    resolved: dict[str, Any] = {}
    for key, param in schema.items():
        if key not in given:
            if param.required:
                raise error(f"{join(where, key)}: required {noun} is missing; add it to the suite")
            resolved[key] = copy.deepcopy(param.default)
            continue
        resolved[key] = check_value(param, given[key], join(where, key), error)
    return resolved

"""Write the few TOML shapes mskbench generates (the grid's suite), and check they read back as written.

By hand because Python's standard library reads TOML (tomllib) but does not write it, and no TOML writer is a
dependency. The output is re-read with :mod:`tomllib` and compared, so a value this writer cannot express is an
error here, not a suite that means something else.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def value(item: Any) -> str:
    """One TOML value: strings as JSON strings (valid TOML basic strings), inline tables for mappings."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise ValueError(f"{item!r} has no TOML spelling here")
        return repr(item)
    if isinstance(item, str):
        return json.dumps(item, ensure_ascii=False)
    if isinstance(item, (list, tuple)):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, Mapping):
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }" if item else "{}"
    raise ValueError(f"{type(item).__name__} has no TOML spelling")


def document(tables: Mapping[str, Mapping[str, Any]], arrays: Mapping[str, list[Mapping[str, Any]]],
             header: str = "") -> str:
    """``[table]`` sections then ``[[array]]`` entries, each key on its line; checked by reading it back."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    for name, table in tables.items():
        lines += ["", f"[{key(name)}]", *(f"{key(k)} = {value(v)}" for k, v in table.items())]
    for name, entries in arrays.items():
        for entry in entries:
            lines += ["", f"[[{key(name)}]]", *(f"{key(k)} = {value(v)}" for k, v in entry.items())]
    text = "\n".join(lines).lstrip("\n") + "\n"
    expected = {**{k: dict(v) for k, v in tables.items()}, **{k: [dict(e) for e in v] for k, v in arrays.items()}}
    if tomllib.loads(text) != json.loads(json.dumps(expected)):
        raise ValueError("the generated TOML does not read back as written")
    return text

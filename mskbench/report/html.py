"""HTML building blocks shared by the report and the leaderboard.

Every string that came from the user or the database goes through `esc`;
the page carries a Content-Security-Policy that forbids any network load,
so a page that renders at all renders self-contained.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from string import Template

import numpy as np
import pandas as pd


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


SCRIPTS = ("sort.js", "filter.js", "enlarge.js")
"""Inline scripts, each inert on a page without its elements."""


def _asset(folder: str, name: str) -> str:
    return resources.files("mskbench.report").joinpath(folder, name).read_text(encoding="utf-8")


def page(title: str, body: str, nav: str = "") -> str:
    """A complete page: inline CSS and the scripts (table sorting, table filter, thumbnails), no external resource."""
    from mskbench import __version__

    scripts = "\n".join(_asset("static", name) for name in SCRIPTS)
    return Template(_asset("templates", "page.html")).substitute(
        title=esc(title), css=_asset("static", "style.css"), js=scripts, nav=nav, body=body,
        version=esc(__version__), generated=esc(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
    )


def _plain(value: object) -> object:
    """numpy scalars as Python numbers (their repr would leak into the page)."""
    return value.item() if isinstance(value, np.generic) else value


def fmt(value: object, digits: int = 3) -> str:
    """Numbers to fixed significant digits; NaN/None as an em dash."""
    value = _plain(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) >= 1e4 or (value != 0 and abs(value) < 1e-3) else f"{value:.{digits}f}"
    return str(value)


@dataclass(frozen=True)
class Column:
    """One table column: the header, how to render a row's cell, and its sort key."""

    header: str
    render: Callable[[dict], str]
    sort_key: Callable[[dict], object] | None = None
    numeric: bool = False


def field(name: str, header: str | None = None, digits: int = 3) -> Column:
    """A column showing one field of the row (escaped, numbers formatted)."""
    def render(row: dict) -> str:
        return esc(fmt(row.get(name), digits))

    def sort_key(row: dict) -> object:
        return row.get(name)

    return Column(header or name, render, sort_key, numeric=True)


def table(rows: Sequence[dict] | pd.DataFrame, columns: Sequence[Column], *, sortable: bool = True,
          table_id: str = "") -> str:
    """An HTML table; numeric cells carry their raw value in data-sort for the sorter."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict(orient="records")
    if not rows:
        return '<p class="muted">No rows.</p>'
    head = "".join(f"<th scope=\"col\">{esc(c.header)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for column in columns:
            attrs = ""
            key = _plain(column.sort_key(row)) if column.sort_key else None
            if isinstance(key, (int, float)) and not isinstance(key, bool) and math.isfinite(key):
                attrs = f' data-sort="{key:.7g}" class="num"'  # 7 digits order any two shown values
            cells.append(f"<td{attrs}>{column.render(row)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    klass = ' class="sortable"' if sortable else ""
    return (f'<div class="scroll"><table{klass}{ident}><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def image(data_uri: str, caption: str, klass: str = "") -> str:
    """A captioned figure from a data URI (`figures.to_data_uri`); ``klass`` "qc" makes it a thumbnail that
    enlarges on click (static/enlarge.js)."""
    attrs = f' class="{esc(klass)}"' if klass else ""
    return (f'<figure{attrs}><img alt="{esc(caption)}" src="{data_uri}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def note(text: str) -> str:
    return f'<p class="note">{esc(text)}</p>'

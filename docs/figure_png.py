"""Save a documentation figure small: a 256-colour palette PNG keeps committed images to tens of kB."""

from __future__ import annotations

from pathlib import Path

from mskbench.report.figures import palette_png


def save_palette_png(fig, out: Path, dpi: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(palette_png(fig, dpi))
    print(f"wrote {out}")

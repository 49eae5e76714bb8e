"""Save a documentation figure small: a 256-colour palette PNG keeps committed images to tens of kB."""

from __future__ import annotations

from pathlib import Path


def save_palette_png(fig, out: Path, dpi: int) -> None:
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    with Image.open(out) as png:
        quantized = png.convert("RGB").quantize(256)
    quantized.save(out, optimize=True)
    print(f"wrote {out}")

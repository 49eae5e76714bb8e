"""matplotlib figures rendered to data URIs for embedding in a self-contained page.

Plots are 256-colour palette PNGs (a plot has few colours; the palette cuts a
figure to a third of its RGBA size); QC overlays, which show an MR slice, are
lossy WebP. Both keep the whole report within a few megabytes.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 90


def _rendered(fig, dpi: int):
    """The figure rasterised as an RGB Pillow image; the figure is closed."""
    from PIL import Image

    raw = io.BytesIO()
    fig.savefig(raw, format="png", dpi=dpi)
    plt.close(fig)
    raw.seek(0)
    with Image.open(raw) as png:
        return png.convert("RGB")


def palette_png(fig, dpi: int = DPI) -> bytes:
    """The figure as an optimised 256-colour palette PNG (Pillow's quantizer); the figure is closed."""
    out = io.BytesIO()
    _rendered(fig, dpi).quantize(256).save(out, format="png", optimize=True)
    return out.getvalue()


def to_data_uri(fig, dpi: int = DPI) -> str:
    """A plot as a palette-PNG data URI for an <img> of the self-contained page."""
    return "data:image/png;base64," + base64.b64encode(palette_png(fig, dpi)).decode("ascii")


def to_webp_uri(fig, dpi: int = DPI, quality: int = 80) -> str:
    """A figure with photographic content (an MR slice) as a lossy WebP data URI: a third of the PNG's size."""
    out = io.BytesIO()
    _rendered(fig, dpi).save(out, format="webp", quality=quality)
    return "data:image/webp;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def agreement_grid(structures: Mapping[str, pd.DataFrame], bias: Mapping[tuple[str, str], float], title: str,
                   unit: str, per_row: int = 5) -> str:
    """Per structure (frames with columns cell, reference, prediction): Bland–Altman above, prediction against
    reference below; a colour per model / prompter cell, its bias as a line of that colour, the identity line
    grey. One figure per biomarker keeps a report with many structures small; the limits are in the table."""
    cells = sorted({c for frame in structures.values() for c in frame["cell"]})
    colours = {cell: f"C{i % 10}" for i, cell in enumerate(cells)}
    n_cols = min(per_row, len(structures))
    n_bands = -(-len(structures) // n_cols)
    fig, axes = plt.subplots(2 * n_bands, n_cols, figsize=(2.0 * n_cols + 0.3, 3.6 * n_bands + 0.5),
                             layout="constrained", squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for index, (structure, frame) in enumerate(structures.items()):
        top, bottom = axes[2 * (index // n_cols)][index % n_cols], axes[2 * (index // n_cols) + 1][index % n_cols]
        for cell, group in frame.groupby("cell", sort=True):
            reference, prediction = group["reference"].to_numpy(float), group["prediction"].to_numpy(float)
            top.scatter((reference + prediction) / 2, prediction - reference, s=6, color=colours[cell], label=cell)
            value = bias.get((structure, cell))
            if value is not None and np.isfinite(value):
                top.axhline(value, color=colours[cell], linewidth=0.8)
            bottom.scatter(reference, prediction, s=6, color=colours[cell])
        top.axhline(0, color="#57606a", linewidth=0.6, linestyle=":")
        low = float(min(frame["reference"].min(), frame["prediction"].min()))
        high = float(max(frame["reference"].max(), frame["prediction"].max()))
        bottom.plot([low, high], [low, high], color="#57606a", linewidth=0.8)
        top.set_title(structure, fontsize=7)
        top.set_xlabel(f"mean ({unit})", fontsize=6)
        top.set_ylabel(f"pred − ref ({unit})", fontsize=6)
        bottom.set_xlabel(f"reference ({unit})", fontsize=6)
        bottom.set_ylabel(f"prediction ({unit})", fontsize=6)
        for ax in (top, bottom):
            ax.set_visible(True)
            ax.tick_params(labelsize=5)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours[c], markersize=4) for c in cells]
    fig.legend(handles, cells, fontsize=6, loc="outside lower center", ncols=min(4, len(cells)))
    fig.suptitle(title, fontsize=9)
    return to_data_uri(fig, dpi=80)


def forest_plot(coef: pd.DataFrame, title: str) -> str:
    """Estimates with 95% CIs, one row per (model/prompter, term), intercept left out."""
    rows = coef[coef["term"] != "Intercept"].reset_index(drop=True)
    labels = [f"{r.model} / {r.prompter}: {r.term}" for r in rows.itertuples()]
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(rows) + 1.2), layout="constrained")
    y = np.arange(len(rows))[::-1]
    ax.errorbar(rows["estimate"], y, xerr=[rows["estimate"] - rows["ci_low"], rows["ci_high"] - rows["estimate"]],
                fmt="o", color="#1f6feb", ecolor="#57606a", capsize=2, markersize=4)
    ax.axvline(0, color="#b42318", linewidth=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("effect on subject Dice per unit (95% CI)")
    ax.set_title(title, fontsize=10)
    return to_data_uri(fig)


def qc_overlay(image: np.ndarray, reference: np.ndarray, prediction: np.ndarray,
               boxes: Sequence[tuple[float, float, float, float]], title: str) -> str:
    """Slice in grey, reference contour green, prediction contour magenta, prompt boxes yellow."""
    fig, ax = plt.subplots(figsize=(3.2, 3.2), layout="constrained")
    ax.imshow(image, cmap="gray", interpolation="nearest")
    for mask, color in ((reference, "#2da44e"), (prediction, "#d63384")):
        for value in np.unique(mask[mask > 0]):
            ax.contour((mask == value).astype(float), levels=[0.5], colors=[color], linewidths=1.0)
    for x_min, y_min, x_max, y_max in boxes:
        ax.add_patch(plt.Rectangle((x_min - 0.5, y_min - 0.5), x_max - x_min + 1, y_max - y_min + 1, fill=False,
                                   edgecolor="#f2cc60", linewidth=1.0))
    ax.set_axis_off()
    ax.set_title(title, fontsize=7)
    return to_webp_uri(fig)


def round_curves_plot(curves: pd.DataFrame, title: str, ylabel: str) -> str:
    """One line per model over the rounds, with its confidence band shaded."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
    for model, curve in curves.groupby("model", sort=True):
        curve = curve.sort_values("round")
        line, = ax.plot(curve["round"], curve["mean"], marker="o", markersize=3, linewidth=1.2, label=model)
        ax.fill_between(curve["round"], curve["ci_low"], curve["ci_high"], color=line.get_color(), alpha=0.18,
                        linewidth=0)
    ax.set_xticks(sorted(set(curves["round"])))
    ax.set_xlabel("round (0 = initial prompt)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(title, fontsize=10)
    return to_data_uri(fig)


MARKER_COLOURS = {"best": "#1a7f37", "worse": "#b42318"}


def headline_plot(rows: pd.DataFrame, metric: str, title: str) -> str:
    """Mean with its 95% CI per (model, prompter), one colour per prompter, the marker text at the right."""
    labels = [f"{r.model} / {r.prompter}" for r in rows.itertuples()]
    mean = rows[f"{metric}_mean"].to_numpy(float) if f"{metric}_mean" in rows else np.full(len(rows), np.nan)
    low = rows.get(f"{metric}_low", pd.Series(np.nan, index=rows.index)).to_numpy(float)
    high = rows.get(f"{metric}_high", pd.Series(np.nan, index=rows.index)).to_numpy(float)
    fig, ax = plt.subplots(figsize=(5.6, 0.3 * len(rows) + 1.0), layout="constrained")
    y = np.arange(len(rows))[::-1]
    colours = {p: f"C{i}" for i, p in enumerate(dict.fromkeys(rows["prompter"]))}
    for i, row in enumerate(rows.itertuples()):
        if not np.isfinite(mean[i]):
            continue
        error = [[mean[i] - low[i]], [high[i] - mean[i]]] if np.isfinite(low[i]) else None
        ax.errorbar(mean[i], y[i], xerr=error, fmt="o", color=colours[row.prompter], ecolor=colours[row.prompter],
                    capsize=2, markersize=4)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    for i, row in enumerate(rows.itertuples()):
        ax.annotate(row.marker_text, (1.01, y[i]), xycoords=("axes fraction", "data"), fontsize=7, va="center",
                    color=MARKER_COLOURS.get(row.marker, "#57606a"))
    ax.set_xlabel(f"mean subject {metric} (95% bootstrap CI)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(axis="x", color="#d0d7de", linewidth=0.5)
    ax.set_title(title, fontsize=9)
    return to_data_uri(fig)


def heatmap(matrix: pd.DataFrame, title: str, label: str) -> str:
    """Rows x columns of values in [0, 1], each cell written in; NaN cells left blank."""
    values = matrix.to_numpy(float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.62 * values.shape[1], 0.9 + 0.3 * values.shape[0]),
                           layout="constrained")
    shown = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if value < 0.6 else "black")
    ax.set_xticks(range(values.shape[1]), matrix.columns, rotation=35, ha="right", fontsize=6)
    ax.set_yticks(range(values.shape[0]), matrix.index, fontsize=6)
    fig.colorbar(shown, ax=ax, label=label, shrink=0.8)
    ax.set_title(title, fontsize=9)
    return to_data_uri(fig)


def strata_plot(panels: Mapping[str, pd.DataFrame], title: str, ylabel: str) -> str:
    """One panel per binning (columns: cell, bin, mean), a line per (model / prompter) cell over its bins."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.0), layout="constrained", squeeze=False)
    for ax, (name, frame) in zip(axes[0], panels.items()):
        order = list(dict.fromkeys(frame.sort_values("order")["bin"]))
        for cell, line in frame.groupby("cell", sort=True):
            line = line.set_index("bin").reindex(order)
            ax.plot(range(len(order)), line["mean"], marker="o", markersize=3, linewidth=1, label=cell)
        ax.set_xticks(range(len(order)), order, fontsize=7)
        ax.set_xlabel(name, fontsize=8)
        ax.set_ylim(0, 1)
        ax.tick_params(axis="y", labelsize=7)
    axes[0][0].set_ylabel(ylabel, fontsize=8)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    fig.suptitle(title, fontsize=9)
    return to_data_uri(fig)


def gp_bands(panels: Sequence[tuple[str, pd.DataFrame, pd.DataFrame, str]], title: str, per_row: int = 5) -> str:
    """Per (label, points with reference/prediction, band with grid/mean/lower/upper, unit): the pairs as points,
    the GP mean as a line over its shaded 95% prediction band, the identity line dashed."""
    n_cols = min(per_row, len(panels))
    n_rows = -(-len(panels) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.2 * n_cols + 0.3, 2.2 * n_rows + 0.5),
                             layout="constrained", squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, (label, points, band, unit) in zip(axes.flat, panels):
        ax.set_visible(True)
        ax.fill_between(band["grid"], band["lower"], band["upper"], color="#1f6feb", alpha=0.2, linewidth=0)
        ax.plot(band["grid"], band["mean"], color="#1f6feb", linewidth=1)
        ax.scatter(points["reference"], points["prediction"], s=6, color="#1d232a")
        low, high = float(band["grid"].min()), float(band["grid"].max())
        ax.plot([low, high], [low, high], color="#57606a", linewidth=0.7, linestyle="--")
        ax.set_title(label, fontsize=6)
        ax.set_xlabel(f"reference ({unit})", fontsize=6)
        ax.set_ylabel(f"prediction ({unit})", fontsize=6)
        ax.tick_params(labelsize=5)
    fig.suptitle(title, fontsize=9)
    return to_data_uri(fig, dpi=80)

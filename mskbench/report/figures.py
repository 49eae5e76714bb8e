"""matplotlib figures rendered to base64 PNG for embedding in a self-contained page."""

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


def to_base64(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def box_plot(groups: Mapping[str, np.ndarray], title: str, ylabel: str) -> str:
    """Box plot with every subject drawn as a jittered point (a rain-cloud without the cloud)."""
    names = list(groups)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(names) + 2), 3.4), layout="constrained")
    ax.boxplot([groups[n] for n in names], showfliers=False)
    jitter = np.random.default_rng(0)  # fixed: point placement only, never a result
    for i, name in enumerate(names, start=1):
        values = groups[name]
        ax.scatter(i + jitter.uniform(-0.12, 0.12, len(values)), values, s=9, alpha=0.55, color="#1f6feb")
    ax.set_xticks(range(1, len(names) + 1), names, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return to_base64(fig)


def bland_altman_plot(reference: np.ndarray, prediction: np.ndarray, row: Mapping[str, object], title: str,
                      unit: str) -> str:
    """Difference against mean, with the bias and limits of agreement from the stats row."""
    means = (reference + prediction) / 2
    diffs = prediction - reference
    fig, ax = plt.subplots(figsize=(4.6, 3.4), layout="constrained")
    ax.scatter(means, diffs, s=12, alpha=0.7, color="#1f6feb")
    for key, style in (("bias", "-"), ("loa_lower", "--"), ("loa_upper", "--")):
        value = row.get(key)
        if value is not None and np.isfinite(value):
            ax.axhline(value, color="#b42318", linestyle=style, linewidth=1)
            ax.annotate(f"{value:+.3g}", (1.0, value), xycoords=("axes fraction", "data"), fontsize=7,
                        ha="right", va="bottom")
    ax.axhline(0, color="#57606a", linewidth=0.6)
    ax.set_xlabel(f"mean of reference and prediction ({unit})")
    ax.set_ylabel(f"prediction − reference ({unit})")
    ax.set_title(f"{title}\n{row.get('ba_method', '')} limits", fontsize=9)
    return to_base64(fig)


def regression_plot(reference: np.ndarray, prediction: np.ndarray, row: Mapping[str, object], title: str,
                    unit: str) -> str:
    """Prediction against reference with the identity line and the fitted line."""
    fig, ax = plt.subplots(figsize=(4.0, 3.4), layout="constrained")
    ax.scatter(reference, prediction, s=12, alpha=0.7, color="#1f6feb")
    low = float(min(reference.min(), prediction.min()))
    high = float(max(reference.max(), prediction.max()))
    ax.plot([low, high], [low, high], color="#57606a", linewidth=0.8, label="identity")
    slope, intercept = row.get("slope"), row.get("intercept")
    if slope is not None and np.isfinite(slope):
        ax.plot([low, high], [intercept + slope * low, intercept + slope * high], color="#b42318", linewidth=1,
                label=f"y = {slope:.3g}x {intercept:+.3g}")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_xlabel(f"reference ({unit})")
    ax.set_ylabel(f"prediction ({unit})")
    ax.set_title(f"{title}\nSpearman ρ = {row.get('spearman_rho', float('nan')):.3f}", fontsize=9)
    return to_base64(fig)


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
    return to_base64(fig)


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
    return to_base64(fig)


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
    return to_base64(fig)

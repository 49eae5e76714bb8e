"""Draw docs/images/prompters_knee.png: every built-in oracle prompter on one phantom knee slice.

    python docs/prompters_figure.py [--out docs/images/prompters_knee.png]

The prompters are built through the plugin registry and their generators
derived with `prompt_rng`, exactly as a run makes them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from mskbench.data.preprocess import PreprocessConfig, prepare_subject, take_slice  # noqa: E402
from mskbench.plugin_manager import get_registry  # noqa: E402
from mskbench.prompting.seeding import prompt_rng  # noqa: E402
from mskbench.types import SliceRef  # noqa: E402
from figure_png import save_palette_png  # noqa: E402  (docs/ is the script folder)

PANELS = [
    ("gt_box", "gt_box", {}),
    ("jitter_box outward, s = 12", "jitter_box", {"mode": "outward", "max_shift": 12}),
    ("jitter_box symmetric, s = 12", "jitter_box", {"mode": "symmetric", "max_shift": 12}),
    ("jitter_box fixed, s = 12", "jitter_box", {"mode": "fixed", "max_shift": 12}),
    ("points: 3 dt_max + 3 negative", "points", {"positive": 3, "strategy": "dt_max", "negative": 3}),
    ("box_point, instances = true", "box_point", {"instances": True, "min_component_pixels": 20}),
]


def _draw_box(ax, box, color, style="-"):
    x_min, y_min, x_max, y_max = box
    # an inclusive pixel box covers [x_min - 0.5, x_max + 0.5] in imshow's pixel-centre coordinates
    ax.add_patch(Rectangle((x_min - 0.5, y_min - 0.5), x_max - x_min + 1, y_max - y_min + 1,
                           fill=False, edgecolor=color, linestyle=style, linewidth=1.2))


def _richness(reference: np.ndarray) -> tuple[int, int]:
    """(labels present, connected components): the figure shows the busiest slice."""
    from scipy import ndimage

    labels = [v for v in np.unique(reference) if v != 0]
    components = sum(ndimage.label(reference == v, structure=np.ones((3, 3)))[1] for v in labels)
    return len(labels), components


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images" / "prompters_knee.png")
    args = parser.parse_args()

    registry = get_registry()
    dataset = registry.create("dataset", "phantom", {"anatomy": "knee", "subjects": 1, "seed": 0}, where="figure")
    subject = dataset.load(dataset.subject_ids()[0])
    prepared = prepare_subject(subject, dataset.slice_axis, PreprocessConfig())
    k = max(prepared.slice_indices, key=lambda i: _richness(take_slice(prepared.labels, prepared.axis, i)))
    image = take_slice(prepared.image, prepared.axis, k)
    reference = take_slice(prepared.labels, prepared.axis, k)
    labels = sorted(int(v) for v in np.unique(reference) if v != 0)
    colors = {label: plt.cm.tab10(i % 10) for i, label in enumerate(labels)}
    where = SliceRef("knee", subject.id, k, prepared.pixel_spacing)

    gt_box = registry.create("prompter", "gt_box", {}, where="figure")
    tight = {p.label: p.box for p in gt_box.prompts(image, reference, labels, np.random.default_rng(0), where)}

    fig, axes = plt.subplots(2, 3, figsize=(13, 9.6), layout="constrained")
    for ax, (title, plugin, params) in zip(axes.flat, PANELS):
        prompter = registry.create("prompter", plugin, params, where=title)
        rng, _ = prompt_rng(0, plugin, "knee", subject.id, k)
        ax.imshow(image, cmap="gray", interpolation="nearest")
        ax.contour(reference, levels=np.arange(0.5, max(labels) + 1), colors="white", linewidths=0.3, alpha=0.5)
        for prompt in prompter.prompts(image, reference, labels, rng, where):
            color = colors[prompt.label]
            if prompt.box is not None:
                if plugin == "jitter_box":
                    _draw_box(ax, tight[prompt.label], color, ":")
                _draw_box(ax, prompt.box, color)
            for (x, y), positive in zip(prompt.points, prompt.point_labels):
                ax.plot(x, y, marker="*" if positive else "x", color=color, markersize=8 if positive else 6,
                        markeredgecolor="black" if positive else color, markeredgewidth=0.5 if positive else 1.5)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    handles = [Rectangle((0, 0), 1, 1, color=colors[label]) for label in labels]
    names = [f"{label} {dataset.label_map[label].name}" for label in labels]
    fig.legend(handles, names, loc="outside lower center", ncol=4, fontsize=9, frameon=False)
    fig.suptitle(
        f"phantom knee {subject.id}, sagittal slice {k} in array orientation (rows: anterior down, columns: "
        "superior right); dotted: tight box; * positive, x negative point",
        fontsize=10,
    )
    save_palette_png(fig, args.out, dpi=90)


if __name__ == "__main__":
    main()

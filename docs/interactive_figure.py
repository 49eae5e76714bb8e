"""Draw docs/images/interactive_knee.png: one phantom knee label refined by CVPR 2025 clicks, round by round.

    python docs/interactive_figure.py [--out docs/images/interactive_knee.png] [--label 1]

The weight-free ``region_growing_3d`` model gets the CVPR 2025 protocol of
docs/interactive.md (a ``box3d``, then 5 ``max_edt_largest_error`` clicks
placed in the volume) through the same prompt, seed and round-loop code a run
uses. Each panel is the slice of the label's largest area after that round:
reference contour, prediction, the clicks so far on that slice, and the 3D
Dice of the round.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mskbench.data.preprocess import PreprocessConfig, prepare_subject, take_slice  # noqa: E402
from mskbench.execution.prompts import all_by_label, initial_prompts  # noqa: E402
from mskbench.interaction.clicks import ClicksPrompter  # noqa: E402
from mskbench.interaction.session import volume_model_rounds  # noqa: E402
from mskbench.plugin_manager import get_registry  # noqa: E402
from mskbench.prompting.seeding import prompt_rng  # noqa: E402
from mskbench.protocols import VolumeInput  # noqa: E402
from figure_png import save_palette_png  # noqa: E402  (docs/ is the script folder)

PROMPTER = "cvpr25_clicks"
SEED = 0


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images" / "interactive_knee.png")
    parser.add_argument("--label", type=int, default=1, help="label id of the knee phantom to show")
    args = parser.parse_args()

    registry = get_registry()
    dataset = registry.create("dataset", "phantom", {"anatomy": "knee", "subjects": 1, "seed": 0}, where="figure")
    subject = dataset.load(dataset.subject_ids()[0])
    prepared = prepare_subject(subject, dataset.slice_axis, PreprocessConfig())
    label, axis = args.label, prepared.axis
    prompter = ClicksPrompter(initial="box3d", key_slice="median_slice", mode="cvpr25", max_shift=5, rounds=5,
                              placement="max_edt_largest_error", space="volume", feedback="mask")
    initial = initial_prompts(prompter, PROMPTER, SEED, "knee", prepared, [label], {}, {})
    model = registry.create("model", "region_growing_3d", {}, where="figure")
    volume = VolumeInput(prepared.image, tuple(subject.spacing), axis, (label,))
    rounds = volume_model_rounds(
        model, "region_growing_3d", volume, prepared.labels, all_by_label([p for ps in initial.values() for p in ps]),
        prompter, PROMPTER, lambda k, r: prompt_rng(SEED, PROMPTER, "knee", subject.id, k, r),
    )
    truth = prepared.labels == label
    [box3d] = [p for ps in initial.values() for p in ps]

    fig, axes = plt.subplots(1, len(rounds.masks), figsize=(2.6 * len(rounds.masks), 3.3), layout="constrained")
    for r, (ax, masks) in enumerate(zip(axes, rounds.masks)):
        shown = [c for c in rounds.clicks if c.round <= r]
        # the key slice of this round: where the newest click landed, else the box3d's key slice
        newest = [c for c in shown if c.round == r]
        k = newest[-1].slice_index if newest else box3d.slice_index
        reference, prediction = take_slice(truth, axis, k), take_slice(masks[label], axis, k)
        rows, cols = np.nonzero(reference | prediction)
        pad = 12
        window = (slice(max(rows.min() - pad, 0), rows.max() + pad), slice(max(cols.min() - pad, 0), cols.max() + pad))
        ax.imshow(take_slice(prepared.image, axis, k)[window], cmap="gray", interpolation="nearest")
        ax.imshow(np.ma.masked_where(~prediction[window], prediction[window]), cmap="autumn", alpha=0.45,
                  interpolation="nearest")
        ax.contour(reference[window], levels=[0.5], colors="cyan", linewidths=1.0)
        for c in shown:
            if c.slice_index != k:
                continue
            (x, y), positive = c.points[0], c.point_labels[0] == 1
            ax.plot(x - window[1].start, y - window[0].start, marker="+" if positive else "x", markersize=11,
                    markeredgewidth=2.5, color="lime" if positive else "red")
        ax.set_title(f"round {r}: Dice {dice(masks[label], truth):.3f}\nslice {k}"
                     + (f", {len(shown)} click{'s' if len(shown) != 1 else ''}" if r else ", box3d"), fontsize=9)
        ax.set_axis_off()
    name = subject.label_map[label].name
    fig.suptitle(f"region_growing_3d, CVPR 2025 clicks, phantom knee {subject.id}, label {label} ({name}): cyan "
                 "reference, orange prediction, + positive / x negative clicks on the shown slice; 3D Dice",
                 fontsize=9)
    save_palette_png(fig, args.out, dpi=80)


if __name__ == "__main__":
    main()

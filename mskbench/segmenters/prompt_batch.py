"""Segmenter-protocol helpers: check a slice's prompts and batch them for one decoder call.

A slice's prompts come from several labels and several prompters. A SAM-style
decoder takes a batch only when every prompt has the same token layout (same
kind, same number of points; SAM pads a point-only prompt with a "not a point"
token, so mixing layouts would change the result), so prompts are grouped by
layout and each group is one decoder call; usually there is one group.

Multimask policy (as documented for ``SamPredictor.predict`` and
``SAM2ImagePredictor.predict``): a single click is ambiguous, so it gets
``multimask_output=True`` and the mask with the highest predicted IoU;
every other prompt (box, box + point, several points) gets one mask.

Coordinates are passed to the model exactly as recorded (inclusive box
corners, pixel-index points), which is what a user calling the upstream
predictor with the same prompt does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mskbench.errors import PluginError
from mskbench.types import PROMPT_KINDS, Prompt

#: what SAM-family decoders take; ``none`` (automatic mode) is not offered.
SAM_PROMPTS = frozenset({"box", "point", "box+point"})
BOX_PROMPTS = frozenset({"box"})


@dataclass(frozen=True)
class PromptGroup:
    """Prompts sharing one token layout, as the arrays the upstream predictors take.

    ``indices`` are positions in the slice's prompt list; ``boxes`` is
    (n, 4) and ``points`` (n, k, 2) in (x, y) pixels, ``point_labels`` (n, k).
    """

    kind: str
    indices: tuple[int, ...]
    boxes: np.ndarray | None
    points: np.ndarray | None
    point_labels: np.ndarray | None

    @property
    def multimask(self) -> bool:
        """True for a single click, the one ambiguous prompt (see module docstring)."""
        return self.kind == "point" and self.points is not None and self.points.shape[1] == 1


def _check_one(prompt: Prompt, index: int, supported: frozenset[str], shape: tuple[int, int], model: str) -> None:
    where = f"prompt {index} (label {prompt.label}, prompter '{prompt.prompter}')"
    if prompt.kind not in PROMPT_KINDS:
        raise PluginError(f"{where}: unknown prompt kind {prompt.kind!r}; use one of {', '.join(PROMPT_KINDS)}")
    if prompt.kind not in supported:
        raise PluginError(
            f"{where}: model '{model}' does not take {prompt.kind} prompts; it supports {', '.join(sorted(supported))}"
        )
    height, width = shape
    if "box" in prompt.kind:
        if prompt.box is None or len(prompt.box) != 4:
            raise PluginError(f"{where}: a {prompt.kind} prompt needs box = (x_min, y_min, x_max, y_max)")
        x_min, y_min, x_max, y_max = prompt.box
        if not (x_min <= x_max and y_min <= y_max):
            raise PluginError(f"{where}: empty box {prompt.box}; needs x_min <= x_max and y_min <= y_max")
        if x_min < 0 or y_min < 0 or x_max > width - 1 or y_max > height - 1:
            raise PluginError(
                f"{where}: box {prompt.box} lies outside the {height}x{width} slice; the prompter must clip it "
                "(mskbench.prompting.boxes.clip_box) and set clipped=True"
            )
    if "point" in prompt.kind:
        if (
            not prompt.points
            or len(prompt.points) != len(prompt.point_labels)
            or any(label not in (0, 1) for label in prompt.point_labels)
        ):
            raise PluginError(f"{where}: a {prompt.kind} prompt needs points with one label (1 or 0) each")
        for x, y in prompt.points:
            if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
                raise PluginError(f"{where}: point ({x}, {y}) lies outside the {height}x{width} slice")


def check_prompts(prompts: Sequence[Prompt], supported: frozenset[str], shape: tuple[int, int], model: str) -> None:
    """Decode-time check of every prompt; the first bad one is a one-line :class:`PluginError`."""
    for index, prompt in enumerate(prompts):
        _check_one(prompt, index, supported, shape, model)


def group_prompts(prompts: Sequence[Prompt]) -> list[PromptGroup]:
    """Group prompts by token layout, in first-appearance order, as float64 arrays."""
    layouts: dict[tuple[str, int], list[int]] = {}
    for index, prompt in enumerate(prompts):
        n_points = len(prompt.points) if "point" in prompt.kind else 0
        layouts.setdefault((prompt.kind, n_points), []).append(index)
    groups = []
    for (kind, n_points), indices in layouts.items():
        members = [prompts[i] for i in indices]
        boxes = np.array([p.box for p in members], dtype=np.float64) if "box" in kind else None
        points = labels = None
        if n_points:
            points = np.array([p.points for p in members], dtype=np.float64).reshape(len(members), n_points, 2)
            labels = np.array([p.point_labels for p in members], dtype=np.int64).reshape(len(members), n_points)
        groups.append(PromptGroup(kind, tuple(indices), boxes, points, labels))
    return groups

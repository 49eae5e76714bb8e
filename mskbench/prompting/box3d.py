"""The `box3d` prompter: a 3D box as the reference's extent along the slicing axis plus a 2D box on a key slice.

This is the initial prompt of the CVPR 2025 interactive protocol, stated in
slice terms: ``extent`` = (first, last) slice of the label along the slicing
axis, and the tight box of the label on the key slice, jittered with the
rules of ``jitter_box`` (:mod:`mskbench.prompting.jitter`) and clipped.

Key slice: ``largest`` = the slice with the largest reference area (ties:
the first); ``middle`` = (first + last) // 2, or when the label is absent
there (a non-convex structure) the nearest slice that holds it (ties: the
lower one). The CVPR 2025 box script (``get_boxes.py`` in
JunMa11/CVPR-MedSegFMCompetition) had two rules: ``median_voxel`` = the slice
of the label's voxel n // 2 when its n voxels are ordered by slice (the
median by voxel count; the script until Feb 2025), ``median_slice`` = the
slice at position m // 2 of the m slices holding the label (since its
commit b53b654, 1 May 2025).

Jitter: the modes of ``jitter_box``, plus ``cvpr25``, that script's rule:
one integer b uniform in 0..max_shift per box, every side moved outward by
int(b · W / 256) pixels in x and int(b · H / 256) in y (W × H the slice).

A slice model uses a box3d only with ``per_slice = true`` on the model,
which gives every slice of the extent the key slice's 2D box.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mskbench.errors import PluginError
from mskbench.prompting.boxes import Box, clip_box, tight_box
from mskbench.prompting.jitter import JITTER_MODES, RESOLUTIONS, check_max_shift, jitter_box, shift_in_pixels
from mskbench.types import Prompt

KEY_SLICES: tuple[str, ...] = ("largest", "middle", "median_voxel", "median_slice")
MODES: tuple[str, ...] = (*JITTER_MODES, "cvpr25")


def key_slice(areas: np.ndarray, rule: str) -> int:
    """The key slice index from per-slice areas of one label (see module docstring)."""
    present = np.flatnonzero(areas)
    if rule == "largest":
        return int(np.argmax(areas))
    if rule == "median_voxel":
        return int(np.searchsorted(np.cumsum(areas), int(areas.sum()) // 2, side="right"))
    if rule == "median_slice":
        return int(present[present.size // 2])
    middle = (int(present[0]) + int(present[-1])) // 2
    return int(present[np.argmin(np.abs(present - middle))])


def cvpr25_jitter(box: Box, max_shift: float, shape: tuple[int, int], rng: np.random.Generator) -> Box:
    """CVPR 2025's outward jitter (module docstring); unclipped, like :func:`jitter_box`."""
    b = int(rng.integers(0, int(max_shift) + 1))
    height, width = shape
    dx, dy = int(b * width / 256), int(b * height / 256)
    x_min, y_min, x_max, y_max = box
    return (x_min - dx, y_min - dy, x_max + dx, y_max + dy)


class Box3dPrompter:
    """One ``box3d`` prompt per label present in the subject's reference."""

    produces = frozenset({"box3d"})

    def __init__(
        self, key_slice: str = "largest", mode: str = "outward", max_shift: float = 0.0, resolution: str = "original"
    ) -> None:
        for name, value, allowed in (("key_slice", key_slice, KEY_SLICES), ("mode", mode, MODES),
                                     ("resolution", resolution, RESOLUTIONS)):
            if value not in allowed:
                raise PluginError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        self.max_shift = check_max_shift(max_shift)
        if mode == "cvpr25" and resolution != "original":
            raise PluginError("resolution: mode = \"cvpr25\" scales its shift by the slice size / 256 itself; "
                              "leave resolution = \"original\"")
        if mode == "cvpr25" and not self.max_shift.is_integer():
            raise PluginError(f"max_shift: {max_shift!r} must be a whole number with mode = \"cvpr25\" "
                              "(the largest b; CVPR 2025 uses 5)")
        self.key_slice = key_slice
        self.mode = mode
        self.resolution = resolution

    def volume_prompts(
        self, image: np.ndarray, reference: np.ndarray, labels: Sequence[int], axis: int, rng: np.random.Generator
    ) -> list[Prompt]:
        other = tuple(a for a in range(reference.ndim) if a != axis)
        prompts = []
        for label in labels:
            mask = reference == label
            areas = mask.sum(axis=other)
            present = np.flatnonzero(areas)
            if present.size == 0:
                continue
            k = key_slice(areas, self.key_slice)
            plane = np.take(mask, k, axis=axis)
            if self.mode == "cvpr25":
                moved = cvpr25_jitter(tight_box(plane), self.max_shift, plane.shape, rng)
            else:
                shift = shift_in_pixels(self.max_shift, self.resolution, plane.shape)
                moved = jitter_box(tight_box(plane), self.mode, shift, rng)
            box, clipped = clip_box(moved, plane.shape)
            prompts.append(Prompt(
                kind="box3d", label=int(label), prompter="", seed=0, box=box, clipped=clipped,
                slice_index=k, extent=(int(present[0]), int(present[-1])),
            ))
        return prompts


def per_slice_boxes(prompts: Sequence[Prompt]) -> dict[int, list[Prompt]]:
    """A slice model's view of box3d prompts: the key slice's 2D box on every slice of the extent."""
    out: dict[int, list[Prompt]] = {}
    for p in prompts:
        first, last = p.extent
        for k in range(first, last + 1):
            out.setdefault(k, []).append(Prompt(
                kind="box", label=p.label, prompter=p.prompter, seed=p.seed, instance=p.instance, box=p.box,
                clipped=p.clipped,
            ))
    return out

"""The initial (round 0) prompts of one cell on one subject, and a slice model's view of them.

Prompts depend on (prompter, seed, dataset, subject, slice), never on the
model, so every model of a suite sees the very same prompts. Each returned
prompt carries the prompter's suite name, its derived seed and the slice it
lies on (a box3d: its key slice).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mskbench.data.preprocess import PreparedSubject, take_slice
from mskbench.prompting.box3d import per_slice_boxes
from mskbench.prompting.seeding import VOLUME, prompt_rng
from mskbench.protocols import InteractivePrompter, SubjectPrompter, VolumePrompter
from mskbench.types import Prompt, SliceRef

PromptsBySlice = dict[int, list[Prompt]]


def initial_prompts(
    prompter: Any, name: str, seed: int, dataset: str, prepared: PreparedSubject,
    label_ids: Sequence[int], images: Mapping[int, np.ndarray], references: Mapping[int, np.ndarray],
) -> PromptsBySlice:
    """Round-0 prompts by slice; an interactive prompter's come from its initial prompter (none: empty)."""
    source = prompter.initial_prompter if isinstance(prompter, InteractivePrompter) else prompter
    subject_id = prepared.subject.id
    out: PromptsBySlice = {}
    if source is None:
        return out
    if isinstance(source, (SubjectPrompter, VolumePrompter)):
        rng, derived = prompt_rng(seed, name, dataset, subject_id, VOLUME)
        made = (source.subject_prompts(prepared.subject, label_ids, prepared.axis) if isinstance(source, SubjectPrompter)
                else source.volume_prompts(prepared.image, prepared.labels, label_ids, prepared.axis, rng))
        for p in made:
            out.setdefault(p.slice_index, []).append(dataclasses.replace(p, prompter=name, seed=derived))
        return out
    for k in prepared.slice_indices:
        rng, derived = prompt_rng(seed, name, dataset, subject_id, k)
        where = SliceRef(dataset, subject_id, k, prepared.pixel_spacing)
        raw = source.prompts(images[k], references[k], label_ids, rng, where)
        out[k] = [dataclasses.replace(p, prompter=name, seed=derived, slice_index=k) for p in raw]
    return out


def slice_arrays(prepared: PreparedSubject) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """The image and reference slice (views) of every slice to evaluate, as :func:`initial_prompts` takes them."""
    axis = prepared.axis
    images = {k: take_slice(prepared.image, axis, k) for k in prepared.slice_indices}
    references = {k: take_slice(prepared.labels, axis, k) for k in prepared.slice_indices}
    return images, references


def slice_view(prompts: PromptsBySlice) -> PromptsBySlice:
    """What a slice model decodes: box3d prompts become the key slice's box on each slice of their extent."""
    flat = [p for ps in prompts.values() for p in ps]
    boxes3d = [p for p in flat if p.kind == "box3d"]
    if not boxes3d:
        return prompts
    out = per_slice_boxes(boxes3d)
    for p in flat:
        if p.kind != "box3d":
            out.setdefault(p.slice_index, []).append(p)
    return out


def by_label(prompts: Sequence[Prompt]) -> dict[int, Prompt]:
    """One slice's initial prompt per label (interactive prompters make one per label and slice)."""
    return {p.label: p for p in prompts}


def all_by_label(prompts: Sequence[Prompt]) -> dict[int, list[Prompt]]:
    """Every initial prompt of each label, in order: a 2D initial prompter gives a volume model one per slice."""
    out: dict[int, list[Prompt]] = {}
    for p in prompts:
        out.setdefault(p.label, []).append(p)
    return out

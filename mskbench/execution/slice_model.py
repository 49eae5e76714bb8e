"""A slice model's cells on one subject: encode each slice once, then per cell decode or run its rounds.

Batches are encoded through :func:`~mskbench.execution.encode_pipeline.encoded_batches`,
on a GPU ahead of the batch being decoded.

One-shot cells decode the prompts of ONE cell per decode call, so a cell's
rows never depend on which other cells share the model. Interactive cells
reuse the same embedding for every round (:mod:`mskbench.interaction.session`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mskbench.data.preprocess import PreparedSubject, take_slice
from mskbench.execution.encode_pipeline import encode_ahead, encoded_batches
from mskbench.execution.prompts import PromptsBySlice, by_label, slice_view
from mskbench.execution.records import CellPrediction
from mskbench.interaction.session import RoundRng, Rounds, VolumeRounds, slice_rounds
from mskbench.model_output import check_embeddings, check_masks
from mskbench.plan import Cell
from mskbench.protocols import InteractivePrompter, Segmenter


def _paste(volumes: dict[int, np.ndarray], label: int, mask: np.ndarray, shape: tuple[int, ...], axis: int, k: int,
           union: bool) -> None:
    volume = volumes.get(label)
    if volume is None:
        volume = volumes[label] = np.zeros(shape, dtype=bool)
    target = take_slice(volume, axis, k)
    if union:
        np.logical_or(target, mask, out=target)
    else:
        target[...] = mask


def _add_rounds(prediction: CellPrediction, rounds: Rounds) -> None:
    prediction.prompts.extend(rounds.clicks)
    prediction.timings.extend((r, k, "refine", seconds) for r, k, seconds in rounds.timings)


def predict_slice_model(
    model: Segmenter, prepared: PreparedSubject, cells: Sequence[Cell], prompters: Mapping[str, Any],
    initial: Mapping[str, PromptsBySlice], label_ids: Sequence[int], batch_size: int,
    rngs: Mapping[str, RoundRng], on_slice: Callable[[], None], who: str, ahead: int | None = None,
) -> dict[str, CellPrediction]:
    """Predictions of every cell; ``initial`` and ``rngs`` are keyed by cell id; ``who`` names the model in
    errors about what it returned (:mod:`mskbench.model_output`); ``ahead``: batches encoded ahead
    (:mod:`mskbench.execution.encode_pipeline`; None: the model's device decides). No value depends on ``ahead``."""
    axis, shape = prepared.axis, prepared.labels.shape
    plane = shape[:axis] + shape[axis + 1:]  # a slice's (rows, columns)
    out: dict[str, CellPrediction] = {}
    views: dict[str, PromptsBySlice] = {}
    per_slice: list[Cell] = []
    volume_sessions: dict[str, VolumeRounds] = {}
    for cell in cells:
        prompter = prompters[cell.prompter]
        interactive = isinstance(prompter, InteractivePrompter)
        rounds = prompter.rounds + 1 if interactive else 1
        recorded = [p for ps in initial[cell.cell_id].values() for p in ps]
        out[cell.cell_id] = CellPrediction([{} for _ in range(rounds)], recorded, interactive=interactive)
        views[cell.cell_id] = slice_view(initial[cell.cell_id])
        if interactive and prompter.space == "volume":
            volume_sessions[cell.cell_id] = VolumeRounds(
                model, prepared.labels, axis, label_ids, prompter, cell.prompter, rngs[cell.cell_id]
            )
        elif interactive:
            per_slice.append(cell)
    one_shot = [c for c in cells if not out[c.cell_id].interactive]

    indices = list(prepared.slice_indices)
    batches = [indices[start : start + batch_size] for start in range(0, len(indices), batch_size)]
    ahead = encode_ahead(model) if ahead is None else ahead
    for encoded in encoded_batches(
        model, batches, lambda batch: [take_slice(prepared.image, axis, k) for k in batch],
        lambda embeddings, n: check_embeddings(embeddings, n, who), ahead,
    ):
        encode_seconds = encoded.seconds_per_slice
        for k, embedding in zip(encoded.indices, encoded.embeddings, strict=True):
            for prediction in out.values():
                prediction.timings.append((0, k, "encode", encode_seconds))
            for cell in one_shot:
                prompts = views[cell.cell_id].get(k, [])
                if not prompts:
                    continue
                began = time.perf_counter()
                masks = model.decode(embedding, prompts)
                prediction = out[cell.cell_id]
                prediction.timings.append((0, k, "decode", time.perf_counter() - began))
                masks = check_masks(masks, len(prompts), plane, who)
                for prompt, mask in zip(prompts, masks, strict=True):
                    _paste(prediction.rounds[0], prompt.label, mask, shape, axis, k, union=True)
            reference = take_slice(prepared.labels, axis, k)
            for cell in per_slice:
                prompter, prediction = prompters[cell.prompter], out[cell.cell_id]
                rounds = slice_rounds(
                    model, embedding, k, reference, by_label(views[cell.cell_id].get(k, [])), label_ids, prompter,
                    cell.prompter, rngs[cell.cell_id],
                )
                for r, masks in enumerate(rounds.masks):
                    for label, mask in masks.items():
                        _paste(prediction.rounds[r], label, mask, shape, axis, k, union=False)
                _add_rounds(prediction, rounds)
            for cell_id, session in volume_sessions.items():
                session.start_slice(k, embedding, by_label(views[cell_id].get(k, [])))
            on_slice()
    for cell_id, session in volume_sessions.items():
        rounds = session.finish()
        out[cell_id].rounds = rounds.masks
        _add_rounds(out[cell_id], rounds)
    return out

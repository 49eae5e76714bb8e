"""A volume model's cells on one subject: one ``predict`` call per one-shot cell, or the 3D round loop."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from mskbench.data.preprocess import PreparedSubject
from mskbench.execution.prompts import PromptsBySlice, all_by_label
from mskbench.execution.records import CellPrediction
from mskbench.interaction.session import RoundRng, volume_model_rounds
from mskbench.model_kinds import check_volume_output
from mskbench.plan import Cell
from mskbench.prompting.seeding import VOLUME
from mskbench.protocols import InteractivePrompter, VolumeInput


def predict_volume_model(
    model: Any, model_name: str, prepared: PreparedSubject, cells: Sequence[Cell], prompters: Mapping[str, Any],
    initial: Mapping[str, PromptsBySlice], label_ids: Sequence[int], rngs: Mapping[str, RoundRng],
) -> dict[str, CellPrediction]:
    """Predictions of every cell; ``none`` prompts mean an automatic call with no prompt."""
    subject = prepared.subject
    volume = VolumeInput(
        prepared.image, tuple(subject.spacing), prepared.axis, tuple(label_ids), raw=subject.volume,
        stored_orientation=subject.stored_orientation,
        label_names={label: subject.label_map[label].name for label in label_ids},
        label_tissues={label: subject.label_map[label].tissue for label in label_ids},
    )
    out = {}
    for cell in cells:
        prompter = prompters[cell.prompter]
        recorded = [p for ps in initial[cell.cell_id].values() for p in ps]
        if isinstance(prompter, InteractivePrompter):
            rounds = volume_model_rounds(
                model, model_name, volume, prepared.labels, all_by_label(recorded), prompter, cell.prompter,
                rngs[cell.cell_id],
            )
            prediction = CellPrediction(rounds.masks, recorded + rounds.clicks, interactive=True)
            prediction.timings.extend((r, k, "refine", seconds) for r, k, seconds in rounds.timings)
        else:
            began = time.perf_counter()
            labels = check_volume_output(
                model.predict(volume, [p for p in recorded if p.kind != "none"]), prepared.labels.shape, model_name
            )
            seconds = time.perf_counter() - began
            prediction = CellPrediction([{label: labels == label for label in label_ids}], recorded)
            prediction.timings.append((0, VOLUME, "predict", seconds))
        out[cell.cell_id] = prediction
    return out

"""The encode-ahead pipeline (issue 15, item 4) changes no value: on CPU, tiny random SAM-family models give
the same records with the pipeline on or off, and every slice's masks are those of a direct encode+decode of
that slice; a pipeline handing a batch the previous batch's embeddings is caught."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from sam_family_tiny import phantom, single_torch_thread, tiny_sam, tiny_sam2  # noqa: F401

from mskbench.data.preprocess import PreprocessConfig, prepare_subject
from mskbench.execution import encode_pipeline, slice_model
from mskbench.execution.encode_pipeline import EncodedBatch, encode_ahead, encoded_batches
from mskbench.execution.prompts import initial_prompts, slice_view
from mskbench.execution.unit import Unit, UnitContext, run_unit, unit_predictions
from mskbench.interaction.clicks import ClicksPrompter
from mskbench.metrics.overlap import OverlapMetrics
from mskbench.model_kinds import ModelKind
from mskbench.plan import Cell
from mskbench.prompting.oracle import GtBoxPrompter
from mskbench.types import LabelInfo, Subject, TissueClass

N_SLICES, BATCH = 5, 2  # three batches, the last one short


def subject() -> Subject:
    """Five distinct 70x96 slices (anisotropic spacing), two labels that move from slice to slice."""
    volume = np.stack([phantom(70, 96, seed=10 + s).astype(np.float32) for s in range(N_SLICES)])
    labels = np.zeros(volume.shape, np.int32)
    for k in range(N_SLICES):
        labels[k, 15 + 3 * k : 35 + 3 * k, 20 + 4 * k : 44 + 4 * k] = 1
        labels[k, 50:62, 8 + 5 * k : 30 + 5 * k] = 2
    label_map = {1: LabelInfo(1, "a", TissueClass.BONE), 2: LabelInfo(2, "b", TissueClass.MUSCLE)}
    return Subject("s1", volume, labels, (3.0, 0.8, 0.7), np.eye(4), label_map)


PREPARED = prepare_subject(subject(), "through_plane", PreprocessConfig(min_object_pixels=0, min_object_voxels=0))
PROMPTERS = {
    "gt_box": GtBoxPrompter(),
    "per_slice": ClicksPrompter(initial="box", rounds=2, space="slice", placement="component_centroid"),
}
CONTEXT = UnitContext(PROMPTERS, [OverlapMetrics()], None)


def unit(cells: list[Cell]) -> Unit:
    images = {k: PREPARED.image[k] for k in PREPARED.slice_indices}
    references = {k: PREPARED.labels[k] for k in PREPARED.slice_indices}
    initial = {c.cell_id: initial_prompts(PROMPTERS[c.prompter], c.prompter, c.seed, "d", PREPARED, [1, 2], images,
                                          references) for c in cells}
    kind = ModelKind("slice", True, frozenset({"logits"}))
    return Unit("d", PREPARED, cells[0].model, kind, BATCH, tuple(cells), initial)


def segmenter(name: str):
    from mskbench.segmenters.medsam import MedSamSegmenter
    from mskbench.segmenters.sam import SamSegmenter
    from mskbench.segmenters.sam2_image import Sam2Segmenter

    build = {"sam": (SamSegmenter, tiny_sam), "medsam": (MedSamSegmenter, tiny_sam), "sam2": (Sam2Segmenter, tiny_sam2)}
    cls, model = build[name]
    return cls(model(seed=3), device="cpu", precision="fp32", variant="tiny")


def without_timings(records) -> str:
    """Every table but timings, as repr: exact floats, and NaN metric values compare equal."""
    return repr([(r.cell_id, {t: rows for t, rows in r.tables.items() if t != "timings"}) for r in records])


def mismatched_slices(model, cell: Cell, predicted: dict[int, np.ndarray]) -> list[int]:
    """Slices whose pasted masks differ from ``decode(encode([that slice]))`` called directly, one slice at a time."""
    prompts = slice_view(unit([cell]).initial[cell.cell_id])
    wrong = []
    for k in PREPARED.slice_indices:
        [embedding] = model.encode([PREPARED.image[k]])
        for prompt, mask in zip(prompts.get(k, []), model.decode(embedding, prompts.get(k, [])), strict=True):
            if not np.array_equal(predicted[prompt.label][k], mask):
                wrong.append(k)
    return sorted(set(wrong))


#: MedSAM's cubic 1024² resize and SAM 2's Hiera make those two ~30 s on a loaded 2-core machine
@pytest.mark.parametrize("name", ["sam", pytest.param("medsam", marks=pytest.mark.slow),
                                  pytest.param("sam2", marks=pytest.mark.slow)])
def test_pipeline_on_gives_the_records_of_pipeline_off_and_of_direct_calls(monkeypatch, name):
    """Interactive rounds (``refine``) run on the main thread while the next batch is encoded: SAM and SAM 2."""
    model = segmenter(name)
    cells = [Cell("d", name, "gt_box", 0)] + ([Cell("d", name, "per_slice", 0)] if name == "sam" else [])
    assert encode_ahead(model) == 0  # on CPU the pipeline is off by default ...
    off = run_unit(unit(cells), CONTEXT, model)
    monkeypatch.setitem(encode_pipeline.ENCODE_AHEAD, "cpu", 2)  # ... and forced on here
    assert encode_ahead(model) == 2
    threads = []
    real = encode_pipeline._encode_one
    monkeypatch.setattr(encode_pipeline, "_encode_one",
                        lambda *a: (threads.append(threading.current_thread().name), real(*a))[1])
    on = run_unit(unit(cells), CONTEXT, model)
    assert threads == ["mskbench-encode_0"] * 3  # every batch encoded on the background thread
    assert without_timings(on) == without_timings(off)
    assert {r["peak_gpu_memory_mb"] for r in on[0].tables["timings"]} == {None}  # NULL off CUDA
    if name == "sam":
        predictions = unit_predictions(unit(cells[:1]), PROMPTERS, model)
        assert mismatched_slices(model, cells[0], predictions[cells[0].cell_id].rounds[0]) == []


def test_a_pipeline_that_hands_a_batch_the_previous_batchs_embeddings_is_caught(monkeypatch):
    """The planted bug: batch k+1 decoded with batch k's embeddings (distinct slices, so the masks differ)."""
    model = segmenter("sam")
    cell = Cell("d", "sam", "gt_box", 0)
    real = slice_model.encoded_batches

    def shifted(*args):
        previous = None
        for batch in real(*args):
            embeddings = batch.embeddings if previous is None else (previous + batch.embeddings)[: len(batch.indices)]
            previous = batch.embeddings
            yield replace(batch, embeddings=embeddings)

    monkeypatch.setattr(slice_model, "encoded_batches", shifted)
    predictions = unit_predictions(unit([cell]), PROMPTERS, model)
    assert mismatched_slices(model, cell, predictions[cell.cell_id].rounds[0]) == [2, 3, 4]


class SlowEncoder:
    """Encodes a slice to its sum after a pause, recording how far ahead of the consumer it ran."""

    concurrent_encode = True

    def __init__(self, fail_at: int | None = None):
        self.fail_at, self.encoded = fail_at, []

    def encode(self, images):
        time.sleep(0.01)
        value = int(images[0][0, 0])
        if value == self.fail_at:
            raise RuntimeError(f"encoder failed on {value}")
        self.encoded.append(value)
        return [float(image.sum()) for image in images]


def batches_of(n: int, size: int = 2) -> list[list[int]]:
    return [list(range(s, min(s + size, n))) for s in range(0, n, size)]


def images_of(batch):
    return [np.full((3, 4), k, np.uint8) for k in batch]


@pytest.mark.parametrize("ahead", [0, 1, 3])
def test_batches_come_in_order_with_their_own_embeddings_and_the_queue_is_bounded(ahead):
    model = SlowEncoder()
    seen = []
    for encoded in encoded_batches(model, batches_of(9), images_of, lambda e, n: e, ahead):
        assert isinstance(encoded, EncodedBatch)
        seen.append((encoded.indices, encoded.embeddings))
        time.sleep(0.03)  # the consumer is slower than the encoder: the thread runs ahead, up to `ahead` batches
        assert len(model.encoded) <= len(seen) + ahead  # batches encoded so far
    assert seen == [(b, [12.0 * k for k in b]) for b in batches_of(9)]


def test_an_encoder_error_is_raised_at_its_batch_and_later_batches_are_not_started():
    model = SlowEncoder(fail_at=4)
    got = []
    with pytest.raises(RuntimeError, match="encoder failed on 4"):
        for encoded in encoded_batches(model, batches_of(12), images_of, lambda e, n: e, ahead=1):
            got.append(encoded.indices)
    assert got == [[0, 1], [2, 3]] and max(model.encoded) < 8


def test_models_that_do_not_allow_it_are_encoded_in_the_calling_thread(monkeypatch):
    monkeypatch.setitem(encode_pipeline.ENCODE_AHEAD, "cpu", 2)
    plain = type("Plugin", (), {"device": "cpu"})()
    assert encode_ahead(plain) == 0
    assert encode_ahead(SlowEncoder()) == 2


@pytest.mark.parametrize("name, state", [("sam", "features"), ("sam2", "_features")])
def test_encoding_leaves_the_decoding_predictor_alone(name, state):
    """What makes ``concurrent_encode`` true: a decode in progress keeps its restored features while the next
    batch is encoded (a shared predictor would have them replaced, then cleared by ``reset``)."""
    model = segmenter(name)
    restored = object()
    setattr(model.predictor, state, restored)
    model.encode([PREPARED.image[0]])
    assert getattr(model.predictor, state) is restored


def test_peak_gpu_memory_is_reset_before_a_models_unit_and_recorded_in_every_timings_row(monkeypatch):
    """The CUDA branch with torch.cuda's allocator statistics stubbed (no GPU here): reset, run, read."""
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: calls.append("read") or 3 * 2**20)

    class OnCuda:
        """A box-filling slice model that says it is on CUDA; records when it is called."""

        supported_prompts = frozenset({"box"})
        device = torch.device("cuda")

        def encode(self, images):
            calls.append("encode")
            return [image.shape for image in images]

        def decode(self, shape, prompts):
            calls.append("decode")
            masks = np.zeros((len(prompts), *shape), bool)
            for mask, p in zip(masks, prompts, strict=True):
                x0, y0, x1, y1 = (int(v) for v in p.box)
                mask[y0 : y1 + 1, x0 : x1 + 1] = True
            return masks

    [records] = run_unit(unit([Cell("d", "m", "gt_box", 0)]), CONTEXT, OnCuda())
    assert calls[:2] == ["sync", "reset"] and calls[-2:] == ["sync", "read"]
    assert {"encode", "decode"} <= set(calls[2:-2]) and "reset" not in calls[2:]
    assert {row["peak_gpu_memory_mb"] for row in records.tables["timings"]} == {3.0}

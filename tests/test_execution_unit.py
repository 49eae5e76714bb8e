"""Units of work: per-round records, encode once per slice whatever the rounds, one cell per decode call,
cell rows independent of the other cells, picklable units."""

from __future__ import annotations

import dataclasses
import json
import pickle

import numpy as np
from sam_family_tiny import phantom, single_torch_thread, tiny_sam  # noqa: F401

from mskbench.data.preprocess import PreprocessConfig, prepare_subject
from mskbench.execution.prompts import initial_prompts
from mskbench.execution.unit import Unit, UnitContext, run_unit
from mskbench.interaction.clicks import ClicksPrompter
from mskbench.metrics.overlap import OverlapMetrics
from mskbench.model_kinds import ModelKind
from mskbench.plan import Cell
from mskbench.prompting.box3d import Box3dPrompter
from mskbench.prompting.oracle import GtBoxPrompter
from mskbench.segmenters.random_walker import RandomWalkerClicks
from mskbench.types import LabelInfo, Subject, TissueClass


def subject() -> Subject:
    """Four distinct 70x96 slices along axis 0 (the through-plane axis: spacing 3.0 mm), two labels."""
    volume = np.stack([phantom(70, 96, seed=s).astype(np.float32) for s in range(4)])
    labels = np.zeros(volume.shape, np.int32)
    for k, (r, c) in enumerate([(20, 30), (22, 34), (25, 40), (27, 44)]):
        labels[k, r : r + 18, c : c + 24] = 1
        labels[k, 50:60, 10 + 3 * k : 30 + 3 * k] = 2
    label_map = {1: LabelInfo(1, "a", TissueClass.BONE), 2: LabelInfo(2, "b", TissueClass.MUSCLE)}
    return Subject("s1", volume, labels, (3.0, 0.8, 0.7), np.eye(4), label_map)


PREPARED = prepare_subject(subject(), "through_plane", PreprocessConfig(min_object_pixels=0, min_object_voxels=0))
PROMPTERS = {
    "box3d": Box3dPrompter(),
    "gt_box": GtBoxPrompter(),
    "cvpr": ClicksPrompter(initial="box3d", rounds=3),
    "per_slice": ClicksPrompter(initial="box", rounds=2, space="slice", placement="component_centroid"),
    "point_clicks": ClicksPrompter(initial="point", rounds=1),
    "point_clicks_slice": ClicksPrompter(initial="point", rounds=2, space="slice", placement="random_error"),
}
CONTEXT = UnitContext(PROMPTERS, [OverlapMetrics()], None)


def unit(cells: list[Cell], kind: ModelKind = ModelKind("slice", True, frozenset({"mask"}))) -> Unit:
    label_ids = [1, 2]
    images = {k: PREPARED.image[k] for k in PREPARED.slice_indices}
    references = {k: PREPARED.labels[k] for k in PREPARED.slice_indices}
    initial = {c.cell_id: initial_prompts(PROMPTERS[c.prompter], c.prompter, c.seed, "d", PREPARED, label_ids,
                                          images, references) for c in cells}
    return Unit("d", PREPARED, cells[0].model, kind, 2, tuple(cells), initial)


class Counting:
    """Wraps a slice model and records what reaches it."""

    def __init__(self, inner):
        self.inner, self.encoded, self.decode_calls, self.refines = inner, [], [], 0
        self.supported_prompts, self.feedback = inner.supported_prompts, inner.feedback

    def encode(self, images):
        self.encoded.extend(image.tobytes() for image in images)
        return self.inner.encode(images)

    def decode(self, embedding, prompts):
        self.decode_calls.append({p.prompter for p in prompts})
        return self.inner.decode(embedding, prompts)

    def refine(self, embedding, prompt, previous):
        self.refines += 1
        return self.inner.refine(embedding, prompt, previous)


def rows(records, table, metric=None):
    return [r for r in records.tables[table] if metric is None or r["metric"] == metric]


def test_sam_encodes_each_slice_once_whatever_the_rounds_and_cells():
    from mskbench.segmenters.sam import SamSegmenter

    model = Counting(SamSegmenter(tiny_sam(seed=1), device="cpu", precision="fp32", variant="tiny"))
    cells = [Cell("d", "sam", name, 0) for name in ("box3d", "cvpr", "per_slice")]
    per_slice_unit = unit(cells, ModelKind("slice", True, frozenset({"logits"})))
    records = run_unit(per_slice_unit, CONTEXT, model)
    assert len(model.encoded) == len(PREPARED.slice_indices) == len(set(model.encoded)) == 4
    cvpr = records[1]
    assert sorted({r["round"] for r in rows(cvpr, "subject_metrics", "dice")}) == [0, 1, 2, 3]
    assert {r["metric"] for r in rows(cvpr, "subject_metrics") if r["round"] == 3} >= {"dsc_auc", "final_dsc", "noc_90"}


def test_records_of_a_cell_do_not_depend_on_the_other_cells():
    alone = run_unit(unit([Cell("d", "rw", "gt_box", 0)]), CONTEXT, Counting(RandomWalkerClicks()))
    model = Counting(RandomWalkerClicks())
    together = run_unit(unit([Cell("d", "rw", "box3d", 0), Cell("d", "rw", "gt_box", 0)]), CONTEXT, model)
    assert all(len(prompters) == 1 for prompters in model.decode_calls)  # one cell per decode call
    for table in ("slice_metrics", "subject_metrics", "prompts"):
        assert alone[0].tables[table] == together[1].tables[table]


def test_volume_space_clicks_are_recorded_per_round_on_their_slice():
    model = Counting(RandomWalkerClicks())
    [records] = run_unit(unit([Cell("d", "rw", "cvpr", 0)]), CONTEXT, model)
    prompts = records.tables["prompts"]
    initial = [p for p in prompts if p["round"] == 0]
    assert {p["kind"] for p in initial} == {"box3d"} and {(p["first_slice"], p["last_slice"]) for p in initial} == {(0, 3)}
    clicks = [p for p in prompts if p["round"] > 0]
    assert clicks and all(p["kind"] == "point" and p["slice_index"] in range(4) for p in clicks)
    for p in clicks:  # x = column, y = row on the slice; positive exactly where the reference has the label
        [[x, y]], [positive] = json.loads(p["points"]), json.loads(p["point_labels"])
        assert (PREPARED.labels[p["slice_index"], int(y), int(x)] == p["label"]) == bool(positive)
    # round 0: one refine per (slice, label) of the extent; then one per label and round that got a click
    assert model.refines == 8 + len({(p["round"], p["label"]) for p in clicks})
    dice = {(r["label"], r["round"]): r["value"] for r in rows(records, "subject_metrics", "dice")}
    summary = {(r["label"], r["metric"]): r["value"] for r in rows(records, "subject_metrics") if r["metric"] == "final_dsc"}
    assert summary[(1, "final_dsc")] == dice[(1, 3)]


def test_units_pickle():
    restored = pickle.loads(pickle.dumps(unit([Cell("d", "rw", "cvpr", 0)])))
    assert restored.cells == (Cell("d", "rw", "cvpr", 0),)
    np.testing.assert_array_equal(restored.prepared.labels, PREPARED.labels)


class RecordingVolume:
    """Wraps a volume model and records the prompts of every call."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []
        self.supported_prompts, self.feedback = inner.supported_prompts, inner.feedback

    def predict(self, volume, prompts):
        self.calls.append(("predict", list(prompts)))
        return self.inner.predict(volume, prompts)

    def refine(self, volume, prompts, previous):
        self.calls.append(("refine", list(prompts)))
        return self.inner.refine(volume, prompts, previous)


def test_volume_model_gets_every_slice_prompt_of_a_label_and_the_prompts_table_matches():
    """clicks(initial = "point") makes one point per (slice, label); a volume model sees all of them."""
    from mskbench.segmenters.region_growing_3d import RegionGrowing3D

    model = RecordingVolume(RegionGrowing3D())
    [records] = run_unit(unit([Cell("d", "rg", "point_clicks", 0)], ModelKind("volume", True, frozenset())),
                         CONTEXT, model)
    round0 = [prompts for what, prompts in model.calls[:2]]
    assert [what for what, _ in model.calls[:2]] == ["refine", "refine"]
    assert [sorted(p.slice_index for p in prompts) for prompts in round0] == [[0, 1, 2, 3], [0, 1, 2, 3]]
    seen = {(p.label, p.slice_index, p.points) for prompts in round0 for p in prompts}
    table = {(r["label"], r["slice_index"], tuple(map(tuple, json.loads(r["points"]))))
             for r in records.tables["prompts"] if r["round"] == 0}
    assert seen == table and len(table) == 8


class FindsNothing:
    """An interactive volume model that never segments anything, so every click must land inside its label."""

    supported_prompts, feedback = frozenset({"point", "box3d"}), frozenset()

    def refine(self, volume, prompts, previous):
        from mskbench.protocols import Refinement

        return Refinement(np.zeros(volume.image.shape, bool))


def test_volume_model_clicks_are_placed_against_each_labels_own_reference():
    [records] = run_unit(unit([Cell("d", "none", "cvpr", 0)], ModelKind("volume", True, frozenset())),
                         CONTEXT, FindsNothing())
    clicks = [r for r in records.tables["prompts"] if r["round"] > 0]
    assert {r["label"] for r in clicks} == {1, 2}
    for p in clicks:
        [[x, y]], [positive] = json.loads(p["points"]), json.loads(p["point_labels"])
        assert positive == 1 and PREPARED.labels[p["slice_index"], int(y), int(x)] == p["label"]


def test_an_empty_reference_gets_no_clicks_and_both_empty_rows():
    """Label 2 is in the label map but absent from the subject: no prompt, no click, every round both_empty."""
    empty = subject()
    empty.labels[empty.labels == 2] = 0
    prepared = prepare_subject(empty, "through_plane", PreprocessConfig(min_object_pixels=0, min_object_voxels=0))
    for prompter in ("cvpr", "per_slice"):
        cell = Cell("d", "rw", prompter, 0)
        images = {k: prepared.image[k] for k in prepared.slice_indices}
        references = {k: prepared.labels[k] for k in prepared.slice_indices}
        initial = {cell.cell_id: initial_prompts(PROMPTERS[prompter], prompter, 0, "d", prepared, [1, 2], images,
                                                 references)}
        [records] = run_unit(Unit("d", prepared, "rw", ModelKind("slice", True, frozenset({"mask"})), 2, (cell,),
                                  initial), CONTEXT, Counting(RandomWalkerClicks()))
        assert {p["label"] for p in records.tables["prompts"]} == {1}, prompter
        dice = [r for r in rows(records, "subject_metrics", "dice") if r["label"] == 2]
        assert sorted(r["round"] for r in dice) == list(range(PROMPTERS[prompter].rounds + 1))
        assert {r["case_state"] for r in dice} == {"both_empty"} and all(np.isnan(r["value"]) for r in dice)
        assert {r["case_state"] for r in rows(records, "slice_metrics", "dice") if r["label"] == 2} == {"both_empty"}
        derived = [r for r in rows(records, "subject_metrics") if r["label"] == 2 and r["metric"] == "dsc_auc"]
        assert len(derived) == 1 and np.isnan(derived[0]["value"])


def test_interactive_cells_sharing_a_model_give_the_rows_each_gives_alone():
    cells = [Cell("d", "rw", name, 0) for name in ("cvpr", "per_slice", "point_clicks_slice")]
    together = run_unit(unit(cells), CONTEXT, Counting(RandomWalkerClicks()))
    for cell, shared in zip(cells, together):
        [alone] = run_unit(unit([cell]), CONTEXT, Counting(RandomWalkerClicks()))
        for table in ("slice_metrics", "subject_metrics", "prompts"):
            assert _nan_safe(alone.tables[table]) == _nan_safe(shared.tables[table]), (cell.prompter, table)


def test_unit_context_and_a_unit_with_biomarkers_pickle_and_run_the_same():
    from mskbench.biomarkers.volume import TissueVolume
    from mskbench.execution.records import biomarker_rows
    from mskbench.plan import PlannedBiomarker

    structures = [PREPARED.subject.label_map[1], PREPARED.subject.label_map[2]]
    biomarkers = (PlannedBiomarker("volume", "tissue_volume", TissueVolume(), structures),)
    reference = tuple(biomarker_rows(biomarkers, PREPARED.labels, PREPARED, "reference"))
    original = dataclasses.replace(unit([Cell("d", "rw", "cvpr", 0)]), biomarkers=biomarkers,
                                   reference_biomarkers=reference)
    unit_copy, context_copy = pickle.loads(pickle.dumps((original, CONTEXT)))
    [expected] = run_unit(original, CONTEXT, RandomWalkerClicks())
    [got] = run_unit(unit_copy, context_copy, RandomWalkerClicks())
    assert got.tables["biomarkers"] == expected.tables["biomarkers"]
    assert {r["source"] for r in got.tables["biomarkers"]} == {"reference", "prediction"}
    for table in ("slice_metrics", "subject_metrics", "prompts"):
        assert _nan_safe(got.tables[table]) == _nan_safe(expected.tables[table])


def _nan_safe(table_rows):
    return [{k: "nan" if isinstance(v, float) and v != v else v for k, v in row.items()} for row in table_rows]

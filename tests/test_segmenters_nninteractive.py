"""The `nninteractive` model against nnInteractive itself: every mask the plugin returns equals what
nnInteractive's own session (loaded by its own ``initialize_from_trained_model_folder``) makes when driven
directly with the same interactions, written out here by hand on the array the session holds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from nninteractive_tiny import make_model_folder, reference_session, write_folder_files

from mskbench.errors import CheckpointError, PluginError
from mskbench.protocols import InteractiveVolumeModel, VolumeInput
from mskbench.segmenters.nninteractive import NnInteractiveModel
from mskbench.segmenters.nnunet_geometry import to_reader_index, to_reader_layout
from mskbench.types import Prompt
from mskbench_builtins.models import nninteractive as plugin

#: mskbench's RAS+ grid; slices along axis 1 are 14 x 11, along axis 2 14 x 18
SHAPE = (14, 18, 11)


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread():
    """One intra-op thread: a tiny network gains nothing from more on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_model_folder(tmp_path_factory.mktemp("nninteractive"))


def volume(axis: int) -> VolumeInput:
    """A stored-as-RAS subject: the session's array is the raw volume with its axes reversed."""
    rng = np.random.default_rng(0)
    i, j, k = np.meshgrid(*(np.linspace(-1, 1, n) for n in SHAPE), indexing="ij")
    raw = (100 + 60 * i - 30 * j + 45 * k + rng.normal(0, 10, SHAPE)).astype(np.float32)
    return VolumeInput(image=np.zeros(SHAPE, np.uint8), spacing=(0.8, 0.9, 3.0), axis=axis, labels=(1, 2), raw=raw)


def box3d(label: int, box: tuple, key: int, extent: tuple) -> Prompt:
    return Prompt(kind="box3d", label=label, prompter="b", seed=0, box=box, slice_index=key, extent=extent)


def click(label: int, x: float, y: float, k: int, positive: bool) -> Prompt:
    return Prompt(kind="point", label=label, prompter="c", seed=0, points=((x, y),), point_labels=(int(positive),),
                  slice_index=k)


def drive(session, image: np.ndarray, previous: np.ndarray | None, box: list, points: list) -> np.ndarray:
    """The challenge baseline's sequence, by hand, on the array the session holds."""
    session.set_image(np.ascontiguousarray(image)[None])
    buffer = torch.zeros(image.shape, dtype=torch.uint8)
    session.set_target_buffer(buffer)
    if previous is None:
        session.reset_interactions()
    else:
        session.add_initial_seg_interaction(np.ascontiguousarray(previous).astype(np.uint8))
    session.add_bbox_interaction(box, include_interaction=True, run_prediction=not points)
    for n, (where, positive) in enumerate(points):
        session.add_point_interaction(where, include_interaction=positive, run_prediction=n == len(points) - 1)
    return buffer.numpy() > 0


def drive_ras(session, raw: np.ndarray, previous: np.ndarray | None, box: list, points: list) -> np.ndarray:
    """:func:`drive` for a subject stored as RAS: the session holds the volume with its axes reversed."""
    before = None if previous is None else previous.transpose(2, 1, 0)
    return drive(session, raw.transpose(2, 1, 0), before, box, points).transpose(2, 1, 0)


# Per label: the box3d, its box on the session's (k, j, i) array as a 3D box and as the key slice's 2D box,
# then two clicks (x, y, slice, positive) with their (k, j, i) voxels. Slicing axis 1: rows are RAS axis 0
# (y), columns RAS axis 2 (x), so (x, y) on slice s is RAS voxel (y, s, x), i.e. (x, s, y) on the array.
AXIS1 = {
    1: (box3d(1, (2, 3, 8, 10), 9, (5, 12)), [[2, 9], [5, 13], [3, 11]], [[2, 9], [9, 10], [3, 11]],
        [((4, 6, 8, True), (4, 8, 6)), ((7, 12, 11, False), (7, 11, 12))]),
    2: (box3d(2, (5, 1, 9, 6), 3, (1, 4)), [[5, 10], [1, 5], [1, 7]], [[5, 10], [3, 4], [1, 7]],
        [((6, 2, 2, True), (6, 2, 2)), ((0, 13, 16, True), (0, 16, 13))]),
}


@pytest.mark.parametrize("box_mode", ["3d", "key_slice"])
def test_rounds_equal_nninteractive_driven_directly(folder, box_mode):
    """Two labels, three rounds each (box; + a click with the previous mask; + a second click), interleaved."""
    model = NnInteractiveModel(str(folder), box=box_mode, autozoom=False)
    reference = reference_session(folder)
    subject = volume(axis=1)
    previous: dict[int, np.ndarray | None] = {1: None, 2: None}
    for clicks_so_far in range(3):
        for label, (prompt, box_3d, box_key, clicks) in AXIS1.items():
            given = clicks[:clicks_so_far]
            prompts = [prompt] + [click(label, x, y, k, positive) for (x, y, k, positive), _ in given]
            got = model.refine(subject, prompts, previous[label]).mask
            expected = drive_ras(reference, subject.raw, previous[label], box_3d if box_mode == "3d" else box_key,
                             [(voxel, positive) for (_, _, _, positive), voxel in given])
            assert got.shape == SHAPE and got.dtype == bool
            assert 0 < got.sum() < got.size, "a constant mask could not tell coordinates apart"
            np.testing.assert_array_equal(got, expected, err_msg=f"label {label}, {clicks_so_far} clicks")
            previous[label] = got


def test_slicing_along_the_last_axis_and_predict(folder):
    """Axis 2: rows are RAS axis 0, columns RAS axis 1; ``predict`` runs each label once from its prompts."""
    model = NnInteractiveModel(str(folder), box="3d", autozoom=False)
    subject = volume(axis=2)
    prompts = [box3d(1, (4, 2, 15, 9), 5, (3, 8)), click(1, 12, 3, 6, False), box3d(2, (0, 9, 6, 13), 2, (1, 2))]
    labels = model.predict(subject, prompts)
    reference = reference_session(folder)
    one = drive_ras(reference, subject.raw, None, [[3, 9], [4, 16], [2, 10]], [((6, 12, 3), False)])
    two = drive_ras(reference, subject.raw, None, [[1, 3], [0, 7], [9, 14]], [])
    expected = np.zeros(SHAPE, np.int32)
    expected[one] = 1
    expected[two] = 2
    np.testing.assert_array_equal(labels, expected)
    assert {1, 2} <= set(np.unique(labels))


def test_a_subject_stored_in_another_voxel_order_along_axis_0(folder):
    """Stored L, P, S: the file's first two axes run against mskbench's, so the session holds the volume flipped
    along them, then reversed; slicing axis 0: rows are RAS axis 1, columns RAS axis 2."""
    model = NnInteractiveModel(str(folder), box="3d", autozoom=False)
    subject = dataclasses.replace(volume(axis=0), stored_orientation=("L", "P", "S"))
    prompts = [box3d(1, (2, 4, 7, 12), 6, (3, 9)), click(1, 5, 10, 7, True)]
    got = model.refine(subject, prompts, None).mask
    file_order = subject.raw[::-1, ::-1, :]
    expected = drive(reference_session(folder), file_order.transpose(2, 1, 0), None, [[2, 8], [5, 14], [4, 11]],
                     [((5, 7, 6), True)]).transpose(2, 1, 0)[::-1, ::-1, :]
    assert 0 < got.sum() < got.size
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("axes", [("R", "A", "S"), ("P", "S", "L"), ("L", "I", "A"), ("S", "R", "P")])
def test_coordinates_follow_the_array_the_session_holds(axes):
    """A voxel's value on mskbench's grid is the value at its mapped index on the array handed over."""
    raw = np.arange(np.prod(SHAPE), dtype=np.float32).reshape(SHAPE)
    array = to_reader_layout(raw, (1.0, 1.0, 1.0), axes)[0][0]
    rng = np.random.default_rng(1)
    for _ in range(30):
        voxel = tuple(int(rng.integers(n)) for n in SHAPE)
        assert array[to_reader_index(voxel, SHAPE, axes)] == raw[voxel]


def test_declarations_and_manifest(folder):
    model = NnInteractiveModel(str(folder), autozoom=False)
    assert isinstance(model, InteractiveVolumeModel)
    factory = plugin.make_nninteractive
    assert (factory.supported_prompts, factory.feedback) == (model.supported_prompts, model.feedback)
    assert factory.kind == "volume" and factory.interactive
    described = model.describe()
    assert described["box"] == "3d" and described["license"] == "!!MISSING!!"  # the tiny folder has no LICENSE
    assert described["architecture"] == "nnInteractive nnInteractiveTrainer_stub" and len(described["checkpoint_sha256"]) == 64


def test_a_checkpoint_without_3d_boxes_gets_the_key_slice(tmp_path):
    folder = make_model_folder(tmp_path, bbox3d=False)
    assert NnInteractiveModel(str(folder), autozoom=False).box_mode == "key_slice"
    with pytest.raises(PluginError, match='takes no 3D boxes.*set box = "key_slice"'):
        NnInteractiveModel(str(folder), box="3d", autozoom=False)


def test_plan_time_check_names_the_release_when_the_default_folder_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path))
    with pytest.raises(CheckpointError) as err:
        plugin.preflight({"model_folder": None, "fold": None, "checkpoint_name": "checkpoint_final.pth"}, None)
    message = str(err.value)
    assert f"{tmp_path / 'nnInteractive_v1.0'} does not exist" in message and "MIC-DKFZ/nnInteractive" in message
    write_folder_files(tmp_path / "nnInteractive_v1.0")
    with pytest.raises(CheckpointError, match="fold_0/checkpoint_final.pth does not exist"):
        plugin.preflight({"model_folder": None, "fold": None, "checkpoint_name": "checkpoint_final.pth"}, None)


SUITE = """
[suite]
name = "nninteractive_clicks"
seed = 0
device = "cpu"

[[datasets]]
name = "spine"
plugin = "phantom"
params = {{ anatomy = "spine", subjects = 1, seed = 1, pixel_spacing_min = 1.6, pixel_spacing_max = 1.7 }}
split = "all"
labels = ["L3", "disc_L3_L4"]

[[models]]
name = "nninteractive"
plugin = "nninteractive"
params = {{ model_folder = "{folder}", autozoom = false }}

[[prompters]]
name = "cvpr25_clicks"
plugin = "clicks"
params = {{ initial = "box3d", key_slice = "median_slice", mode = "cvpr25", max_shift = 5, rounds = 5, placement = "max_edt_largest_error", space = "volume", feedback = "logits" }}

[metrics]
names = ["dice", "nsd"]

[biomarkers]
enabled = false
"""


def test_the_cvpr25_clicks_protocol_runs_end_to_end(folder, tmp_path, capsys):
    """suites/interactive.toml's prompter: a box3d, then five rounds of clicks placed in the volume."""
    import duckdb

    from mskbench.cli.main import main

    suite, db = tmp_path / "suite.toml", tmp_path / "r.duckdb"
    suite.write_text(SUITE.format(folder=folder))
    assert main(["run", str(suite), "--db", str(db)]) == 0
    assert "dsc_auc" in capsys.readouterr().out
    with duckdb.connect(str(db), read_only=True) as con:
        rounds = con.execute("SELECT DISTINCT round FROM subject_metrics WHERE metric = 'dice' ORDER BY 1").fetchall()
        [(feedback,)] = con.execute("SELECT DISTINCT params->>'$.feedback_used' FROM cells").fetchall()
        clicks = con.execute("SELECT count(*) FROM prompts WHERE kind = 'point' AND round > 0").fetchone()[0]
    assert rounds == [(r,) for r in range(6)] and feedback == "mask" and clicks > 0

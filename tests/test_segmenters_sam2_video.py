"""The `sam2_video` volume model equals sam2's SAM2VideoPredictor driven directly (small random SAM 2.0 / 2.1),
`limit_to_reference_extent` stops at the extent and flags every row, planted bugs are caught."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pytest
import torch
from PIL import Image
from sam_family_tiny import phantom, single_torch_thread, tiny_sam2_video  # noqa: F401

import mskbench.segmenters.sam2_video as video_module
from mskbench.cli.main import main
from mskbench.data.preprocess import take_slice
from mskbench.errors import CheckpointError, PluginError
from mskbench.params import validate_params
from mskbench.protocols import VolumeInput, VolumeModel
from mskbench.segmenters.sam2_video import Sam2VideoModel, init_state_from_frames, tracks_from_prompts, video_frames
from mskbench.segmenters.sam_catalog import sam2_config
from mskbench.types import Prompt
from mskbench_builtins.models import sam2_video as plugin

SLICES, HEIGHT, WIDTH = 7, 36, 50  # non-square slices


def prompt(kind, label, k, box=None, points=(), point_labels=(), extent=None, instance=0) -> Prompt:
    return Prompt(
        kind=kind, label=label, prompter="p", seed=0, instance=instance,
        box=None if box is None else tuple(float(v) for v in box),
        points=tuple((float(x), float(y)) for x, y in points), point_labels=tuple(point_labels),
        slice_index=k, extent=extent,
    )


#: label 1: a box3d on the middle slice; label 2: a box+point on slice 2 and two clicks on slice 5
PROMPTS = [
    prompt("box3d", 1, 3, box=(8, 6, 40, 30), extent=(1, 5)),
    prompt("box+point", 2, 2, box=(20, 10, 48, 34), points=[(35, 22)], point_labels=[1]),
    prompt("point", 2, 5, points=[(30, 20), (4, 4)], point_labels=[1, 0]),
]
#: the same prompts as upstream's add_new_points_or_box arguments, per object
UPSTREAM_INPUTS = {
    1: [(3, {"box": np.array([8, 6, 40, 30], np.float32)})],
    2: [
        (2, {"box": np.array([20, 10, 48, 34], np.float32), "points": [[35, 22]], "labels": [1]}),
        (5, {"points": [[30, 20], [4, 4]], "labels": [1, 0]}),
    ],
}


@pytest.fixture(scope="module")
def predictors():
    return {version: tiny_sam2_video(seed=5, config=sam2_config(version, "tiny")) for version in ("2.0", "2.1")}


def jpeg_volume(folder: Path, axis: int, seed: int = 0) -> np.ndarray:
    """A volume of distinct slices along ``axis``, written as <k>.jpg and read back: both sides see these pixels."""
    folder.mkdir()
    slices = []
    for k in range(SLICES):
        path = folder / f"{k:05d}.jpg"
        Image.fromarray(phantom(HEIGHT, WIDTH, seed=seed + k)).save(path, quality=90)
        slices.append(np.array(Image.open(path)))
    return np.stack(slices, axis=axis)


def upstream_logits(predictor, folder: Path, inputs=UPSTREAM_INPUTS) -> dict[int, dict[int, np.ndarray]]:
    """SAM2VideoPredictor as its video notebook drives it: init_state on the JPEG folder, then per object its
    clicks / box, propagate_in_video forward and reverse, reset_state."""
    state = predictor.init_state(video_path=str(folder))
    out = {}
    for obj_id, frames in inputs.items():
        for k, kwargs in frames:
            predictor.add_new_points_or_box(state, frame_idx=k, obj_id=obj_id, **kwargs)
        logits = {}
        for reverse in (False, True):
            for k, _, masks in predictor.propagate_in_video(state, reverse=reverse):
                logits[k] = masks[0, 0].numpy()
        predictor.reset_state(state)
        out[obj_id] = logits
    return out


def label_volume(logits: dict[int, dict[int, np.ndarray]], shape, axis: int) -> np.ndarray:
    """Upstream's masks (logits > 0) as one label volume: the object of highest logit per voxel, as upstream's
    _apply_non_overlapping_constraints decides (its argmax: the first object on ties)."""
    ids = sorted(logits)
    stacked = np.full((len(ids), *shape), -np.inf, dtype=np.float32)
    for i, obj_id in enumerate(ids):
        for k, frame in logits[obj_id].items():
            take_slice(stacked[i], axis, k)[...] = frame
    winner = np.argmax(stacked, axis=0)
    return np.where(stacked.max(axis=0) > 0, np.asarray(ids)[winner], 0).astype(np.int32)


def model_for(predictor, **kwargs) -> Sam2VideoModel:
    return Sam2VideoModel(predictor, device="cpu", precision="fp32", variant="tiny", **kwargs)


@pytest.mark.parametrize("version, axis", [("2.1", 0), ("2.1", 2), ("2.0", 1)])
def test_equals_the_upstream_video_predictor_on_the_same_pixels(predictors, tmp_path, version, axis):
    predictor = predictors[version]
    image = jpeg_volume(tmp_path / "frames", axis)
    expected = upstream_logits(predictor, tmp_path / "frames")
    model = model_for(predictor)

    volume = VolumeInput(image, (3.0, 0.8, 0.8), axis, (1, 2))
    labels = model.predict(volume, PROMPTS)
    assert labels.dtype == np.int32 and labels.shape == image.shape
    np.testing.assert_array_equal(labels, label_volume(expected, image.shape, axis))
    assert set(np.unique(labels)) == {0, 1, 2}  # both labels and background present: the comparison means something

    state = model.init_state(image, axis)  # each object's logits bit for bit, on every slice
    for track in tracks_from_prompts(PROMPTS, image.shape, axis):
        got = model.track(state, track)
        assert sorted(got) == sorted(expected[track.label]) == list(range(SLICES))
        for k in got:
            np.testing.assert_array_equal(got[k], expected[track.label][k])


@pytest.mark.parametrize("version", ["2.0", "2.1"])
def test_the_state_equals_init_state_on_a_jpeg_folder(predictors, tmp_path, version):
    predictor = predictors[version]
    image = jpeg_volume(tmp_path / "frames", axis=1)
    reference = predictor.init_state(video_path=str(tmp_path / "frames"))
    frames, height, width = video_frames(image, 1, predictor.image_size, predictor.device)
    state = init_state_from_frames(predictor, frames, height, width)
    assert set(state) == set(reference)
    assert torch.equal(state["images"], reference["images"])  # same RGB conversion, resize, scaling, mean/std
    for key in set(reference) - {"images", "cached_features"}:
        assert state[key] == reference[key], key
    [(index, (tensor, features))] = state["cached_features"].items()
    [(reference_index, (reference_tensor, reference_features))] = reference["cached_features"].items()
    assert index == reference_index == 0 and torch.equal(tensor, reference_tensor)
    for got, want in zip(features["backbone_fpn"], reference_features["backbone_fpn"]):
        assert torch.equal(got, want)


@pytest.fixture(scope="module")
def tiny21(predictors):
    return predictors["2.1"]


def test_limit_to_reference_extent_stops_at_the_extent(tiny21, tmp_path):
    """Upstream's own bounds: both passes from the key slice, max_frame_num_to_track up to the extent's ends."""
    image = jpeg_volume(tmp_path / "frames", axis=1, seed=40)
    box3d = [prompt("box3d", 1, 3, box=(8, 6, 40, 30), extent=(2, 4))]
    volume = VolumeInput(image, (1.0, 1.0, 1.0), 1, (1,))
    free, limited = model_for(tiny21), model_for(tiny21, limit_to_reference_extent=True)
    assert isinstance(limited, VolumeModel) and limited.uses_reference_extent and not free.uses_reference_extent
    everywhere, inside = free.predict(volume, box3d), limited.predict(volume, box3d)

    state = tiny21.init_state(video_path=str(tmp_path / "frames"))
    tiny21.add_new_points_or_box(state, frame_idx=3, obj_id=1, box=np.array([8, 6, 40, 30], np.float32))
    expected = {}
    for reverse in (False, True):
        passes = tiny21.propagate_in_video(state, start_frame_idx=3, max_frame_num_to_track=1, reverse=reverse)
        for k, _, masks in passes:
            expected[k] = masks[0, 0].numpy() > 0
    tiny21.reset_state(state)
    assert sorted(expected) == [2, 3, 4]
    for k in range(SLICES):
        if k in expected:
            np.testing.assert_array_equal(take_slice(inside, 1, k) == 1, expected[k])
        else:
            assert not take_slice(inside, 1, k).any() and take_slice(everywhere, 1, k).any(), k
    # the forward pass is the same up to the extent's end; the reverse pass differs: upstream conditions it on
    # the forward pass's slices, which stop at the extent here
    for k in (3, 4):
        np.testing.assert_array_equal(take_slice(inside, 1, k), take_slice(everywhere, 1, k))
    assert limited.describe()["limit_to_reference_extent"] is True


# --- planted bugs: each must make the comparison with upstream fail -------------------------------------------


def _no_reverse(monkeypatch, model):
    forward = model.predictor.propagate_in_video
    monkeypatch.setattr(model.predictor, "propagate_in_video",
                        lambda state, reverse=False, **kw: iter(()) if reverse else forward(state, reverse=False, **kw))


def _no_reset(monkeypatch, model):
    monkeypatch.setattr(model.predictor, "reset_state", lambda state: None)


def _frames_transposed(monkeypatch, model):
    real = video_module.take_slice
    monkeypatch.setattr(video_module, "take_slice", lambda volume, axis, k: real(volume, axis, k).T)


def _frames_reversed(monkeypatch, model):
    real = video_module.video_frames

    def reversed_frames(*args, **kwargs):
        frames, height, width = real(*args, **kwargs)
        return frames.flip(0), height, width

    monkeypatch.setattr(video_module, "video_frames", reversed_frames)


def _last_label_wins(monkeypatch, model):
    def predict(volume, prompts):
        labels = np.zeros(volume.image.shape, np.int32)
        state = model.init_state(volume.image, volume.axis)
        for track in tracks_from_prompts(prompts, volume.image.shape, volume.axis):
            for k, logits in model.track(state, track).items():
                take_slice(labels, volume.axis, k)[logits > 0] = track.label
        return labels

    monkeypatch.setattr(model, "predict", predict)


@pytest.fixture(scope="module")
def planted_case(tiny21, tmp_path_factory):
    """A volume sliced along axis 2, and upstream's label volume for PROMPTS, which the harness equals unplanted."""
    folder = tmp_path_factory.mktemp("planted") / "frames"
    image = jpeg_volume(folder, axis=2, seed=60)
    expected = label_volume(upstream_logits(tiny21, folder), image.shape, 2)
    volume = VolumeInput(image, (1.0, 1.0, 1.0), 2, (1, 2))
    np.testing.assert_array_equal(model_for(tiny21).predict(volume, PROMPTS), expected)
    return volume, expected


@pytest.mark.parametrize("plant", [_no_reverse, _no_reset, _frames_transposed, _frames_reversed, _last_label_wins])
def test_planted_bugs_are_caught(tiny21, planted_case, monkeypatch, plant):
    volume, expected = planted_case
    model = model_for(tiny21)
    plant(monkeypatch, model)
    try:
        planted = model.predict(volume, PROMPTS)
    except (RuntimeError, ValueError, IndexError, PluginError):
        return  # a crash is caught as well
    assert not np.array_equal(planted, expected)


def test_swapped_slicing_axis_is_caught(tiny21, planted_case):
    volume, expected = planted_case
    with pytest.raises(PluginError, match="lies outside"):  # the prompts do not fit the other axis' planes
        model_for(tiny21).predict(VolumeInput(volume.image, volume.spacing, 0, (1, 2)), PROMPTS)
    moved = np.ascontiguousarray(np.moveaxis(volume.image, 2, 0))  # the same slices, now along axis 0
    labels = model_for(tiny21).predict(VolumeInput(moved, volume.spacing, 0, (1, 2)), PROMPTS)
    np.testing.assert_array_equal(np.moveaxis(labels, 0, 2), expected)


# --- prompts -------------------------------------------------------------------------------------------------


def test_prompts_become_one_frame_input_per_object_and_slice():
    shape = (SLICES, HEIGHT, WIDTH)
    tracks = tracks_from_prompts(
        [*PROMPTS, prompt("point", 2, 2, points=[(10, 10)], point_labels=[0]),
         prompt("box", 1, 6, box=(0, 0, 9, 9), instance=1)], shape, 0,
    )
    assert [(t.label, t.instance, sorted(t.frames), t.extent) for t in tracks] == [
        (1, 0, [3], (1, 5)), (1, 1, [6], None), (2, 0, [2, 5], None),
    ]
    merged = tracks[2].frames[2]  # box+point and a click on one slice: one call, the box, the points in order
    np.testing.assert_array_equal(merged.box, [20, 10, 48, 34])
    np.testing.assert_array_equal(merged.points, [[35, 22], [10, 10]])
    np.testing.assert_array_equal(merged.labels, [1, 0])


@pytest.mark.parametrize("bad, message", [
    ([prompt("box", 1, 2, box=(0, 0, 5, 5)), prompt("box", 1, 2, box=(1, 1, 6, 6))], "label 1 has 2 boxes on slice 2"),
    ([prompt("box", 1, None, box=(0, 0, 5, 5))], "lies on slice None"),
    ([prompt("box", 1, 7, box=(0, 0, 5, 5))], "lies on slice 7"),
    ([prompt("box3d", 1, 3, box=(0, 0, 5, 5), extent=(2, 9))], r"has extent \(2, 9\)"),
    ([prompt("box", 1, 3, box=(0, 0, WIDTH, 5))], "lies outside the 36x50 slice"),
    ([prompt("none", 1, 3)], "does not take none prompts"),
])
def test_bad_prompts_are_one_line(bad, message):
    with pytest.raises(PluginError, match=message) as info:
        tracks_from_prompts(bad, (SLICES, HEIGHT, WIDTH), 0)
    assert "\n" not in str(info.value)


def test_no_prompt_predicts_nothing(tiny21):
    image = np.zeros((3, 20, 30), np.uint8)
    assert not model_for(tiny21).predict(VolumeInput(image, (1.0, 1.0, 1.0), 0, (1,)), []).any()


# --- the plugin ----------------------------------------------------------------------------------------------


def registered() -> dict:
    calls = []
    plugin.register_plugin(lambda **kwargs: calls.append(kwargs))
    [entry] = calls
    return entry


def test_plugin_declares_a_volume_model_with_sam2s_params_and_checkpoints(tmp_path, monkeypatch):
    entry = registered()
    factory = entry["factory"]
    assert entry["name"] == "sam2_video" and entry["requires"] == ("checkpoint",)
    assert factory.kind == "volume" and factory.interactive is False
    assert factory.supported_prompts == Sam2VideoModel.supported_prompts == {"box3d", "box", "point", "box+point"}
    assert validate_params(entry["params"], {}, "models[0].params") == {
        "version": "2.1", "variant": "base_plus", "precision": "fp32", "limit_to_reference_extent": False,
    }
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path))
    monkeypatch.delenv("MSKBENCH_CHECKPOINT_REGISTRY", raising=False)
    with pytest.raises(CheckpointError, match=r"sam2\.1_hiera_tiny\.pt for 'sam2\.1_hiera_tiny' not found"):
        entry["preflight"]({"version": "2.1", "variant": "tiny"}, None)
    with pytest.raises(CheckpointError, match=r"sam2_hiera_large\.pt for 'sam2_hiera_large' not found"):
        entry["preflight"]({"version": "2.0", "variant": "large"}, None)


@pytest.fixture
def tiny_builder(monkeypatch):
    """build_sam2_video_predictor with the tiny overrides (other random weights): the rest of the path is real."""
    from sam_family_tiny import TINY_SAM2_VIDEO_OVERRIDES

    real = video_module.build_sam2_video_predictor
    monkeypatch.setattr(
        video_module, "build_sam2_video_predictor",
        lambda config, ckpt_path=None, device="cpu": real(
            config, ckpt_path, device, hydra_overrides_extra=TINY_SAM2_VIDEO_OVERRIDES
        ),
    )


def test_factory_loads_a_saved_checkpoint_through_the_safe_loader(tmp_path, tiny21, tiny_builder):
    path = tmp_path / "video_finetune.pt"
    torch.save({"model": tiny21.state_dict()}, path)
    model = registered()["factory"](
        version="2.1", variant="tiny", precision="fp32", limit_to_reference_extent=False, device="cpu",
        checkpoint=str(path),
    )
    loaded = model.predictor.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in tiny21.state_dict().items())
    described = model.describe()
    assert described["architecture"] == "sam2_video" and described["variant"] == "2.1/tiny"
    assert described["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert described["limit_to_reference_extent"] is False and described["image_size"] == 256


def test_factory_refuses_a_pickle_with_code(tmp_path, tiny_builder):
    from code_pickles import pickle_bytes

    marker, path = tmp_path / "MARKER", tmp_path / "hostile.pt"
    path.write_bytes(pickle_bytes(marker, "torch-zip"))
    with pytest.raises(CheckpointError, match="will not load"):
        registered()["factory"](version="2.1", variant="tiny", precision="fp32", limit_to_reference_extent=False,
                                device="cpu", checkpoint=str(path))
    assert not marker.exists()


# --- end to end: the rows say when the reference's extent was used ------------------------------------------

SUITE = """
[suite]
name = "video_test"
seed = 3
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = 1, seed = 1, pixel_spacing_min = 2.4, pixel_spacing_max = 2.5 }}
split = "all"
labels = ["patella", "femoral_cartilage"]
preprocess = {{ include_empty_slices = true }}

[[models]]
name = "video_extent"
plugin = "sam2_video"
params = {{ version = "2.1", variant = "tiny", limit_to_reference_extent = true }}
checkpoint = "{checkpoint}"

[[models]]
name = "region_growing"
plugin = "region_growing_3d"

[[prompters]]
name = "box3d"
plugin = "box3d"

[metrics]
names = ["dice"]

[biomarkers.tissue_volume]
labels = ["patella"]
"""


def test_a_suite_run_flags_every_row_of_the_extent_limited_model(tmp_path, tiny21, tiny_builder, capsys):
    """Every slice, subject and biomarker row of the limited model says reference_extent_used; another model's
    rows in the same run do not; the limited model's slices outside each label's extent are empty."""
    checkpoint = tmp_path / "tiny_video.pt"
    torch.save({"model": tiny21.state_dict()}, checkpoint)
    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE.format(checkpoint=checkpoint)))
    db = tmp_path / "r.duckdb"
    assert main(["run", str(suite), "--db", str(db)]) == 0, capsys.readouterr().err
    con = duckdb.connect(str(db), read_only=True)
    try:
        for table in ("slice_metrics", "subject_metrics", "biomarkers"):
            flags = con.execute(f"SELECT DISTINCT c.model, t.reference_extent_used FROM {table} t JOIN cells c "
                                "USING (run_id, cell_id) ORDER BY ALL").fetchall()
            assert flags == [("region_growing", False), ("video_extent", True)], table
        extents = con.execute("SELECT DISTINCT label, first_slice, last_slice FROM prompts").fetchall()
        by_place = con.execute(
            "SELECT m.slice_index BETWEEN p.first_slice AND p.last_slice, m.case_state, count(*) "
            "FROM slice_metrics m JOIN cells c USING (run_id, cell_id) "
            "JOIN (SELECT DISTINCT label, first_slice, last_slice FROM prompts) p ON m.label = p.label "
            "WHERE m.metric = 'dice' AND c.model = 'video_extent' GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        manifest = json.loads(con.execute("SELECT manifest FROM runs").fetchone()[0])
    finally:
        con.close()
    assert len(extents) == 2
    outside = {state for inside, state, _ in by_place if not inside}
    inside = {state for inside, state, _ in by_place if inside}
    assert outside == {"both_empty"} and "hit" in inside
    assert manifest["models"]["video_extent"]["limit_to_reference_extent"] is True


def test_a_cell_is_flagged_where_its_model_declares_it_and_its_prompts_carry_an_extent():
    from mskbench.execution.records import extent_used

    class Declares:
        uses_reference_extent = True

    box3d = [prompt("box3d", 1, 3, box=(0, 0, 5, 5), extent=(1, 5))]
    clicks = [prompt("point", 1, 3, points=[(1, 1)], point_labels=[1])]
    assert extent_used(Declares(), box3d)
    assert not extent_used(Declares(), clicks)  # no extent to use: the model propagated through every slice
    assert not extent_used(object(), box3d)


def test_an_older_database_reads_the_new_column_as_false(tmp_path):
    from mskbench.store import SCHEMA_SQL, TABLES, add_missing_columns

    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    try:
        for table in ("slice_metrics", "subject_metrics", "biomarkers"):
            columns = [(c, t) for c, t in TABLES[table] if c != "reference_extent_used"]
            con.execute(f"CREATE TABLE {table} ({', '.join(f'{c} {t}' for c, t in columns)})")
            con.execute(f"INSERT INTO {table} (cell_id) VALUES ('old')")
        con.execute(SCHEMA_SQL)  # the other tables, as an older release made them too
        add_missing_columns(con)
        for table in ("slice_metrics", "subject_metrics", "biomarkers"):
            assert con.execute(f"SELECT count(*) FROM {table} WHERE NOT reference_extent_used").fetchone()[0] == 1
    finally:
        con.close()

"""The `nnunet` model against nnU-Net itself: the harness's label volume equals what nnunetv2's own
predictor (loaded by its own ``initialize_from_trained_model_folder``) makes of the same NIfTI file read
by the plans' own reader, for 2d and 3d_fullres, a non-RAS anisotropic file and swapped label ids."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import nibabel as nib
import numpy as np
import pytest
import torch
from nnunet_tiny import (
    FILE_AFFINE,
    make_model_folder,
    phantom_arrays,
    quiet_stdout,
    reference_labels,
    reference_predictor,
    write_nifti,
)

from mskbench.cli.main import main
from mskbench.data.preprocess import PreprocessConfig, prepare_subject
from mskbench.errors import CheckpointError, PluginError
from mskbench.execution.volume_model import predict_volume_model
from mskbench.plan import Cell
from mskbench.prompting.oracle import NonePrompter
from mskbench_builtins.datasets.nifti_folder import NiftiFolder

#: the dataset numbers its labels the other way round from the model: the names decide
DATASET_LABELS = {"background": 0, "tibia": 1, "femur": 2}
MODEL_TO_DATASET = {0: 0, 1: 2, 2: 1}


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread():
    """One intra-op thread: a tiny network gains nothing from more on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def nnunet_paths(tmp_path, monkeypatch):
    for name in ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results"):
        monkeypatch.setenv(name, str(tmp_path / name))


def dataset_folder(root: Path) -> Path:
    """An nnU-Net raw folder holding one case: the non-RAS image and its labels in the dataset's ids."""
    image, model_ids = phantom_arrays()
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    write_nifti(root / "imagesTr" / "case1_0000.nii.gz", image)
    write_nifti(root / "labelsTr" / "case1.nii.gz", np.vectorize(MODEL_TO_DATASET.get)(model_ids).astype(np.uint8))
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MRI"}, "labels": DATASET_LABELS,
                                                   "numTraining": 1, "file_ending": ".nii.gz"}))
    return root


def harness_labels(model, root: Path) -> np.ndarray:
    """The label volume the runner's volume-model path makes, on mskbench's RAS+ grid."""
    dataset = NiftiFolder(str(root), slice_axis="through_plane")
    prepared = prepare_subject(dataset.load("case1"), "through_plane", PreprocessConfig(min_object_mm2=0, min_object_mm3=0))
    cell = Cell("d", "nnunet", "none", 0)
    [prediction] = predict_volume_model(
        model, "nnunet", prepared, [cell], {"none": NonePrompter()}, {cell.cell_id: {}}, sorted(dataset.label_map), {}
    ).values()
    out = np.zeros(prepared.labels.shape, np.int32)
    for label, mask in prediction.rounds[0].items():
        out[mask] = label
    return out


def on_ras_grid(file_labels: np.ndarray, image_path: Path, reader: str) -> np.ndarray:
    """nnU-Net's (i, j, k) labels placed on the RAS+ grid by nibabel, with the dataset's ids."""
    if reader != "NibabelIOWithReorient":
        file_labels = np.asanyarray(nib.as_closest_canonical(nib.Nifti1Image(
            file_labels.astype(np.uint8), nib.load(str(image_path)).affine)).dataobj)
    return np.vectorize(MODEL_TO_DATASET.get)(file_labels)


def build(folder: Path, **params):
    from mskbench.segmenters.nnunet import NnUNetModel

    return NnUNetModel(str(folder), **{"configuration": folder.name.split("__")[-1], **params})


@pytest.mark.parametrize("configuration, reader", [
    ("3d_fullres", "SimpleITKIO"), ("2d", "NibabelIO"), ("3d_fullres", "NibabelIOWithReorient"),
])
def test_labels_equal_nnunets_own_predictor_on_the_file(tmp_path, configuration, reader):
    folder = make_model_folder(tmp_path / "model", configuration, reader)
    root = dataset_folder(tmp_path / "data")
    expected = on_ras_grid(
        reference_labels(reference_predictor(folder), root / "imagesTr" / "case1_0000.nii.gz", reader),
        root / "imagesTr" / "case1_0000.nii.gz", reader,
    )
    assert len(np.unique(expected)) == 3  # the random net varies across the image, so a wrong layout shows
    got = harness_labels(build(folder), root)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_mirroring_and_tile_step_reach_the_predictor(tmp_path):
    folder = make_model_folder(tmp_path / "model", "3d_fullres")
    root = dataset_folder(tmp_path / "data")
    image = root / "imagesTr" / "case1_0000.nii.gz"
    expected = on_ras_grid(reference_labels(reference_predictor(folder, False, 0.9), image, "SimpleITKIO"), image, "SimpleITKIO")
    model = build(folder, use_mirroring=False, tile_step_size=0.9)
    assert (model.predictor.use_mirroring, model.predictor.tile_step_size) == (False, 0.9)
    np.testing.assert_array_equal(harness_labels(model, root), expected)


def test_the_file_is_stored_off_ras_so_the_layout_matters():
    """Guard on the fixture itself: the image is not RAS and not isotropic."""
    assert nib.aff2axcodes(FILE_AFFINE) != ("R", "A", "S")
    assert len(set(np.round(np.linalg.norm(FILE_AFFINE[:3, :3], axis=0), 3))) == 3


def test_checkpoints_are_read_tensors_only(tmp_path, monkeypatch):
    """nnU-Net's own loader (weights_only=False) is never called; torch.load always gets weights_only=True."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

    folder = make_model_folder(tmp_path / "model", "2d")
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k.get("weights_only")) or real_load(*a, **k))
    monkeypatch.setattr(nnUNetPredictor, "initialize_from_trained_model_folder",
                        lambda *a, **k: pytest.fail("nnU-Net's unsafe loader was called"))
    build(folder)
    assert calls == [True]


def test_a_checkpoint_with_code_is_refused(tmp_path):
    from code_pickles import pickle_bytes

    folder = make_model_folder(tmp_path / "model", "2d")
    marker = tmp_path / "MARKER"
    (folder / "fold_0" / "checkpoint_final.pth").write_bytes(pickle_bytes(marker, "torch-zip"))
    with pytest.raises(CheckpointError, match="will not load|not a PyTorch checkpoint"):
        build(folder)
    assert not marker.exists()


def test_a_checkpoint_of_another_configuration_is_named(tmp_path):
    folder = make_model_folder(tmp_path / "model", "2d")
    with pytest.raises(PluginError, match="trained as configuration '2d', not '3d_fullres'"):
        build(folder, configuration="3d_fullres")


SUITE = """
[suite]
name = "nnunet_e2e"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "nifti_folder"
split = "all"
params = {{ root = "{root}" }}
preprocess = {{ min_object_mm2 = 0, min_object_mm3 = 0 }}

[[models]]
name = "tiny"
plugin = "nnunet"
params = {{ model_folder = "{folder}", configuration = "3d_fullres", use_mirroring = false }}

[[prompters]]
name = "auto"
plugin = "none"

[metrics]
names = ["dice"]

[biomarkers]
enabled = false
"""


def test_a_suite_with_the_none_prompter_writes_rows_matching_nnunet(tmp_path):
    folder = make_model_folder(tmp_path / "model", "3d_fullres")
    root = dataset_folder(tmp_path / "data")
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(root=root, folder=folder))
    db = tmp_path / "results.duckdb"
    with quiet_stdout():
        assert main(["run", str(suite), "--db", str(db)]) == 0
    con = duckdb.connect(str(db), read_only=True)
    rows = dict(con.execute("SELECT label_name, value FROM subject_metrics WHERE metric = 'dice'").fetchall())
    con.close()
    image = root / "imagesTr" / "case1_0000.nii.gz"
    predicted = on_ras_grid(reference_labels(reference_predictor(folder, False), image, "SimpleITKIO"), image, "SimpleITKIO")
    reference = np.asanyarray(nib.as_closest_canonical(nib.load(str(root / "labelsTr" / "case1.nii.gz"))).dataobj)
    for name, label in (("tibia", 1), ("femur", 2)):
        a, b = predicted == label, reference == label
        assert rows[name] == pytest.approx(2 * (a & b).sum() / (a.sum() + b.sum()))

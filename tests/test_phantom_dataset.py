"""The `phantom` dataset plugin and the on-disk export."""

from __future__ import annotations

import csv
import json
from collections import Counter

import nibabel as nib
import numpy as np
import pytest

from mskbench.cli.main import main
from mskbench.errors import DataError, PluginError
from mskbench.params import validate_params
from mskbench.phantom.export import write_phantom
from mskbench.phantom.generate import PhantomOptions, generate_subject, subject_demographics
from mskbench.plugin_manager import load_registry
from mskbench.protocols import Dataset
from mskbench.types import SPLITS
from mskbench_builtins.datasets.phantom import PARAMS, PhantomDataset, register_plugin


def test_registers_through_the_entry_point_and_satisfies_the_protocol():
    dataset = load_registry().create("dataset", "phantom", {"anatomy": "spine", "subjects": 3}, "datasets[0]")
    assert isinstance(dataset, Dataset)
    assert dataset.slice_axis == "sagittal"
    assert [info.name for info in dataset.label_map.values()][:6] == ["L1", "L2", "L3", "L4", "L5", "S1"]
    assert dataset.subject_ids() == ["spine_000", "spine_001", "spine_002"]


def test_register_plugin_declares_a_schema_that_validates_and_rejects_typos():
    calls = []
    register_plugin(lambda **kwargs: calls.append(kwargs))
    (call,) = calls
    assert call["name"] == "phantom" and call["factory"] is PhantomDataset and call["params"] is PARAMS
    resolved = validate_params(call["params"], {"anatomy": "thigh", "snr": 20}, "datasets[0].params")
    assert resolved["snr"] == 20.0 and resolved["subjects"] == 4
    with pytest.raises(PluginError, match="did you mean 'subjects'"):
        validate_params(call["params"], {"subject": 3}, "datasets[0].params")
    with pytest.raises(PluginError, match="not one of"):
        validate_params(call["params"], {"anatomy": "elbow"}, "datasets[0].params")


def test_splits_are_a_stratified_partition_and_loaded_subjects_carry_theirs():
    dataset = PhantomDataset(anatomy="hip", subjects=40, seed=3)
    parts = {split: dataset.subject_ids(split) for split in SPLITS}
    assert sorted(sum(parts.values(), [])) == sorted(dataset.subject_ids())
    assert [len(parts[s]) for s in SPLITS] == [28, 6, 6]
    sex = {sid: subject_demographics("hip", 3, int(sid[-3:])).sex for sid in dataset.subject_ids()}
    overall = Counter(sex.values())
    train = Counter(sex[sid] for sid in parts["train"])
    for key in ("F", "M"):
        assert abs(train[key] - 0.7 * overall[key]) <= 1.5
    test_id = parts["test"][0]
    loaded = dataset.load(test_id)
    assert loaded.split == "test" and loaded.id == test_id and loaded.demographics.sex == sex[test_id]
    assert dataset.subject_ids("all") == dataset.subject_ids()


def test_load_streams_the_same_subject_as_direct_generation():
    dataset = PhantomDataset(anatomy="hip", subjects=3, seed=2, snr=25.0, supersample=1)
    loaded = dataset.load("hip_002")
    direct = generate_subject("hip", 2, 2, dataset.options)
    np.testing.assert_array_equal(loaded.volume, direct.volume)
    assert loaded.truth == direct.truth


def test_bad_requests_are_one_line_user_errors():
    dataset = PhantomDataset(anatomy="hip", subjects=2)
    with pytest.raises(DataError, match="no subject 'hip_007'"):
        dataset.load("hip_007")
    with pytest.raises(DataError, match="unknown split 'dev'"):
        dataset.subject_ids("dev")
    with pytest.raises(PluginError, match="pixel_spacing_max"):
        PhantomDataset(anatomy="hip", subjects=2, pixel_spacing_min=0.5)
    with pytest.raises(PluginError, match="swap them"):
        PhantomDataset(anatomy="knee", subjects=2, cartilage_thickness_min=3.0, cartilage_thickness_max=2.0)


def test_pixel_spacing_and_thickness_params_reach_the_subjects():
    dataset = PhantomDataset(anatomy="knee", subjects=1, pixel_spacing_min=0.6, pixel_spacing_max=0.6,
                             cartilage_thickness_min=2.0, cartilage_thickness_max=2.0, noise=False)
    case = dataset.load("knee_000")
    assert case.acquisition.pixel_spacing_mm == 0.6
    for name in ("femoral_cartilage", "tibial_cartilage", "patellar_cartilage"):
        assert case.truth[("cartilage_thickness", name)] == pytest.approx(2.0, abs=1e-9)


def test_export_writes_nifti_truth_and_metadata_matching_the_subjects(tmp_path):
    out = write_phantom("knee", 2, 4, tmp_path / "knee", supersample=1)
    subject = generate_subject("knee", 4, 1, PhantomOptions(supersample=1))
    image = nib.load(out / "knee_001_image.nii.gz")
    labels = nib.load(out / "knee_001_labels.nii.gz")
    t2 = nib.load(out / "knee_001_t2.nii.gz")
    np.testing.assert_allclose(image.affine, subject.affine)
    np.testing.assert_array_equal(np.asanyarray(labels.dataobj), subject.labels)
    np.testing.assert_allclose(np.asanyarray(image.dataobj), subject.volume)
    np.testing.assert_allclose(np.asanyarray(t2.dataobj), subject.maps["t2"])
    assert (out / "knee_000_t1rho.nii.gz").exists()
    assert tuple(nib.aff2axcodes(image.affine)) == ("R", "A", "S")

    truth = json.loads((out / "truth.json").read_text())
    rows = {(r["biomarker"], r["structure"]): r for r in truth["subjects"]["knee_001"]}
    assert rows.keys() == subject.truth.keys()
    assert rows[("cartilage_thickness", "femoral_cartilage")]["unit"] == "mm"
    assert rows[("tissue_volume", "femur")]["value"] == pytest.approx(subject.truth[("tissue_volume", "femur")])

    with open(out / "metadata.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [r["subject_id"] for r in table] == ["knee_000", "knee_001"]
    assert table[1]["te_ms"] == str(subject.acquisition.te_ms) and table[1]["sex"] == subject.demographics.sex
    assert table[1]["split"] in SPLITS
    labels_json = json.loads((out / "labels.json").read_text())
    assert labels_json["4"] == {"name": "femoral_cartilage", "tissue": "cartilage"}


def test_cli_writes_the_phantom_and_rejects_a_bad_anatomy(tmp_path, capsys):
    assert main(["data", "phantom", "--anatomy", "hip", "--subjects", "1", "--seed", "0",
                 "--out", str(tmp_path / "hip")]) == 0
    assert (tmp_path / "hip" / "hip_000_image.nii.gz").exists()
    assert main(["data", "phantom", "--anatomy", "elbow", "--subjects", "1", "--out", str(tmp_path / "x")]) == 2
    assert "unknown phantom anatomy 'elbow'" in capsys.readouterr().err


def test_export_rejects_unknown_options(tmp_path):
    with pytest.raises(DataError, match="phantom option 'sn' is unknown"):
        write_phantom("hip", 1, 0, tmp_path, sn=3)

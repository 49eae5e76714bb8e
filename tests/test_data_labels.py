"""Selecting labels by name or tissue class, and merging them."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mskbench.data.labels import (
    apply_unlisted_labels,
    check_unlisted_policy,
    guess_tissue,
    label_map_from_names,
    select_labels,
    unlisted_label_values,
)
from mskbench.errors import DataError
from mskbench.types import LabelInfo, Subject, TissueClass

LABELS = {
    1: LabelInfo(1, "femur", TissueClass.BONE),
    2: LabelInfo(2, "femoral_cartilage", TissueClass.CARTILAGE),
    3: LabelInfo(3, "tibia", TissueClass.BONE),
    4: LabelInfo(4, "medial_tibial_cartilage", TissueClass.CARTILAGE),
    5: LabelInfo(5, "lateral_tibial_cartilage", TissueClass.CARTILAGE),
    6: LabelInfo(6, "medial_meniscus", TissueClass.MENISCUS),
}


def _subject() -> Subject:
    labels = np.arange(7, dtype=np.uint8).repeat(4).reshape(7, 2, 2)
    return Subject("s", np.ones(labels.shape, np.float32), labels, (1.0, 1.0, 1.0), np.eye(4), dict(LABELS))


def test_include_by_name_and_tissue():
    out = select_labels(_subject(), ["femur", "cartilage"], None)
    assert sorted(out.label_map) == [1, 2, 4, 5]
    assert set(np.unique(out.labels)) == {0, 1, 2, 4, 5}
    assert (out.labels[3] == 0).all() and (out.labels[6] == 0).all()


def test_merge_assigns_new_id_and_tissue():
    out = select_labels(_subject(), None, {"tibial_cartilage": ["medial_tibial_cartilage", "lateral_tibial_cartilage"],
                                           "bones_and_meniscus": ["bone", "medial_meniscus"]})
    new = {info.name: info for info in out.label_map.values()}
    assert new["tibial_cartilage"].id == 7 and new["tibial_cartilage"].tissue == TissueClass.CARTILAGE
    assert new["bones_and_meniscus"].id == 8 and new["bones_and_meniscus"].tissue == TissueClass.OTHER
    assert sorted(out.label_map) == [2, 7, 8]
    assert (out.labels[4] == 7).all() and (out.labels[5] == 7).all()
    assert (out.labels[1] == 8).all() and (out.labels[3] == 8).all() and (out.labels[6] == 8).all()
    assert (out.labels[2] == 2).all()


def test_include_with_merge_replaces_members():
    out = select_labels(_subject(), ["cartilage"], {"tibial_cartilage": ["medial_tibial_cartilage", "lateral_tibial_cartilage"]})
    assert [info.name for info in out.label_map.values()] == ["femoral_cartilage", "tibial_cartilage"]


def test_unknown_name_suggests():
    with pytest.raises(DataError, match="did you mean 'femoral_cartilage'"):
        select_labels(_subject(), ["femoral_cartilag"], None)
    with pytest.raises(DataError, match="unknown label"):
        select_labels(_subject(), None, {"x": ["nothing_like_it"]})


def test_guess_and_explicit_tissues():
    assert guess_tissue("Lateral Tibial Cartilage") == TissueClass.CARTILAGE
    assert guess_tissue("intervertebral_discs") == TissueClass.DISC
    assert guess_tissue("iliopsoas_left") == TissueClass.MUSCLE
    assert guess_tissue("liver") == TissueClass.OTHER
    out = label_map_from_names({1: "liver"}, {"liver": "fat"})
    assert out[1].tissue == TissueClass.FAT
    with pytest.raises(DataError, match="not a tissue class"):
        label_map_from_names({1: "liver"}, {"liver": "organ"})


# --- unlisted labels (issue 19) -----------------------------------------------------------------

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
SIX = {"19": "vertebrae", "20": "intervertebral_discs", "46": "autochthon_left", "47": "autochthon_right",
       "48": "iliopsoas_left", "49": "iliopsoas_right"}
REAL_LABELS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 14, 15, 19, 20, 21, 23, 24, 25, 46, 47, 48, 49]  # the README's list


def test_unlisted_values_background_and_error():
    labels = np.array([[[0, 1, 7], [9, 1, 0]]], dtype=np.uint8)
    label_map = {1: LABELS[1]}
    assert unlisted_label_values(labels, label_map) == [7, 9]
    out = apply_unlisted_labels(labels, label_map, "background", "mask.nii.gz")
    assert out.tolist() == [[[0, 1, 0], [0, 1, 0]]] and labels.tolist() == [[[0, 1, 7], [9, 1, 0]]]  # input untouched
    with pytest.raises(DataError) as info:
        apply_unlisted_labels(labels, label_map, "error", "mask.nii.gz")
    message = str(info.value)
    assert "\n" not in message and "mask.nii.gz" in message and "7, 9" in message
    assert "label_names" in message and 'unlisted_labels = "background"' in message
    clean = np.array([[[0, 1]]], np.uint8)
    assert apply_unlisted_labels(clean, label_map, "error", "m") is clean  # nothing to do: the same array
    with pytest.raises(DataError, match="did you mean 'background'"):
        check_unlisted_policy("backgroud")


def _real_glob_folder(tmp_path: Path) -> Path:
    for folder, name in (("images", "example_mr_sm.nii.gz"), ("labels", "example_seg_mr.nii.gz")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "mr.nii.gz").symlink_to(REAL / name)
    return tmp_path


def test_nifti_folder_uses_a_multilabel_mask_with_six_names(tmp_path):
    from mskbench_builtins.datasets.nifti_folder import NiftiFolder

    root = _real_glob_folder(tmp_path)
    raw = np.asarray(nib.load(REAL / "example_seg_mr.nii.gz").dataobj)
    assert sorted(int(v) for v in np.unique(raw) if v) == REAL_LABELS
    dataset = NiftiFolder(str(root), label_names=SIX, unlisted_labels="background", slice_axis="axial")
    subject = dataset.load("mr")
    assert sorted(int(v) for v in np.unique(subject.labels) if v) == [19, 20, 46, 47, 48, 49]
    assert subject.label_map[20].tissue == TissueClass.DISC and subject.label_map[48].tissue == TissueClass.MUSCLE
    for label_id in (19, 20, 46, 47, 48, 49):  # the named labels keep every voxel (counted on the raw file)
        assert (subject.labels == label_id).sum() == (raw == label_id).sum()
    strict = NiftiFolder(str(root), label_names=SIX, slice_axis="axial")  # default: error
    with pytest.raises(DataError) as info:
        strict.load("mr")
    assert "1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 14, 15, 21, 23, 24, 25" in str(info.value)
    assert 'unlisted_labels = "background"' in str(info.value)
    with pytest.raises(DataError, match="unlisted_labels 'ignore'"):
        NiftiFolder(str(root), label_names=SIX, unlisted_labels="ignore", slice_axis="axial")


def test_dicom_plugin_unlisted_labels(tmp_path):
    from mskbench.data.dicom import read_dicom_series
    from mskbench_builtins.datasets.dicom import DicomFolders

    series_dir = tmp_path / "case01"
    series_dir.mkdir()
    for path in sorted((REAL / "example_ct_dicom").iterdir()):
        shutil.copy(path, series_dir / path.name)
    volume = read_dicom_series(series_dir).volume
    mask = np.zeros(volume.array.shape, np.uint8)
    mask[200:300, 200:300, 5:15] = 1
    mask[100:120, 100:120, 2:4] = 5  # a second structure nobody named
    (tmp_path / "masks").mkdir()
    nib.save(nib.Nifti1Image(mask, volume.affine), tmp_path / "masks" / "case01.nii.gz")
    with pytest.raises(DataError, match="label values 5 are in the mask"):
        DicomFolders(str(tmp_path), label_names={"1": "vertebra"}, slice_axis="through_plane").load("case01")
    dataset = DicomFolders(str(tmp_path), label_names={"1": "vertebra"}, unlisted_labels="background", slice_axis="through_plane")
    subject = dataset.load("case01")
    assert set(np.unique(subject.labels)) == {0, 1} and (subject.labels == 1).sum() == 100 * 100 * 10


def test_unlisted_policy_is_a_plan_time_param_recorded_in_the_manifest(tmp_path):
    from mskbench.plan import build_plan
    from mskbench.plugin_manager import load_registry
    from mskbench.suite import load_suite

    (tmp_path / "data").mkdir()
    root = _real_glob_folder(tmp_path / "data")
    suite_path = tmp_path / "s.toml"
    names = ", ".join(f'"{k}" = "{v}"' for k, v in SIX.items())
    suite_path.write_text(f"""
[[datasets]]
name = "mr"
plugin = "nifti_folder"
split = "all"
params = {{ root = "{root}", unlisted_labels = "background", label_names = {{ {names} }} }}
[[models]]
plugin = "box_fill"
[[prompters]]
plugin = "gt_box"
""")
    plan = build_plan(load_suite(suite_path), load_registry())
    assert plan.resolved_config()["datasets"]["mr"]["unlisted_labels"] == "background"
    assert plan.resolved_config()["preprocess"]["mr"]["min_object_mm3"] == 125.0
    suite_path.write_text(suite_path.read_text().replace('"background"', '"drop"'))
    with pytest.raises(Exception, match="unlisted_labels: 'drop' is not one of 'error', 'background'"):
        build_plan(load_suite(suite_path), load_registry())

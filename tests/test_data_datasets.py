"""Dataset plugins read tiny copies of each published layout (real file names, keys, headers)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from mskbench.data.readers import image_stem, read_volume
from mskbench.errors import DataError
from mskbench.protocols import Dataset
from mskbench.types import TissueClass
from mskbench_builtins.datasets.dicom import DicomFolders
from mskbench_builtins.datasets.nifti_folder import NiftiFolder
from mskbench_builtins.datasets.oaizib_cm import make_oaizib_cm
from mskbench_builtins.datasets.skmtea import SkmTea
from mskbench_builtins.datasets.spider import Spider
from mskbench_builtins.datasets.totalseg_mr import TOTAL_MR, TotalSegMR

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"  # ../shared beside the repository


def _save(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.diag([0.5, 0.5, 2.0, 1.0]) if affine is None else affine), path)


def _knee_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    image = rng.normal(100, 10, (12, 12, 6)).astype(np.float32)
    labels = np.zeros(image.shape, np.uint8)
    for value in range(1, 6):
        labels[2 * value - 2 : 2 * value, 2:10, 1:5] = value
    return image, labels


def test_nnunet_layout_with_real_files(tmp_path):
    root = tmp_path / "Dataset101_Spine"
    names = {"background": 0, **{TOTAL_MR[i]: i for i in sorted(TOTAL_MR)}}
    (root / "imagesTr").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MRI"}, "labels": names, "numTraining": 2, "file_ending": ".nii.gz"}))
    for case, folder in (("spine_001", "Tr"), ("spine_002", "Tr"), ("spine_003", "Ts")):
        (root / f"images{folder}").mkdir(exist_ok=True)
        (root / f"labels{folder}").mkdir(exist_ok=True)
        shutil.copy(REAL / "example_mr_sm.nii.gz", root / f"images{folder}" / f"{case}_0000.nii.gz")
        shutil.copy(REAL / "example_seg_mr.nii.gz", root / f"labels{folder}" / f"{case}.nii.gz")
    dataset = NiftiFolder(str(root), slice_axis="axial", official_split=True)
    assert isinstance(dataset, Dataset)
    assert dataset.subject_ids() == ["spine_001", "spine_002", "spine_003"]
    assert dataset.subject_ids("test") == ["spine_003"] and dataset.subject_ids("train") == ["spine_001", "spine_002"]
    assert dataset.label_map[20].name == "intervertebral_discs" and dataset.label_map[20].tissue == TissueClass.DISC
    assert dataset.label_map[46].tissue == TissueClass.MUSCLE and dataset.label_map[19].tissue == TissueClass.BONE
    subject = dataset.load("spine_003")
    assert subject.volume.shape == (117, 91, 20) and subject.spacing == (3.0, 3.0, 3.0)
    assert subject.volume.dtype == np.float32 and subject.split == "test"
    np.testing.assert_array_equal(subject.labels, read_volume(REAL / "example_seg_mr.nii.gz").array)
    with pytest.raises(DataError, match="unknown subject 'spine_004'"):
        dataset.load("spine_004")


def test_glob_layout_and_missing_label(tmp_path):
    rng = np.random.default_rng(0)
    for case in ("a", "b", "c"):
        image, labels = _knee_case(rng)
        _save(tmp_path / "images" / f"{case}.nii.gz", image)
        _save(tmp_path / "labels" / f"{case}.nii.gz", labels)
    dataset = NiftiFolder(str(tmp_path), label_names={str(i): n for i, n in enumerate(["femur", "femoral_cartilage", "tibia", "mtc", "ltc"], 1)},
                          tissues={"mtc": "cartilage", "ltc": "cartilage"}, slice_axis="sagittal")
    assert dataset.subject_ids() == ["a", "b", "c"]
    assert sum(len(dataset.subject_ids(s)) for s in ("train", "val", "test")) == 3
    assert dataset.label_map[4].tissue == TissueClass.CARTILAGE
    assert dataset.load("b").labels.max() == 5
    with pytest.raises(DataError, match="did you mean 'train'"):
        dataset.subject_ids("trian")
    (tmp_path / "labels" / "c.nii.gz").unlink()
    with pytest.raises(DataError, match="c.nii.gz: label file"):
        NiftiFolder(str(tmp_path), label_names={"1": "femur"}, slice_axis="sagittal").subject_ids()


def test_oaizib_cm_layout(tmp_path):
    rng = np.random.default_rng(1)
    for i, folder in ((1, "Tr"), (2, "Tr"), (3, "Ts")):
        image, labels = _knee_case(rng)
        _save(tmp_path / f"images{folder}" / f"oaizib_{i:03d}_0000.nii.gz", image)
        _save(tmp_path / f"labels{folder}" / f"oaizib_{i:03d}.nii.gz", labels)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "Femur": 1}, "file_ending": ".nii.gz"}))
    dataset = make_oaizib_cm(str(tmp_path), slice_axis="sagittal")
    assert dataset.subject_ids() == ["oaizib_001", "oaizib_002", "oaizib_003"]
    assert [dataset.label_map[i].name for i in range(1, 6)] == [
        "femur", "femoral_cartilage", "tibia", "medial_tibial_cartilage", "lateral_tibial_cartilage"]
    subject = dataset.load("oaizib_003")
    assert subject.anatomy == "knee" and sorted(np.unique(subject.labels)) == [0, 1, 2, 3, 4, 5]


def _write_mha(path: Path, array_xyz: np.ndarray, spacing=(3.3, 0.6, 0.6)) -> None:
    image = sitk.GetImageFromArray(np.transpose(array_xyz, (2, 1, 0)))
    image.SetSpacing(spacing)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def test_spider_layout(tmp_path):
    rng = np.random.default_rng(2)
    overview = ["new_file_name,subset,sex,age,Manufacturer,MagneticFieldStrength,EchoTime,RepetitionTime,FlipAngle,SliceThickness"]
    for patient, sex in ((1, "F"), (2, "M"), (3, "F")):
        for sequence in ("t1", "t2", "t2_SPACE"):
            image = rng.normal(300, 30, (8, 16, 16)).astype(np.float32)
            mask = np.zeros(image.shape, np.uint16)
            mask[2:6, 2:6, 2:5] = 1
            mask[2:6, 2:6, 6:8] = 201
            mask[2:6, 2:6, 9:12] = 2
            mask[2:6, 8:10, :] = 100
            _write_mha(tmp_path / "images" / f"{patient}_{sequence}.mha", image)
            _write_mha(tmp_path / "masks" / f"{patient}_{sequence}.mha", mask)
            overview.append(f"{patient}_{sequence},{'validation' if patient == 3 else 'training'},{sex},{40 + patient},"
                            f"SIEMENS,1.5,{90 if sequence != 't1' else 10},{3000 if sequence != 't1' else 500},150,3.3")
    (tmp_path / "overview.csv").write_text("\n".join(overview) + "\n")
    dataset = Spider(str(tmp_path), sequence="t2", slice_axis="sagittal", official_split=True)
    assert dataset.subject_ids() == ["1_t2", "2_t2", "3_t2"]
    assert dataset.subject_ids("val") == ["3_t2"]
    subject = dataset.load("2_t2")
    assert subject.demographics.sex == "M" and subject.demographics.age_years == 42
    assert subject.acquisition.te_ms == 90 and subject.acquisition.field_strength_t == 1.5 and subject.acquisition.sequence == "t2"
    assert subject.spacing == pytest.approx((3.3, 0.6, 0.6))
    assert {dataset.label_map[i].name for i in (1, 100, 201)} == {"vertebra_1", "spinal_canal", "disc_1"}
    assert dataset.label_map[201].tissue == TissueClass.DISC
    assert set(np.unique(subject.labels)) == {0, 1, 2, 100, 201}
    assert Spider(str(tmp_path), sequence="t2_SPACE", slice_axis="sagittal").subject_ids() == ["1_t2_SPACE", "2_t2_SPACE", "3_t2_SPACE"]
    bad = rng.normal(size=(8, 16, 16)).astype(np.float32)
    _write_mha(tmp_path / "masks" / "1_t2.mha", np.full(bad.shape, 300, np.uint16))
    with pytest.raises(DataError, match=r"1_t2.mha: label values 300"):
        dataset.load("1_t2")


def test_totalseg_mr_layout_with_real_files(tmp_path):
    seg = nib.load(REAL / "example_seg_mr.nii.gz")
    values = np.asanyarray(seg.dataobj)
    (tmp_path / "meta.csv").write_text("image_id;age;gender;institute;study_type;split\ns0001;63;f;A;mri abdomen;test\n")
    folder = tmp_path / "s0001"
    (folder / "segmentations").mkdir(parents=True)
    shutil.copy(REAL / "example_mr_sm.nii.gz", folder / "mri.nii.gz")
    for label_id, name in TOTAL_MR.items():
        nib.save(nib.Nifti1Image((values == label_id).astype(np.uint8), seg.affine), folder / "segmentations" / f"{name}.nii.gz")
    dataset = TotalSegMR(str(tmp_path), labels=["vertebrae", "intervertebral_discs", "autochthon_left", "liver"], slice_axis="axial")
    subject = dataset.load("s0001")
    assert sorted(subject.label_map) == [5, 19, 20, 46]
    reference = read_volume(REAL / "example_seg_mr.nii.gz").array
    expected = np.where(np.isin(reference, [5, 19, 20, 46]), reference, 0)
    np.testing.assert_array_equal(subject.labels, expected)
    assert subject.demographics.sex == "F" and subject.demographics.age_years == 63
    default = TotalSegMR(str(tmp_path), slice_axis="axial")
    assert 5 not in default.label_map and default.label_map[48].name == "iliopsoas_left"
    with pytest.raises(DataError, match="did you mean 'vertebrae'"):
        TotalSegMR(str(tmp_path), labels=["vertebra"], slice_axis="axial")


def test_skmtea_layout(tmp_path):
    rng = np.random.default_rng(3)
    shape = (10, 8, 6)  # (SI, AP, LR) as in the release
    seg = np.zeros((*shape, 6), np.uint8)
    seg[1:3, 1:3, 1:3, 1] = 1  # femoral cartilage near the superior, anterior, left corner
    seg[6:8, 5:7, 3:5, 4] = 1  # medial meniscus
    (tmp_path / "image_files").mkdir()
    with h5py.File(tmp_path / "image_files" / "MTR_005.h5", "w") as handle:
        handle["echo1"] = rng.normal(500, 50, shape).astype(np.float32)
        handle["echo2"] = rng.normal(200, 20, shape).astype(np.float32)
        handle["seg"] = seg
    annotations = tmp_path / "annotations" / "v1.0.0"
    annotations.mkdir(parents=True)
    entry = {"id": 1, "file_name": "MTR_005.h5", "scan_id": "MTR_005", "orientation": ["SI", "AP", "LR"], "voxel_spacing": [0.3125, 0.3125, 0.8]}
    (annotations / "train.json").write_text(json.dumps({"images": [entry]}))
    (annotations / "val.json").write_text(json.dumps({"images": []}))
    dataset = SkmTea(str(tmp_path), slice_axis="sagittal", official_split=True)
    assert dataset.subject_ids("train") == ["MTR_005"]
    subject = dataset.load("MTR_005")
    # canonical RAS: x <- LR axis, y <- AP axis reversed, z <- SI axis reversed
    assert subject.volume.shape == (6, 8, 10) and subject.spacing == pytest.approx((0.8, 0.3125, 0.3125))
    with h5py.File(tmp_path / "image_files" / "MTR_005.h5") as handle:
        echo1 = handle["echo1"][()]
    np.testing.assert_allclose(subject.volume, np.transpose(echo1, (2, 1, 0))[:, ::-1, ::-1])
    assert (subject.labels == 2).sum() == 8 and subject.labels[1, 8 - 2, 10 - 2] == 2
    assert subject.labels[3, 8 - 6, 10 - 7] == 5 and subject.acquisition.sequence == "qDESS"
    assert dataset.label_map[5].tissue == TissueClass.MENISCUS


def test_dicom_plugin_with_real_series(tmp_path):
    series_dir = tmp_path / "case01"
    series_dir.mkdir()
    files = sorted((REAL / "example_ct_dicom").iterdir())
    for i, path in enumerate(reversed(files)):
        shutil.copy(path, series_dir / f"IM{i:04d}")
    from mskbench.data.dicom import read_dicom_series

    volume = read_dicom_series(series_dir).volume
    mask = np.zeros(volume.array.shape, np.uint8)
    mask[200:300, 200:300, 5:15] = 1
    _save(tmp_path / "masks" / "case01.nii.gz", mask, volume.affine)
    dataset = DicomFolders(str(tmp_path), label_names={"1": "vertebra"}, slice_axis="through_plane")
    assert dataset.subject_ids() == ["case01"]
    subject = dataset.load("case01")
    assert subject.labels.sum() == 100 * 100 * 10 and subject.acquisition.vendor == "SIEMENS"
    assert subject.spacing == pytest.approx((0.9765625, 0.9765625, 2.0))
    _save(tmp_path / "masks" / "case01.nii.gz", mask[:, :, :19], volume.affine)
    with pytest.raises(DataError, match="grid"):
        dataset.load("case01")


def test_missing_root_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="dataset folder not found"):
        Spider(str(tmp_path / "nope"), slice_axis="sagittal")
    (tmp_path / "images").mkdir()
    with pytest.raises(DataError, match="no subjects found"):
        Spider(str(tmp_path), slice_axis="sagittal").subject_ids()


@pytest.mark.parametrize(("name", "subject_id"), [
    ("s1.v2.nii.gz", "s1.v2"), ("s1.nii.gz", "s1"), ("s1.nii", "s1"), ("knee.01.mha", "knee.01"),
    ("S1.NII.GZ", "S1"), ("a.nrrd", "a"), ("scan.gz", "scan.gz"), (".nii.gz", ".nii.gz"),
])
def test_subject_id_is_the_whole_stem(name, subject_id):
    assert image_stem(Path(name)) == subject_id


def test_dotted_file_names_are_distinct_subjects(tmp_path):
    rng = np.random.default_rng(2)
    for stem in ("s1", "s1.v2"):
        image, labels = _knee_case(rng)
        _save(tmp_path / "images" / f"{stem}.nii.gz", image)
        _save(tmp_path / "labels" / f"{stem}.nii.gz", labels)
    dataset = NiftiFolder(str(tmp_path), label_names={str(i): f"l{i}" for i in range(1, 6)}, slice_axis="sagittal")
    assert dataset.subject_ids() == ["s1", "s1.v2"]
    assert dataset.load("s1.v2").source_files == (str(tmp_path / "images" / "s1.v2.nii.gz"), str(tmp_path / "labels" / "s1.v2.nii.gz"))


def test_two_files_with_one_subject_id_are_an_error_naming_both(tmp_path):
    rng = np.random.default_rng(3)
    for name in ("s1.nii", "s1.nii.gz"):
        image, labels = _knee_case(rng)
        _save(tmp_path / "images" / name, image)
        _save(tmp_path / "labels" / name, labels)
    dataset = NiftiFolder(str(tmp_path), images_glob="images/*", label_names={"1": "femur"}, slice_axis="sagittal")
    with pytest.raises(DataError, match=r"subject id 's1' belongs to two files, .*images/s1.nii and .*images/s1.nii.gz"):
        dataset.subject_ids()

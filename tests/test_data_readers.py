"""Readers: canonical RAS+ orientation, spacing, DICOM ordering and metadata, bad input."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

from mskbench.data.dicom import read_dicom_series
from mskbench.data.metadata import parse_age, parse_sex
from mskbench.data.readers import read_hdf5, read_volume
from mskbench.data.subjects import build_subject
from mskbench.errors import DataError
from mskbench.types import LabelInfo, TissueClass

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"  # ../shared beside the repository
CT = REAL / "example_ct_dicom"
TOTAL_MR_PRESENT = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 14, 15, 19, 20, 21, 23, 24, 25, 46, 47, 48, 49}


def test_real_nifti_is_reoriented_to_ras():
    raw = nib.load(REAL / "example_mr_sm.nii.gz")
    assert nib.aff2axcodes(raw.affine) == ("L", "P", "S")
    volume = read_volume(REAL / "example_mr_sm.nii.gz")
    assert volume.array.shape == (117, 91, 20)
    assert volume.spacing == (3.0, 3.0, 3.0)
    assert volume.orientation == ("R", "A", "S") and volume.original_orientation == ("L", "P", "S")
    # L->R and P->A are flips of the first two axes; the world position of every voxel is unchanged
    np.testing.assert_array_equal(volume.array, np.asanyarray(raw.dataobj)[::-1, ::-1, :])
    ijk = np.array([10, 20, 5, 1])
    np.testing.assert_allclose(volume.affine @ ijk, raw.affine @ np.array([116 - 10, 90 - 20, 5, 1]))


def test_real_segmentation_shares_the_grid():
    image = read_volume(REAL / "example_mr_sm.nii.gz")
    seg = read_volume(REAL / "example_seg_mr.nii.gz")
    np.testing.assert_allclose(seg.affine, image.affine)
    assert set(np.unique(seg.array).tolist()) == TOTAL_MR_PRESENT


def _shuffled_copy(tmp_path: Path, name: str = "shuffled") -> Path:
    files = sorted(CT.iterdir())
    random.Random(5).shuffle(files)
    out = tmp_path / name
    out.mkdir()
    for i, path in enumerate(files):  # new names carry no order: z_<random order index>
        shutil.copy(path, out / f"z_{i:02d}")
    return out


def test_ct_series_order_does_not_depend_on_file_names(tmp_path):
    ordered = read_dicom_series(CT)
    shuffled = read_dicom_series(_shuffled_copy(tmp_path))
    assert ordered.volume.array.shape == (512, 512, 20)
    np.testing.assert_array_equal(ordered.volume.array, shuffled.volume.array)
    np.testing.assert_allclose(ordered.volume.affine, shuffled.volume.affine)
    # slice k holds the file whose ImagePositionPatient z is the k-th smallest (superior axis)
    headers = [pydicom.dcmread(p) for p in CT.iterdir()]
    headers.sort(key=lambda h: float(h.ImagePositionPatient[2]))
    for k in (0, 7, 19):
        expected = headers[k].pixel_array.astype(np.float32) * float(headers[k].RescaleSlope) + float(headers[k].RescaleIntercept)
        # RAS: first axis runs to the patient's left->right flip of DICOM columns, second A = flipped rows
        np.testing.assert_array_equal(ordered.volume.array[:, :, k], expected.T[::-1, ::-1])


def test_ct_series_matches_simpleitk_gdcm(tmp_path):
    """GDCM's own series sorting, written as NRRD and read back, lands on the same RAS grid."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(CT)))
    sitk.WriteImage(reader.Execute(), str(tmp_path / "ct.nrrd"))
    reference = read_volume(tmp_path / "ct.nrrd")
    ours = read_dicom_series(_shuffled_copy(tmp_path)).volume
    np.testing.assert_allclose(ours.affine, reference.affine, atol=1e-4)
    np.testing.assert_allclose(ours.array, reference.array)
    assert ours.spacing[2] == pytest.approx(2.0)  # the position step, not SliceThickness (3 mm)


def test_mr_small_header_metadata():
    series = read_dicom_series(get_testdata_file("MR_small.dcm"))
    acq, demo = series.acquisition, series.demographics
    assert (acq.te_ms, acq.tr_ms, acq.flip_angle_deg) == (240.0, 4000.0, 90.0)
    assert acq.vendor == "TOSHIBA_MEC" and acq.acquisition_type == "3D"
    assert acq.slice_thickness_mm == pytest.approx(0.8) and acq.pixel_spacing_mm == pytest.approx(0.3125)
    assert demo.sex == "F" and demo.weight_kg == 80.0
    assert series.volume.array.shape == (64, 64, 1)
    assert series.volume.spacing == pytest.approx((0.3125, 0.3125, 0.8))


def test_age_and_sex_parsing():
    assert parse_age("045Y") == 45 and parse_age("006M") == pytest.approx(0.5) and parse_age("") is None
    assert parse_age(61) == 61
    assert parse_sex("F") == "F" and parse_sex("male") == "M" and parse_sex("O") is None


def test_truncated_dicom_names_the_file():
    path = get_testdata_file("MR_truncated.dcm")
    with pytest.raises(DataError, match="MR_truncated.dcm: truncated DICOM file: the pixel data ends early"):
        read_dicom_series(path)


def test_mixed_series_in_one_folder(tmp_path):
    folder = _shuffled_copy(tmp_path)
    shutil.copy(get_testdata_file("MR_small.dcm"), folder / "mr.dcm")
    with pytest.raises(DataError, match="mixed series"):
        read_volume(folder)


def test_missing_slice_and_empty_folder(tmp_path):
    folder = tmp_path / "gap"
    folder.mkdir()
    headers = sorted(CT.iterdir(), key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    for path in headers[:8] + headers[9:]:
        shutil.copy(path, folder / path.name)
    with pytest.raises(DataError, match="not evenly spaced"):
        read_dicom_series(folder)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not dicom")
    with pytest.raises(DataError, match="no DICOM image files"):
        read_volume(tmp_path / "empty")


def test_mha_direction_and_spacing(tmp_path):
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(6, 5, 4)  # SimpleITK order (z, y, x)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.7, 3.0))
    image.SetOrigin((10.0, 20.0, 30.0))  # identity direction in LPS: x runs to L, y to P
    sitk.WriteImage(image, str(tmp_path / "v.mha"))
    volume = read_volume(tmp_path / "v.mha")
    assert volume.orientation == ("R", "A", "S") and volume.original_orientation == ("L", "P", "S")
    assert volume.spacing == pytest.approx((0.5, 0.7, 3.0))
    np.testing.assert_array_equal(volume.array, np.transpose(array, (2, 1, 0))[::-1, ::-1, :])
    # voxel (0, 0, 0) of the canonical array is the ITK index (3, 4, 0): LPS (11.5, 22.8, 30) = RAS (-11.5, -22.8, 30)
    np.testing.assert_allclose(volume.affine[:3, 3], [-11.5, -22.8, 30.0])


def test_hdf5_with_affine(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as handle:
        handle["echo1"] = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    affine = np.diag([-1.0, 2.0, 3.0, 1.0])
    volume = read_hdf5(tmp_path / "x.h5", "echo1", affine)
    assert volume.spacing == (1.0, 2.0, 3.0) and volume.orientation == ("R", "A", "S")
    np.testing.assert_array_equal(volume.array, np.arange(24).reshape(2, 3, 4)[::-1])
    with pytest.raises(DataError, match="no dataset 'echo2'"):
        read_hdf5(tmp_path / "x.h5", "echo2", affine)


def _nifti(tmp_path, name, array, affine=None):
    path = tmp_path / name
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path


def test_subject_bad_inputs(tmp_path):
    rng = np.random.default_rng(0)
    image = read_volume(_nifti(tmp_path, "img.nii.gz", rng.normal(size=(6, 6, 6)).astype(np.float32)))
    label_map = {1: LabelInfo(1, "femur", TissueClass.BONE)}
    good = np.zeros((6, 6, 6), np.uint8)
    good[2:4, 2:4, 2:4] = 1
    assert build_subject("a", image, read_volume(_nifti(tmp_path, "ok.nii.gz", good)), label_map).labels.sum() == 8
    with pytest.raises(DataError, match="grid"):
        build_subject("a", image, read_volume(_nifti(tmp_path, "g.nii.gz", good[:5])), label_map)
    with pytest.raises(DataError, match="affine differs"):
        build_subject("a", image, read_volume(_nifti(tmp_path, "af.nii.gz", good, np.diag([1.0, 1.0, 1.2, 1.0]))), label_map)
    with pytest.raises(DataError, match=r"label values 3 are not in"):
        build_subject("a", image, read_volume(_nifti(tmp_path, "v.nii.gz", good * 3)), label_map)
    constant = read_volume(_nifti(tmp_path, "c.nii.gz", np.ones((6, 6, 6), np.float32)))
    with pytest.raises(DataError, match="c.nii.gz: image intensities are constant"):
        build_subject("a", constant, good, label_map)
    nan = rng.normal(size=(6, 6, 6)).astype(np.float32)
    nan[1, 1, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        build_subject("a", read_volume(_nifti(tmp_path, "n.nii.gz", nan)), good, label_map)


def test_missing_spacing_and_corrupt_files(tmp_path):
    flat = nib.Nifti1Image(np.ones((3, 3, 3), np.float32), None)
    flat.header["pixdim"][3] = 0  # nibabel would read this back as 1 mm
    nib.save(flat, tmp_path / "flat.nii.gz")
    with pytest.raises(DataError, match="flat.nii.gz: missing voxel spacing"):
        read_volume(tmp_path / "flat.nii.gz")
    broken = tmp_path / "broken.nii.gz"
    broken.write_bytes((REAL / "example_mr_sm.nii.gz").read_bytes()[:5000])
    with pytest.raises(DataError, match="broken.nii.gz: cannot read as NIfTI"):
        read_volume(broken)
    with pytest.raises(DataError, match="file not found"):
        read_volume(tmp_path / "absent.nii.gz")


def test_one_volume_4d_nifti_is_read_as_3d(tmp_path):
    array = np.random.default_rng(0).normal(size=(4, 5, 6, 1)).astype(np.float32)
    volume = read_volume(_nifti(tmp_path, "one.nii.gz", array))
    assert volume.array.shape == (4, 5, 6)
    np.testing.assert_array_equal(volume.array, array[..., 0])


def test_complex_hdf5_is_refused_not_truncated_to_its_real_part(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as handle:
        handle["echo1"] = (np.ones((2, 3, 4)) + 1j).astype(np.complex64)
    with pytest.raises(DataError, match=r"x.h5: the image holds complex values \(complex64\)"):
        read_hdf5(tmp_path / "x.h5", "echo1", np.eye(4))


def _text_report(path: Path, series_uid: str) -> None:
    """A Basic Text SR object: a DICOM file of the series that holds no image."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    report = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    report.SOPClassUID = meta.MediaStorageSOPClassUID
    report.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    report.SeriesInstanceUID = series_uid
    report.save_as(path, enforce_file_format=True)


def test_series_folder_skips_files_that_are_not_slices(tmp_path):
    """README, notes, thumbnails, hidden files and a report object sit beside the slices and are not read."""
    folder = tmp_path / "series"
    folder.mkdir()
    files = sorted(CT.iterdir())[:3]
    for path in files:
        shutil.copy(path, folder / path.name)
    (folder / "README").write_text("exported by the scanner console\n")
    (folder / "notes.txt").write_text("")
    (folder / "thumb.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(40))
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(20))
    _text_report(folder / "report.dcm", str(pydicom.dcmread(files[0], stop_before_pixels=True).SeriesInstanceUID))
    series = read_dicom_series(folder)
    assert series.volume.array.shape == (512, 512, 3) and len(series.files) == 3

"""Bad data files through the real CLI: NIfTI, MHA, DICOM, file datasets.

Every case runs `mskbench data info`, `metrics compute`, `biomarkers compute`,
`validate` or `run` in a subprocess on files written by its ``setup`` (tiny,
made with nibabel, SimpleITK and pydicom) and must end in one error line,
exit code 2 and an untouched results database (see ``harness.check``). The
last tests prove the real example data in ../shared still reads cleanly.
"""

from __future__ import annotations

import copy
import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from harness import BadInput, check, run_cli

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
SHAPE = (8, 8, 4)


# --- file makers ---------------------------------------------------------------------------------
def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100, 10, SHAPE).astype(np.float32)


def _mask(value: int = 1) -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint8)
    mask[2:6, 2:6, 1:3] = value
    return mask


def _save(path: Path, array: np.ndarray, affine: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path


def _patched_nifti(path: Path, array: np.ndarray, **fields) -> Path:
    """A NIfTI whose header fields are set as given, bypassing nibabel's fixes on save."""
    plain = path.with_name("plain.nii")
    _save(plain, array)
    data = plain.read_bytes()
    plain.unlink()
    header = nib.Nifti1Header(binaryblock=data[:348], check=False)
    for key, value in fields.items():
        header[key] = value
    raw = header.binaryblock + data[348:]
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def _truncated(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _mha(path: Path, array_zyx: np.ndarray) -> Path:
    sitk.WriteImage(sitk.GetImageFromArray(array_zyx), str(path))
    return path


def _mr_series(folder: Path, slices: int = 3, series_uid: str | None = None) -> list[Path]:
    """A tiny real-header MR series: pydicom's MR_small.dcm (64x64) repeated along its slice normal."""
    folder.mkdir(parents=True, exist_ok=True)
    source = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    series_uid = series_uid or generate_uid()
    paths = []
    for k in range(slices):
        ds = copy.deepcopy(source)
        x, y, z = (float(v) for v in source.ImagePositionPatient)
        ds.ImagePositionPatient = [x, y, z + 0.8 * k]
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = series_uid
        ds.InstanceNumber = k + 1
        paths.append(folder / f"IM{k:04d}")  # extension-less, as scanners write them
        ds.save_as(paths[-1])
    return paths


def _real_ct_slices(folder: Path, count: int = 3) -> list[Path]:
    """The first ``count`` files of the real CT series (JPEG 2000 encapsulated pixel data)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = sorted((REAL / "example_ct_dicom").iterdir())[:count]
    return [Path(shutil.copy(path, folder / path.name)) for path in files]


def _suite(tmp: Path, plugin: str, root: Path, extra: str = "") -> None:
    """A one-cell suite (weight-free box_fill, ground-truth boxes) over one file dataset with label 1 = femur."""
    (tmp / "suite.toml").write_text(
        '[suite]\nname = "bad_data"\nseed = 0\ndevice = "cpu"\n\n'
        f'[[datasets]]\nname = "d"\nplugin = "{plugin}"\nsplit = "all"\n'
        f'params = {{ root = "{root}", label_names = {{ "1" = "femur" }}{extra} }}\n\n'
        '[[models]]\nname = "box_fill"\nplugin = "box_fill"\n\n'
        '[[prompters]]\nname = "gt_box"\nplugin = "gt_box"\n\n'
        f'[output]\ndb = "{tmp / "suite_results.duckdb"}"\n'
    )


def _nifti_folder(tmp: Path, cases: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    root = tmp / "data"
    for name, (image, labels) in cases.items():
        _save(root / "images" / name, image)
        _save(root / "labels" / name, labels)
    return root


# --- setups --------------------------------------------------------------------------------------
def nifti_truncated_gz(tmp: Path) -> None:
    _truncated(_save(tmp / "bad.nii.gz", np.random.default_rng(0).normal(size=(32, 32, 16)).astype(np.float32)))


def nifti_not_gzip(tmp: Path) -> None:
    (tmp / "bad.nii.gz").write_text("this is a text file named like a NIfTI\n" * 20)


def nifti_zero_bytes(tmp: Path) -> None:
    (tmp / "bad.nii.gz").write_bytes(b"")


def nifti_2d(tmp: Path) -> None:
    _save(tmp / "bad.nii.gz", _image()[:, :, 0])


def nifti_4d(tmp: Path) -> None:
    _save(tmp / "bad.nii.gz", np.stack([_image(), _image(1)], axis=-1))


def nifti_nan_affine(tmp: Path) -> None:
    _patched_nifti(tmp / "bad.nii.gz", _image(), sform_code=1, srow_x=[np.nan, 0, 0, 0])


def nifti_singular_affine(tmp: Path) -> None:
    _patched_nifti(tmp / "bad.nii.gz", _image(), sform_code=1, qform_code=0,
                   srow_x=[1, 1, 0, 0], srow_y=[0, 0, 0, 0], srow_z=[0, 0, 1, 0])


def nifti_pixdim_zero(tmp: Path) -> None:
    _patched_nifti(tmp / "bad.nii.gz", _image(), sform_code=0, qform_code=0, pixdim=[1, 1, 0, 1, 1, 1, 1, 1])


def nifti_pixdim_negative(tmp: Path) -> None:
    _patched_nifti(tmp / "bad.nii.gz", _image(), sform_code=0, qform_code=1, pixdim=[1, 1, -2, 1, 1, 1, 1, 1])


def nifti_complex(tmp: Path) -> None:
    _save(tmp / "bad.nii.gz", (_image() + 1j * _image(1)).astype(np.complex64))


def mha_truncated(tmp: Path) -> None:
    _truncated(_mha(tmp / "bad.mha", np.random.default_rng(0).normal(size=(16, 16, 16)).astype(np.float32)), 0.8)


def mha_bad_header(tmp: Path) -> None:
    (tmp / "bad.mha").write_bytes(b"ObjectType = Image\nNDims = three\nDimSize = 4 5\nElementType = MET_FLOAT\n"
                                  b"ElementDataFile = LOCAL\n" + bytes(80))


def dicom_truncated_pixels_encapsulated(tmp: Path) -> None:
    _truncated(_real_ct_slices(tmp / "series")[1], 0.6)


def dicom_truncated_pixels_uncompressed(tmp: Path) -> None:
    path = _mr_series(tmp / "series")[1]
    path.write_bytes(path.read_bytes()[:-500])


def dicom_few_bytes_in_series(tmp: Path) -> None:
    path = _mr_series(tmp / "series")[1]
    path.write_bytes(path.read_bytes()[:12])


def dicom_header_cut_short(tmp: Path) -> None:
    _truncated(_real_ct_slices(tmp / "series")[2], 0.005)


def dicom_missing_orientation(tmp: Path) -> None:
    path = _mr_series(tmp / "series")[1]
    ds = pydicom.dcmread(path)
    del ds.ImageOrientationPatient
    ds.save_as(path)


def dicom_mixed_series(tmp: Path) -> None:
    _mr_series(tmp / "series", series_uid=generate_uid())
    other = _mr_series(tmp / "other", series_uid=generate_uid())
    for path in other:
        shutil.move(path, tmp / "series" / f"B_{path.name}")


def dicom_empty_folder(tmp: Path) -> None:
    (tmp / "series").mkdir()
    (tmp / "series" / "README.txt").write_text("the scans are elsewhere\n")


def label_pair_shape_mismatch(tmp: Path) -> None:
    _save(tmp / "ref.nii.gz", _mask())
    _save(tmp / "pred.nii.gz", _mask()[:, :, :3])


def label_pair_pred_complex(tmp: Path) -> None:
    _save(tmp / "ref.nii.gz", _mask())
    _save(tmp / "pred.nii.gz", _mask().astype(np.complex64))


def label_ref_4d(tmp: Path) -> None:
    _save(tmp / "ref.nii.gz", np.stack([_mask(), _mask()], axis=-1))
    _save(tmp / "pred.nii.gz", _mask())


def mask_truncated(tmp: Path) -> None:
    big = np.zeros((40, 40, 20), np.uint8)
    big[5:30, 5:30, 2:18] = np.random.default_rng(0).integers(0, 3, (25, 25, 16))
    _truncated(_save(tmp / "mask.nii.gz", big), 0.5)


def mask_pixdim_negative(tmp: Path) -> None:
    _patched_nifti(tmp / "mask.nii.gz", _mask(), sform_code=0, qform_code=0, pixdim=[1, -1, 1, 1, 1, 1, 1, 1])


def mask_nan_affine(tmp: Path) -> None:
    _patched_nifti(tmp / "mask.nii.gz", _mask(), sform_code=1, srow_z=[0, 0, np.inf, 0])


def nifti_folder_id_collision(tmp: Path) -> None:
    root = tmp / "data"
    for name in ("s1.nii", "s1.nii.gz"):  # one subject id, two files
        _save(root / "images" / name, _image())
        _save(root / "labels" / name, _mask())
    _suite(tmp, "nifti_folder", root, ', images_glob = "images/*"')


def nifti_folder_nnunet_case_twice(tmp: Path) -> None:
    root = tmp / "data"
    (root / "dataset.json").parent.mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "femur": 1}, "file_ending": ".nii.gz"}))
    for split in ("Tr", "Ts"):  # the same case in the training and the test folder
        _save(root / f"images{split}" / "knee_001_0000.nii.gz", _image())
        _save(root / f"labels{split}" / "knee_001.nii.gz", _mask())


def nifti_folder_unknown_label(tmp: Path) -> None:
    root = _nifti_folder(tmp, {"a.nii.gz": (_image(), _mask(3))})  # 3 is not in label_names
    _suite(tmp, "nifti_folder", root)


def nifti_folder_grid_mismatch(tmp: Path) -> None:
    _nifti_folder(tmp, {"a.nii.gz": (_image(), _mask()[:7])})


def nifti_folder_missing_root(tmp: Path) -> None:
    _suite(tmp, "nifti_folder", tmp / "not_here")


def _dicom_dataset(tmp: Path) -> tuple[Path, list[Path]]:
    root = tmp / "data"
    paths = _mr_series(root / "case01")
    affine = np.diag([-0.3125, -0.3125, 0.8, 1.0])  # only the file names matter before the series is read
    _save(root / "masks" / "case01.nii.gz", np.zeros((64, 64, 3), np.uint8), affine)
    return root, paths


def dicom_dataset_truncated_slice(tmp: Path) -> None:
    root, paths = _dicom_dataset(tmp)
    paths[2].write_bytes(paths[2].read_bytes()[:-300])
    _suite(tmp, "dicom", root)


def dicom_dataset_few_bytes_slice(tmp: Path) -> None:
    root, paths = _dicom_dataset(tmp)
    paths[0].write_bytes(b"\x00" * 20)


def dicom_dataset_two_masks(tmp: Path) -> None:
    root, _ = _dicom_dataset(tmp)
    _save(root / "masks" / "case01.nii", np.zeros((64, 64, 3), np.uint8))


def skmtea_scan_listed_twice(tmp: Path) -> None:
    folder = tmp / "data" / "annotations" / "v1.0.0"
    folder.mkdir(parents=True)
    entry = {"scan_id": "MTR_005", "file_name": "MTR_005.h5", "orientation": ["SI", "AP", "LR"], "voxel_spacing": [1, 1, 1]}
    for split in ("train", "test"):
        (folder / f"{split}.json").write_text(json.dumps({"images": [entry]}))


# --- the cases -----------------------------------------------------------------------------------
INFO = ["data", "info", "{tmp}/bad.nii.gz"]
MHA = ["data", "info", "{tmp}/bad.mha"]
SERIES = ["data", "info", "{tmp}/series"]
PAIR = ["metrics", "compute", "--reference", "{tmp}/ref.nii.gz", "--prediction", "{tmp}/pred.nii.gz"]
MASK = ["biomarkers", "compute", "--mask", "{tmp}/mask.nii.gz", "--biomarker", "tissue_volume"]
RUN = ["run", "{tmp}/suite.toml", "--db", "{db}"]
VALIDATE = ["validate", "{tmp}/suite.toml"]
LABELS = ["--param", 'label_names={{"1": "femur"}}']  # braces doubled: the harness formats {tmp} and {db}
NIFTI_FOLDER = ["data", "info", "nifti_folder", "--param", "root={tmp}/data", *LABELS]
DICOM_DATASET = ["data", "info", "dicom", "--param", "root={tmp}/data", *LABELS]

CASES = [
    BadInput("nifti-truncated-gz", INFO, nifti_truncated_gz, "check the file is complete"),
    BadInput("nifti-not-gzip", INFO, nifti_not_gzip, "not a gzip file"),
    BadInput("nifti-zero-bytes", INFO, nifti_zero_bytes, "empty file"),
    BadInput("nifti-2d", INFO, nifti_2d, "declares a 2D image"),
    BadInput("nifti-4d", INFO, nifti_4d, "declares a 4D image"),
    BadInput("nifti-nan-affine", INFO, nifti_nan_affine, "sform affine contains NaN"),
    BadInput("nifti-singular-affine", INFO, nifti_singular_affine, "sform affine is singular"),
    BadInput("nifti-pixdim-zero", INFO, nifti_pixdim_zero, "missing voxel spacing"),
    BadInput("nifti-pixdim-negative", INFO, nifti_pixdim_negative, "invalid voxel spacing"),
    BadInput("nifti-complex", INFO, nifti_complex, "complex values (complex64)"),
    BadInput("mha-truncated", MHA, mha_truncated, "bad.mha: cannot read"),
    BadInput("mha-bad-header", MHA, mha_bad_header, "bad.mha: cannot read"),
    BadInput("dicom-truncated-pixels-jpeg2000", SERIES, dicom_truncated_pixels_encapsulated, "truncated DICOM file"),
    BadInput("dicom-truncated-pixels-raw", SERIES, dicom_truncated_pixels_uncompressed, "IM0001: truncated DICOM file"),
    BadInput("dicom-few-bytes-in-series", SERIES, dicom_few_bytes_in_series, "IM0001: not a readable DICOM file"),
    BadInput("dicom-header-cut-short", SERIES, dicom_header_cut_short, "truncated DICOM file"),
    BadInput("dicom-missing-orientation", SERIES, dicom_missing_orientation, "IM0001: missing or malformed ImageOrientationPatient"),
    BadInput("dicom-mixed-series", SERIES, dicom_mixed_series, "mixed series"),
    BadInput("dicom-empty-folder", SERIES, dicom_empty_folder, "no DICOM image files"),
    BadInput("dicom-truncated-single-file", ["data", "info", get_testdata_file("MR_truncated.dcm")], None,
             "MR_truncated.dcm: truncated DICOM file"),
    BadInput("metrics-shape-mismatch", PAIR, label_pair_shape_mismatch, "pred.nii.gz: voxel grid differs from the reference"),
    BadInput("metrics-complex-prediction", PAIR, label_pair_pred_complex, "pred.nii.gz: the image holds complex values"),
    BadInput("metrics-4d-reference", PAIR, label_ref_4d, "ref.nii.gz: the header declares a 4D image"),
    BadInput("biomarkers-truncated-mask", MASK, mask_truncated, "mask.nii.gz: cannot read as NIfTI"),
    BadInput("biomarkers-negative-pixdim", MASK, mask_pixdim_negative, "invalid voxel spacing"),
    BadInput("biomarkers-inf-affine", MASK, mask_nan_affine, "affine contains NaN or infinite"),
    BadInput("run-nifti-folder-id-collision", RUN, nifti_folder_id_collision, "subject id 's1' belongs to two files"),
    BadInput("info-nnunet-case-in-tr-and-ts", ["data", "info", "nifti_folder", "--param", "root={tmp}/data"],
             nifti_folder_nnunet_case_twice, "subject id 'knee_001' belongs to two files"),
    BadInput("run-nifti-folder-label-not-in-map", RUN, nifti_folder_unknown_label, "label map"),
    BadInput("info-nifti-folder-grid-mismatch", NIFTI_FOLDER, nifti_folder_grid_mismatch, "labels grid (7, 8, 4) differs"),
    BadInput("validate-nifti-folder-missing-root", VALIDATE, nifti_folder_missing_root, "dataset folder not found"),
    BadInput("run-dicom-truncated-slice", RUN, dicom_dataset_truncated_slice, "IM0002: truncated DICOM file"),
    BadInput("info-dicom-few-bytes-slice", DICOM_DATASET, dicom_dataset_few_bytes_slice, "IM0000: not a readable DICOM file"),
    BadInput("info-dicom-two-masks", DICOM_DATASET, dicom_dataset_two_masks, "subject case01 has two mask files"),
    BadInput("info-skmtea-scan-listed-twice", ["data", "info", "skmtea", "--param", "root={tmp}/data"],
             skmtea_scan_listed_twice, "subject id 'MTR_005' belongs to two files"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_data_input(case: BadInput, tmp_path: Path, template_db: Path) -> None:
    check(case, tmp_path, template_db)


# --- the real example data still reads, silently -------------------------------------------------
@pytest.mark.parametrize("name", ["example_mr_sm.nii.gz", "example_seg_mr.nii.gz", "example_ct_dicom"])
def test_real_example_data_reads_cleanly(name: str, tmp_path: Path) -> None:
    assert REAL.exists(), f"{REAL} is missing: ../shared must sit beside the repository"
    done = run_cli(["data", "info", str(REAL / name), "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr  # no warning, no nibabel/pydicom chatter
    info = json.loads(done.stdout, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert info["orientation"] == ["R", "A", "S"] and info["non_finite_voxels"] == 0
    expected = {"example_mr_sm.nii.gz": [117, 91, 20], "example_seg_mr.nii.gz": [117, 91, 20], "example_ct_dicom": [512, 512, 20]}
    assert info["shape"] == expected[name]


def test_real_example_as_a_nifti_folder_with_dotted_names(tmp_path: Path) -> None:
    """The real pair under names with dots: two subjects, each its own id and its own files."""
    root = tmp_path / "data"
    for stem in ("spine", "spine.v2"):
        for folder, source in (("images", "example_mr_sm.nii.gz"), ("labels", "example_seg_mr.nii.gz")):
            (root / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(REAL / source, root / folder / f"{stem}.nii.gz")
    names = {"1": "spleen", "2": "kidney_right", "3": "kidney_left", "4": "gallbladder", "5": "liver", "6": "stomach",
             "7": "pancreas", "8": "adrenal_gland_right", "9": "adrenal_gland_left", "11": "lung_right",
             "13": "small_bowel", "14": "duodenum", "15": "colon", "19": "vertebrae", "20": "intervertebral_discs",
             "21": "spinal_cord", "23": "aorta", "24": "inferior_vena_cava", "25": "portal_vein_and_splenic_vein",
             "46": "autochthon_left", "47": "autochthon_right", "48": "iliopsoas_left", "49": "iliopsoas_right"}
    done = run_cli(["data", "info", "nifti_folder", "--json", "--param", f"root={root}",
                    "--param", f"label_names={json.dumps(names)}"], tmp_path)
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["subjects"] == 2 and info["shapes"] == {"[117, 91, 20]": 2}

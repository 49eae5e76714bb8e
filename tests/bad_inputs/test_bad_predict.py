"""Bad-input corpus: `mskbench predict`. One line, exit 2, and no output written (the folder stays as it was)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from harness import BadInput, check

REPO = Path(__file__).resolve().parents[2]
REAL = REPO.parent / "shared" / "data" / "real"
SOURCE = {"PYTHONPATH": str(REPO)}  # the checkout's mskbench, not an installed one
MR = str(REAL / "example_mr_sm.nii.gz")


def _two_series(tmp: Path) -> None:
    """Three CT slices of one series and three of another in one folder."""
    import pydicom

    folder = tmp / "mixed"
    folder.mkdir()
    for i, path in enumerate(sorted((REAL / "example_ct_dicom").iterdir())[:6]):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.1" if i < 3 else "1.2.826.0.1.3680043.8.498.2"
        ds.save_as(folder / path.name)


def _no_spacing(tmp: Path) -> None:
    import nibabel as nib

    image = nib.Nifti1Image(np.ones((8, 8, 4), np.int16), None)
    image.header["pixdim"][1:4] = 0
    image.header["sform_code"] = 0
    image.header["qform_code"] = 0
    nib.save(image, tmp / "flat.nii.gz")


def _full_out(tmp: Path) -> None:
    (tmp / "out").mkdir()
    (tmp / "out" / "notes.txt").write_text("earlier work")


def _detector(tmp: Path) -> None:
    import sys

    sys.path.insert(0, str(REPO))
    from tests.test_detector_suite import _detector as make

    make(tmp / "mr-yolov8n-v1.pt", [(19, "vertebrae"), (20, "intervertebral_discs")])


def _boxes(row: str):
    """A box file for the MR study holding one data row."""
    def setup(tmp: Path) -> None:
        (tmp / "boxes.csv").write_text(f"subject_id,label,x1,y1,z1,x2,y2,z2\n{row}\n")
    return setup


BOXES = ["--per-slice", "--input", MR, "--labels", "1=femur", "--prompter", "box3d-from-file",
         "--prompter-params", '{{"path": "{tmp}/boxes.csv", "space": "RAS"}}']


BASE = ["predict", "--model", "otsu_box", "--out", "{tmp}/out"]
CASES = [
    BadInput("several-series", [*BASE, "--input", "{tmp}/mixed"], _two_series, "--series UID", SOURCE),
    BadInput("no-geometry", [*BASE, "--input", "{tmp}/flat.nii.gz"], _no_spacing, "spacing", SOURCE),
    BadInput("out-not-empty", [*BASE, "--input", MR, "--labels", "1=femur"], _full_out, "--overwrite", SOURCE),
    BadInput("prompter-reads-reference", [*BASE, "--input", MR, "--prompter", "gt_box", "--labels", "1=femur"],
             None, "needs no reference", SOURCE),
    BadInput("model-cannot-take-none", [*BASE, "--input", MR, "--labels", "1=femur"], None,
             "cannot take prompter 'none'", SOURCE),
    BadInput("seg-for-nifti", [*BASE, "--input", MR, "--format", "dicom-seg", "--labels", "1=femur"], None,
             "not a DICOM series", SOURCE),
    BadInput("bad-json", [*BASE, "--input", MR, "--model-params", "{{polarity: dark}}"], None, "not valid JSON", SOURCE),
    BadInput("no-labels", [*BASE, "--input", MR], None, "--labels", SOURCE),
    BadInput("detector-other-labels", [*BASE, "--input", MR, "--detector", "{tmp}/mr-yolov8n-v1.pt", "--labels",
                                       "1=femur"], _detector, "no class for label 1 (femur)", SOURCE),
    BadInput("box-file-missing", [*BASE, *BOXES], None, "box file not found", SOURCE),
    BadInput("box-unknown-label", [*BASE, *BOXES], _boxes("example_mr_sm,tibia,0,0,0,10,10,10"),
             "boxes.csv: line 2: label 'tibia' is not a label", SOURCE),
    BadInput("box-outside-image", [*BASE, *BOXES], _boxes("example_mr_sm,femur,9000,9000,9000,9010,9010,9010"),
             "boxes.csv: line 2: the box of subject 'example_mr_sm' label 'femur' holds no voxel", SOURCE),
    BadInput("box-bad-number", [*BASE, *BOXES], _boxes("example_mr_sm,femur,0,0,1e,10,10,10"),
             "boxes.csv: line 2: z1 = '1e' is not a number", SOURCE),
]


def _listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} \
        if folder.exists() else {}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, template_db):
    if case.setup is _full_out:
        _full_out(tmp_path)
        case = BadInput(case.id, case.args, None, case.expect, case.env)
    before = _listing(tmp_path / "out")
    check(case, tmp_path, template_db)
    assert _listing(tmp_path / "out") == before, "a refused predict must leave --out as it was"

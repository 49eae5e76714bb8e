"""`mskbench biomarkers compute` on files, including the real TotalSegmentator mask."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mskbench.cli.main import main

REAL_MASK = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "example_seg_mr.nii.gz"


def run_json(capsys, *args):
    rc = main(["biomarkers", "compute", *args, "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return json.loads(captured.out)


def fail(capsys, *args):
    rc = main(["biomarkers", "compute", *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def save(path, array):
    nib.save(nib.Nifti1Image(array, np.diag([0.5, 0.5, 2.0, 1.0])), str(path))
    return str(path)


@pytest.fixture
def knee_files(tmp_path):
    labels = np.zeros((20, 24, 6), np.uint8)
    labels[2:8, 4:20] = 1  # 6 x 16 x 6 = 576 voxels of 0.5 mm3
    labels[10:14, 4:20] = 2
    t2 = np.full(labels.shape, 45.0, np.float32)
    t2[10:14, 4:8] = np.nan
    t2[10:14, 8:12] = -5.0
    return save(tmp_path / "mask.nii.gz", labels), save(tmp_path / "t2.nii.gz", t2)


def test_real_mask_disc_height_one_value_per_connected_disc(capsys):
    from scipy import ndimage

    rows = run_json(capsys, "--mask", str(REAL_MASK), "--biomarker", "disc_height", "--labels", "20")
    data = np.asarray(nib.load(str(REAL_MASK)).dataobj)
    _, components = ndimage.label(data == 20, structure=np.ones((3, 3, 3)))
    assert [row["instance"] for row in rows] == list(range(1, components + 1))
    assert all(row["structure"] == "label_20" and row["unit"] == "mm" for row in rows)
    assert all(3.0 <= row["value"] <= 20.0 for row in rows), rows


def test_real_mask_muscle_volumes_are_positive_and_finite(capsys):
    rows = run_json(capsys, "--mask", str(REAL_MASK), "--biomarker", "tissue_volume", "--labels", "46,47,48,49")
    values = {row["structure"]: row["value"] for row in rows}
    data = np.asarray(nib.load(str(REAL_MASK)).dataobj)
    assert values["label_48"] == pytest.approx((data == 48).sum() * 27 / 1000)
    assert all(v is not None and 0 < v < 1e4 for v in values.values())
    assert values["total"] == pytest.approx(sum(values[f"label_{i}"] for i in (46, 47, 48, 49)))


def test_relaxometry_from_files_excludes_nan_and_negative_voxels(capsys, knee_files):
    mask, t2 = knee_files
    rows = run_json(capsys, "--mask", mask, "--map", t2, "--biomarker", "t2")
    assert {(r["structure"], r["biomarker"], r["value"], r["unit"]) for r in rows} == {
        ("label_1", "t2", 45.0, "ms"), ("label_2", "t2", 45.0, "ms"), ("overall", "t2", 45.0, "ms")}


def test_requested_label_absent_from_mask_is_null_not_zero(capsys, knee_files):
    mask, _ = knee_files
    rows = run_json(capsys, "--mask", mask, "--biomarker", "tissue_volume", "--labels", "1,9")
    values = {row["structure"]: row["value"] for row in rows}
    assert values == {"label_1": pytest.approx(576 * 0.5 / 1000), "label_9": None, "total": pytest.approx(0.288)}


def test_thickness_from_files_uses_header_spacing_and_the_slice_axis(capsys, knee_files):
    mask, _ = knee_files
    # Label 2 is 4 voxels (2 mm) thick along axis 0; axial slices (axis 2) cut across it.
    rows = run_json(capsys, "--mask", mask, "--biomarker", "cartilage_thickness", "--labels", "2",
                    "--slice-axis", "axial")
    assert abs(rows[0]["value"] - 2.0) <= 0.5


def test_thickness_method_from_files(capsys, tmp_path):
    # A plate 2 mm thick whose normal is 40 degrees out of the axial slices (axis 2) on 0.5 x 0.5 x 1 mm
    # voxels: each axial section is 2 / cos 40 = 2.61 mm wide, the plate itself 2 mm thick.
    z, y, x = np.meshgrid(*(np.arange(n) * s for n, s in ((40, 0.5), (40, 0.5), (20, 1.0))), indexing="ij")
    tilt = np.deg2rad(40.0)
    plate = np.abs((y - 10.13) * np.cos(tilt) + (x - 10.0) * np.sin(tilt)) <= 1.0
    path = tmp_path / "plate.nii.gz"
    nib.save(nib.Nifti1Image(plate.astype(np.uint8), np.diag([0.5, 0.5, 1.0, 1.0])), str(path))
    args = ("--mask", str(path), "--biomarker", "cartilage_thickness", "--slice-axis", "axial")
    [in_slices] = run_json(capsys, *args)
    [local] = run_json(capsys, *args, "--method", "local_3d")
    assert in_slices["method"] == "medial_axis_2d" and local["method"] == "local_3d"
    assert abs(in_slices["value"] - 2.0 / np.cos(tilt)) <= 0.5, in_slices  # the band runs along the rows
    assert abs(local["value"] - 2.0) <= 0.14, local


def test_table_output(capsys, knee_files):
    mask, _ = knee_files
    assert main(["biomarkers", "compute", "--mask", mask, "--biomarker", "tissue_volume", "--labels", "1,9"]) == 0
    out = capsys.readouterr().out
    assert "label_9" in out and "missing" in out and "cm3" in out


def test_map_on_another_grid(capsys, knee_files, tmp_path):
    mask, _ = knee_files
    other = save(tmp_path / "t2_small.nii.gz", np.full((10, 24, 6), 40.0, np.float32))
    assert "differs from the mask's (20, 24, 6)" in fail(capsys, "--mask", mask, "--map", other, "--biomarker", "t2")
    shifted = tmp_path / "t2_shifted.nii.gz"
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    affine[0, 3] = 10.0
    nib.save(nib.Nifti1Image(np.full((20, 24, 6), 40.0, np.float32), affine), str(shifted))
    assert "different grids" in fail(capsys, "--mask", mask, "--map", str(shifted), "--biomarker", "t2")


def test_bad_inputs_are_one_line_errors(capsys, knee_files, tmp_path):
    mask, t2 = knee_files
    assert "did you mean 'tissue_volume'" in fail(capsys, "--mask", mask, "--biomarker", "tissue_volum")
    assert "add --map FILE" in fail(capsys, "--mask", mask, "--biomarker", "t1rho")
    assert "--map is only used by" in fail(capsys, "--mask", mask, "--map", t2, "--biomarker", "tissue_volume")
    assert "--labels: 'a'" in fail(capsys, "--mask", mask, "--biomarker", "tissue_volume", "--labels", "1,a")
    assert "did you mean 'axial'" in fail(capsys, "--mask", mask, "--biomarker", "tissue_volume", "--slice-axis", "axal")
    assert "did you mean 'local_3d'" in fail(capsys, "--mask", mask, "--biomarker", "cartilage_thickness",
                                             "--method", "local3d")
    assert "--method is only used by cartilage_thickness" in fail(capsys, "--mask", mask, "--biomarker",
                                                                  "tissue_volume", "--method", "local_3d")
    assert "not found" in fail(capsys, "--mask", str(tmp_path / "nope.nii.gz"), "--biomarker", "tissue_volume")
    assert "non-integer values" in fail(capsys, "--mask", t2, "--biomarker", "tissue_volume")
    no_spacing = nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), None)
    no_spacing.header["pixdim"][1:4] = [0.0, 1.0, 1.0]
    no_spacing.header.set_qform(None, code=0)
    no_spacing.header.set_sform(None, code=0)
    nib.save(no_spacing, str(tmp_path / "flat.nii.gz"))
    assert "spacing" in fail(capsys, "--mask", str(tmp_path / "flat.nii.gz"), "--biomarker", "tissue_volume")


def test_console_script_end_to_end(knee_files):
    mask, _ = knee_files
    done = subprocess.run(["mskbench", "biomarkers", "compute", "--mask", mask, "--biomarker", "disc_height",
                           "--labels", "1", "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [row] = json.loads(done.stdout)
    assert set(row) >= {"structure", "biomarker", "value", "unit"} and row["instance"] == 1

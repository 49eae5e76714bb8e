"""`mskbench data` commands: info on real files and folders, list, phantom export, bad input."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from mskbench.cli.main import main

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"  # ../shared beside the repository


def test_info_real_nifti_json(capsys):
    assert main(["data", "info", str(REAL / "example_mr_sm.nii.gz"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["shape"] == [117, 91, 20]
    assert info["spacing_mm"] == [3.0, 3.0, 3.0]
    assert info["orientation"] == ["R", "A", "S"] and info["original_orientation"] == ["L", "P", "S"]
    assert info["dtype"] == "int16" and info["intensity_range"][1] > info["intensity_range"][0]


def test_info_real_segmentation_lists_label_values(capsys):
    assert main(["data", "info", str(REAL / "example_seg_mr.nii.gz"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert {19, 20, 21, 46, 47, 48, 49} <= set(info["label_values"])


def test_info_shuffled_dicom_folder(tmp_path, capsys):
    files = sorted((REAL / "example_ct_dicom").iterdir())
    random.Random(0).shuffle(files)
    for i, path in enumerate(files):
        shutil.copy(path, tmp_path / f"slice_{i}.dcm")
    assert main(["data", "info", str(tmp_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "dicom" and info["files"] == 20 and info["shape"] == [512, 512, 20]
    assert info["spacing_mm"] == [0.976562, 0.976562, 2.0] and info["orientation"] == ["R", "A", "S"]


def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys):
    assert main(["data", "info", get_testdata_file("MR_truncated.dcm")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "MR_truncated.dcm" in err and "\n" not in err
    (tmp_path / "empty").mkdir()
    assert main(["data", "info", str(tmp_path / "empty")]) == 2
    assert "no DICOM image files" in capsys.readouterr().err
    assert main(["data", "info", "no_such_dataset"]) == 2
    assert "unknown dataset 'no_such_dataset'" in capsys.readouterr().err


def test_list_shows_every_builtin_dataset(capsys):
    assert main(["data", "list", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    for name in ("phantom", "nifti_folder", "dicom", "spider", "totalseg_mr", "oaizib_cm", "skmtea"):
        assert name in rows and rows[name]["error"] is None, name
    assert "root" in rows["spider"]["params"] and "labels" in rows["totalseg_mr"]["params"]


def test_info_on_a_dataset_with_params(tmp_path, capsys):
    root = tmp_path / "ds"
    for folder in ("images", "labels"):
        (root / folder).mkdir(parents=True)
    shutil.copy(REAL / "example_mr_sm.nii.gz", root / "images" / "case1.nii.gz")
    shutil.copy(REAL / "example_seg_mr.nii.gz", root / "labels" / "case1.nii.gz")
    names = {"1": "spleen", "2": "kidney_right", "3": "kidney_left", "4": "gallbladder", "5": "liver", "6": "stomach",
             "7": "pancreas", "8": "adrenal_gland_right", "9": "adrenal_gland_left", "11": "lung_right", "13": "small_bowel",
             "14": "duodenum", "15": "colon", "19": "vertebrae", "20": "intervertebral_discs", "21": "spinal_cord",
             "23": "aorta", "24": "inferior_vena_cava", "25": "portal_vein_and_splenic_vein", "46": "autochthon_left",
             "47": "autochthon_right", "48": "iliopsoas_left", "49": "iliopsoas_right"}
    rc = main(["data", "info", "nifti_folder", "--json", "--param", f"root={root}", "--param", f"label_names={json.dumps(names)}"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["subjects"] == 1 and sum(info["splits"].values()) == 1
    assert {"id": 20, "name": "intervertebral_discs", "tissue": "disc"} in info["labels"]
    assert info["shapes"] == {"[117, 91, 20]": 1}


@pytest.mark.slow
def test_phantom_export_end_to_end(tmp_path):
    out = tmp_path / "knee"
    done = subprocess.run(["mskbench", "data", "phantom", "--anatomy", "knee", "--subjects", "2", "--seed", "0", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    images = sorted(out.rglob("*.nii.gz"))
    assert images, "the phantom export wrote no NIfTI files"
    info = subprocess.run(["mskbench", "data", "info", str(images[0]), "--json"], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and json.loads(info.stdout)["orientation"] == ["R", "A", "S"]


def _info_subprocess(path: Path) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "mskbench", "data", "info", str(path), "--json"],
                          capture_output=True, text=True, timeout=60)


def _strict_json(text: str):
    """json.loads that refuses the bare NaN/Infinity Python's json would otherwise accept."""
    def refuse(constant):
        raise AssertionError(f"bare {constant} in JSON output")
    return json.loads(text, parse_constant=refuse)


def test_info_json_on_nan_volume_is_valid_json_with_one_warning(tmp_path):
    import nibabel as nib
    import numpy as np

    array = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    array[0, 0, 0], array[1, 1, 1], array[2, 2, 2] = np.nan, np.inf, -np.inf
    nib.save(nib.Nifti1Image(array, np.eye(4)), tmp_path / "nan.nii.gz")
    done = _info_subprocess(tmp_path / "nan.nii.gz")
    assert done.returncode == 0, done.stderr
    info = _strict_json(done.stdout)
    assert info["intensity_range"] == [1.0, 59.0] and info["non_finite_voxels"] == 3
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "nan.nii.gz: 3 of 60 voxels are NaN or infinite" in warnings[0], done.stderr

    nib.save(nib.Nifti1Image(np.full((2, 2, 2), np.nan, np.float32), np.eye(4)), tmp_path / "all_nan.nii.gz")
    done = _info_subprocess(tmp_path / "all_nan.nii.gz")
    assert done.returncode == 0 and _strict_json(done.stdout)["intensity_range"] == [None, None]


def test_phantom_help_offers_only_the_built_anatomies():
    from typer.testing import CliRunner

    from mskbench.cli.data import app
    from mskbench.phantom.generate import ANATOMIES

    text = " ".join(CliRunner().invoke(app, ["phantom", "--help"], terminal_width=200).output.split())
    assert "shoulder" not in text
    assert all(anatomy in text for anatomy in ANATOMIES)


def test_json_output_writes_null_for_any_non_finite_number(capsys):
    import numpy as np

    from mskbench.cli.data import _echo_json

    _echo_json({"a": float("nan"), "b": [np.float32("inf"), 1.5, 2], "c": {"d": -np.inf}})
    assert _strict_json(capsys.readouterr().out) == {"a": None, "b": [None, 1.5, 2], "c": {"d": None}}

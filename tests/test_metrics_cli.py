"""`mskbench metrics compute`: file pairs, folders, DuckDB rows and bad input."""

from __future__ import annotations

import json
import math
import subprocess

import duckdb
import nibabel as nib
import numpy as np
import pytest

from mskbench.cli.main import main

SPACING = (0.5, 0.8, 2.0)


def save(path, array, spacing=SPACING):
    nib.save(nib.Nifti1Image(array, np.diag([*spacing, 1.0])), str(path))
    return path


@pytest.fixture
def pair(tmp_path):
    """Label 1: a box and the same box moved 2 voxels along axis 0; label 2 only in the reference."""
    reference = np.zeros((30, 24, 8), dtype=np.uint8)
    reference[5:15, 4:14, 2:6] = 1
    reference[20:25, 16:20, 3:5] = 2
    prediction = np.zeros_like(reference)
    prediction[7:17, 4:14, 2:6] = 1
    return save(tmp_path / "ref.nii.gz", reference), save(tmp_path / "pred.nii.gz", prediction)


def run_json(capsys, argv):
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    return json.loads(captured.out)


def run_error(capsys, argv) -> str:
    rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_pair_json_has_every_metric_per_label(capsys, pair):
    reference, prediction = pair
    out = run_json(capsys, ["metrics", "compute", "--reference", str(reference), "--prediction", str(prediction),
                            "--json", "--nsd-tolerance", "0.5"])
    assert out["spacing_mm"] == pytest.approx(SPACING) and out["nsd_tolerance_mm"] == 0.5
    box = out["labels"]["1"]
    assert set(box) == {"dice", "iou", "hd95", "hd", "assd", "masd", "nsd", "case_state", "substituted"}
    assert box["case_state"] == "hit" and box["substituted"] == []
    assert box["dice"] == pytest.approx(0.8) and box["iou"] == pytest.approx(8 / 12)
    assert box["hd"] == pytest.approx(2 * 0.5)
    missed = out["labels"]["2"]
    assert missed["case_state"] == "miss" and missed["dice"] == 0.0 and missed["nsd"] == 0.0
    diagonal = math.sqrt((30 * 0.5) ** 2 + (24 * 0.8) ** 2 + (8 * 2.0) ** 2)
    assert missed["hd95"] == pytest.approx(diagonal)
    assert missed["substituted"] == ["hd95", "hd", "assd", "masd"]


def test_labels_option_selects_and_absent_labels_are_both_empty(capsys, pair):
    reference, prediction = pair
    out = run_json(capsys, ["metrics", "compute", "--reference", str(reference), "--prediction", str(prediction),
                            "--labels", "1,7", "--json"])
    assert sorted(out["labels"]) == ["1", "7"]
    absent = out["labels"]["7"]
    assert absent["case_state"] == "both_empty"
    assert all(absent[name] is None for name in ("dice", "iou", "hd95", "hd", "assd", "masd", "nsd"))


def test_pair_text_output_marks_substituted_values(capsys, pair):
    reference, prediction = pair
    assert main(["metrics", "compute", "--reference", str(reference), "--prediction", str(prediction)]) == 0
    out = capsys.readouterr().out
    assert "miss" in out and "hit" in out and "*" in out


def test_folders_score_missing_predictions_as_misses_and_write_duckdb(capsys, tmp_path, pair):
    reference, prediction = pair
    refs, preds = tmp_path / "refs", tmp_path / "preds"
    refs.mkdir(), preds.mkdir()
    ref_array = np.asanyarray(nib.load(str(reference)).dataobj)
    save(refs / "knee_01.nii.gz", ref_array)
    save(refs / "knee_02.nii.gz", ref_array)
    save(preds / "knee_01.nii.gz", np.asanyarray(nib.load(str(prediction)).dataobj))
    save(preds / "stray.nii.gz", ref_array)
    db = tmp_path / "results.duckdb"
    argv = ["metrics", "compute", "--reference-dir", str(refs), "--prediction-dir", str(preds), "--db", str(db)]
    rc = main([*argv, "--json"])
    captured = capsys.readouterr()
    assert rc == 0
    assert "stray.nii.gz" in captured.err and "no reference" in captured.err
    out = json.loads(captured.out)
    cases = {case["case"]: case for case in out["cases"]}
    assert set(cases) == {"knee_01", "knee_02"}
    assert cases["knee_02"]["prediction_missing"] and cases["knee_02"]["prediction"] is None
    assert {v["case_state"] for v in cases["knee_02"]["labels"].values()} == {"miss"}
    summary = {(row["label"], row["metric"]): row for row in out["summary"]}
    assert summary[(1, "dice")]["n"] == 2 and summary[(1, "dice")]["mean"] == pytest.approx(0.4)
    assert summary[(1, "hd95")]["substituted"] == 1 and summary[(2, "hd95")]["substituted"] == 2

    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT case_id, label, case_state, value, substituted, prediction_missing, spacing "
        "FROM file_metrics WHERE metric = 'hd95' ORDER BY case_id, label"
    ).fetchall()
    con.close()
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("knee_01", 1, "hit"), ("knee_01", 2, "miss"), ("knee_02", 1, "miss"), ("knee_02", 2, "miss")]
    assert rows[0][3] == pytest.approx(1.0) and not rows[0][4] and rows[1][4] and rows[2][5]
    assert json.loads(rows[0][6]) == pytest.approx(SPACING)

    assert main(argv) == 0  # text mode appends a second batch
    capsys.readouterr()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(DISTINCT batch_id), count(*) FROM file_metrics").fetchone() == (2, 2 * 2 * 2 * 7)
    con.close()


def test_folder_labels_absent_from_a_pair_become_both_empty(capsys, tmp_path):
    refs, preds = tmp_path / "refs", tmp_path / "preds"
    refs.mkdir(), preds.mkdir()
    only_one = np.zeros((10, 10, 4), dtype=np.uint8)
    only_one[2:5, 2:5, 1:3] = 1
    only_two = np.where(only_one > 0, 2, 0).astype(np.uint8)
    for folder in (refs, preds):
        save(folder / "a.nii.gz", only_one)
        save(folder / "b.nii.gz", only_two)
    out = run_json(capsys, ["metrics", "compute", "--reference-dir", str(refs), "--prediction-dir", str(preds),
                            "--json"])
    cases = {case["case"]: case["labels"] for case in out["cases"]}
    assert cases["a"]["2"]["case_state"] == "both_empty" and cases["b"]["1"]["case_state"] == "both_empty"
    summary = {(row["label"], row["metric"]): row for row in out["summary"]}
    assert summary[(1, "dice")]["n"] == 1 and summary[(1, "dice")]["excluded"] == 1


def test_non_integer_label_file_is_rejected(capsys, tmp_path, pair):
    reference, _ = pair
    soft = np.zeros((30, 24, 8), dtype=np.float32)
    soft[5:10, 5:10, 2:4] = 0.5
    bad = save(tmp_path / "soft.nii.gz", soft)
    line = run_error(capsys, ["metrics", "compute", "--reference", str(reference), "--prediction", str(bad)])
    assert "integers" in line and "soft.nii.gz" in line


def test_integral_float_label_files_are_accepted(capsys, tmp_path, pair):
    reference, prediction = pair
    as_float = save(tmp_path / "float.nii.gz", np.asanyarray(nib.load(str(prediction)).dataobj).astype(np.float32))
    out = run_json(capsys, ["metrics", "compute", "--reference", str(reference), "--prediction", str(as_float),
                            "--json"])
    assert out["labels"]["1"]["dice"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("shape", "spacing"), [((30, 24, 9), SPACING), ((30, 24, 8), (0.5, 0.8, 2.5))], ids=["shape", "spacing"]
)
def test_prediction_on_another_grid_is_rejected(capsys, tmp_path, pair, shape, spacing):
    reference, _ = pair
    other = save(tmp_path / "other.nii.gz", np.zeros(shape, dtype=np.uint8), spacing)
    line = run_error(capsys, ["metrics", "compute", "--reference", str(reference), "--prediction", str(other)])
    assert "grid" in line and "resample" in line


def test_all_empty_inputs_without_labels_are_an_error(capsys, tmp_path):
    empty = save(tmp_path / "empty.nii.gz", np.zeros((6, 6, 3), dtype=np.uint8))
    line = run_error(capsys, ["metrics", "compute", "--reference", str(empty), "--prediction", str(empty)])
    assert "--labels" in line
    out = run_json(capsys, ["metrics", "compute", "--reference", str(empty), "--prediction", str(empty),
                            "--labels", "1", "--json"])
    assert out["labels"]["1"]["case_state"] == "both_empty"


def test_nan_spacing_is_rejected(capsys, tmp_path, pair):
    _, prediction = pair
    image = nib.Nifti1Image(np.zeros((30, 24, 8), dtype=np.uint8), None)  # no affine: pixdim is kept
    image.header.set_zooms((float("nan"), 0.8, 2.0))
    nib.save(image, str(tmp_path / "nan.nii.gz"))
    line = run_error(capsys, ["metrics", "compute", "--reference", str(tmp_path / "nan.nii.gz"),
                              "--prediction", str(prediction)])
    assert "spacing" in line and "nan.nii.gz" in line


@pytest.mark.parametrize(
    "extra",
    [
        ["--labels", "1,x"],
        ["--labels", "0"],
        ["--nsd-tolerance", "-1"],
        ["--reference-dir", "."],
    ],
    ids=["label-text", "label-zero", "negative-tau", "two-modes"],
)
def test_bad_options_are_one_line_errors(capsys, pair, extra):
    reference, prediction = pair
    run_error(capsys, ["metrics", "compute", "--reference", str(reference), "--prediction", str(prediction), *extra])


def test_missing_files_and_folders_are_one_line_errors(capsys, tmp_path, pair):
    reference, _ = pair
    run_error(capsys, ["metrics", "compute", "--reference", str(reference), "--prediction", str(tmp_path / "no.nii")])
    run_error(capsys, ["metrics", "compute", "--reference", str(reference)])
    run_error(capsys, ["metrics", "compute", "--reference-dir", str(tmp_path / "none"),
                       "--prediction-dir", str(tmp_path)])
    (tmp_path / "empty_dir").mkdir()
    run_error(capsys, ["metrics", "compute", "--reference-dir", str(tmp_path / "empty_dir"),
                       "--prediction-dir", str(tmp_path)])


def test_console_script_end_to_end(pair):
    reference, prediction = pair
    done = subprocess.run(["mskbench", "metrics", "compute", "--reference", str(reference), "--prediction",
                           str(prediction), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["labels"]["1"]["case_state"] == "hit"

"""suites/real_example.toml: the weight-free baselines on the real 3 mm MR volume (issue 19).

The volume and its TotalSegmentator mask are real files nobody on the project
wrote (../shared/data/real). With the default (physical) small-object rule,
every one of the six selected structures must still be in the reference
after preprocessing and every baseline must get a finite Dice for each; with
the source study's voxel rule four of them vanish, and the run must say so
(one warning line, `preprocessing` rows, `removed_by_preprocessing` metric
rows) instead of scoring them as empty.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import duckdb
import numpy as np
import pytest

from mskbench.cli.main import main

REPO = Path(__file__).resolve().parents[1]
SUITE = REPO / "suites" / "real_example.toml"
REAL = REPO.parent / "shared" / "data" / "real"
SIX = {19: "vertebrae", 20: "intervertebral_discs", 46: "autochthon_left", 47: "autochthon_right",
       48: "iliopsoas_left", 49: "iliopsoas_right"}
BASELINES = ("box_fill", "otsu_box", "grabcut_box")

pytestmark = pytest.mark.skipif(not (REAL / "example_seg_mr.nii.gz").is_file(), reason="../shared/data/real is absent")


def _rows(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _run(suite: Path, db: Path, monkeypatch, tmp_path: Path, caplog) -> list[str]:
    """Run from the repository root (the suite's data path is relative to it), no checkpoints present."""
    empty = tmp_path / "no_checkpoints"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(empty))
    monkeypatch.chdir(REPO)
    with caplog.at_level(logging.WARNING):
        assert main(["run", str(suite), "--db", str(db)]) == 0
    return [r.getMessage() for r in caplog.records if "small-object removal" in r.getMessage()]


def test_the_links_point_at_the_shared_real_data():
    for folder, name in (("images", "example_mr_sm.nii.gz"), ("labels", "example_seg_mr.nii.gz")):
        link = REPO / "suites" / "real_example" / folder / "example_mr.nii.gz"
        assert link.is_symlink() and link.resolve() == (REAL / name).resolve()


def test_every_structure_survives_and_every_baseline_scores_it(tmp_path, monkeypatch, caplog):
    db = tmp_path / "real.duckdb"
    warnings = _run(SUITE, db, monkeypatch, tmp_path, caplog)
    assert warnings == []
    rows = _rows(db, "SELECT label, label_name, voxels_before, voxels_after, outcome FROM preprocessing")
    assert {r[0]: r[1] for r in rows} == SIX
    import nibabel as nib

    raw = np.asarray(nib.load(REAL / "example_seg_mr.nii.gz").dataobj)
    for label, name, before, after, outcome in rows:
        assert before == int((raw == label).sum()), name  # the named labels arrive whole
        assert after > 0 and after >= 0.9 * before and outcome in ("kept", "reduced"), (name, before, after)
    dice = _rows(db, """
        SELECT c.model, m.label_name, m.case_state, m.value FROM subject_metrics m JOIN cells c USING (run_id, cell_id)
        WHERE m.metric = 'dice'""")
    for model in BASELINES:
        per_structure = {name: (state, value) for m, name, state, value in dice if m == model}
        assert set(per_structure) == set(SIX.values()), model
        for name, (state, value) in per_structure.items():
            assert state in ("hit", "miss") and math.isfinite(value) and 0.0 <= value <= 1.0, (model, name, state, value)
    box_fill = {name: value for m, name, _, value in dice if m == "box_fill"}
    assert min(box_fill.values()) > 0.2  # a filled ground-truth box overlaps every structure
    statuses = dict(_rows(db, "SELECT model, status FROM cells"))
    assert all(statuses[m] == "done" for m in BASELINES)
    assert all(statuses[m] == "skipped" for m in ("sam_vit_b", "medsam", "sam2.1_base_plus"))  # no checkpoints here


def test_the_source_voxel_rule_is_reported_not_hidden(tmp_path, monkeypatch, caplog):
    text = SUITE.read_text()
    marker = 'slice_axis = "axial"'
    assert marker in text
    suite = tmp_path / "voxel_rule.toml"
    suite.write_text(text.replace(marker, marker + "\npreprocess = { min_object_pixels = 100, min_object_voxels = 1000 }", 1))
    db = tmp_path / "voxel.duckdb"
    warnings = _run(suite, db, monkeypatch, tmp_path, caplog)
    assert len(warnings) == 1, warnings
    line = warnings[0]
    assert "\n" not in line and "real_mr" in line and "1 of 1 subject" in line
    assert "min_object_pixels / min_object_voxels" in line
    for name in ("vertebrae", "intervertebral_discs", "iliopsoas_left", "iliopsoas_right"):
        assert name in line
    removed = {r[0] for r in _rows(db, "SELECT label_name FROM preprocessing WHERE outcome = 'removed'")}
    assert removed == {"vertebrae", "intervertebral_discs", "iliopsoas_left", "iliopsoas_right"}
    for table in ("subject_metrics", "slice_metrics"):
        states = _rows(db, f"SELECT label_name, case_state, count(*), count(*) FILTER (NOT isnan(value)) FROM {table} GROUP BY ALL")
        for name, state, n, finite in states:
            if name in removed:
                assert state == "removed_by_preprocessing" and finite == 0, (table, name, state)
            else:
                assert state != "removed_by_preprocessing", (table, name)
        assert not any(state == "both_empty" for _, state, _, _ in states)
    # the analyses read the new state without breaking
    assert main(["stats", "--db", str(db)]) == 0
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "report.html")]) == 0


def test_warning_line_counts_subjects_and_names_the_setting():
    from mskbench.data.preprocess import PreprocessConfig
    from mskbench.runner import preprocessing_warning

    rows = [("s1", "femur", "reduced"), ("s1", "patella", "removed"), ("s3", "patella", "removed")]
    line = preprocessing_warning("knee", PreprocessConfig(), rows, total=5)
    assert "\n" not in line and "in 2 of 5 subjects" in line
    assert "vanished: patella in 2" in line and "lost > 10 %: femur in 1" in line
    assert "datasets.knee.preprocess.min_object_mm2 / min_object_mm3" in line
    mixed = preprocessing_warning("knee", PreprocessConfig(min_object_voxels=1000), rows[:1], total=1)
    assert "min_object_mm2 / min_object_voxels" in mixed and "in 1 of 1 subject " in mixed


def test_a_label_losing_more_than_ten_percent_is_warned_once(tmp_path, monkeypatch, caplog):
    """A 12-pixel in-plane threshold takes about a fifth of the left iliopsoas (and < 10 % of the rest): one line."""
    import nibabel as nib
    from scipy import ndimage

    raw = np.asarray(nib.load(REAL / "example_seg_mr.nii.gz").dataobj)
    sizes = []
    for k in range(raw.shape[2]):  # iliopsoas_left pieces per axial slice, 8-connected
        pieces, n = ndimage.label(raw[:, :, k] == 48, structure=np.ones((3, 3)))
        sizes.extend(np.bincount(pieces.ravel())[1:].tolist())
    expected_lost = sum(s for s in sizes if s < 12)
    assert 0.1 < expected_lost / sum(sizes) < 1.0  # the case this test is about: reduced, not removed
    text = SUITE.read_text().replace('slice_axis = "axial"', 'slice_axis = "axial"\npreprocess = { min_object_pixels = 12, min_object_voxels = 0 }', 1)
    suite = tmp_path / "twelve.toml"
    suite.write_text(text)
    db = tmp_path / "twelve.duckdb"
    warnings = _run(suite, db, monkeypatch, tmp_path, caplog)
    assert len(warnings) == 1 and "lost > 10 %: " in warnings[0] and "iliopsoas_left in 1" in warnings[0], warnings
    assert "vanished" not in warnings[0] and "intervertebral_discs" not in warnings[0]
    before, after, outcome = _rows(db, "SELECT voxels_before, voxels_after, outcome FROM preprocessing WHERE label = 48")[0]
    assert (before, before - after, outcome) == (sum(sizes), expected_lost, "reduced")

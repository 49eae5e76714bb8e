"""`mskbench report`: one self-contained HTML file, escaped, with every section; checked in headless Chromium."""

import re
from pathlib import Path

import duckdb
import numpy as np
import pytest

import mskbench.cli.analysis  # noqa: F401
from headless_chromium import browser_or_skip
from mskbench.cli.main import main
from mskbench.report.qc import QC_TABLE_SQL, decode, encode_qc_slice
from stats_fixtures import plant

EVIL = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def add_qc_slice(path):
    image = np.linspace(0, 1000, 64 * 64).reshape(64, 64)
    reference = np.zeros((64, 64), np.uint8)
    reference[12:31, 10:41] = 1
    prediction = np.zeros((64, 64), np.uint8)
    prediction[14:33, 12:43] = 1
    con = duckdb.connect(str(path))
    con.execute(QC_TABLE_SQL)
    cell = con.execute("SELECT run_id, cell_id FROM cells WHERE prompter = 'gt_box' LIMIT 1").fetchone()
    row = encode_qc_slice(image, reference, prediction)
    con.execute("INSERT INTO qc_slices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [*cell, "knee-000", 8, row["scale"], row["image"], row["reference"], row["prediction"]])
    con.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    db = plant(folder / "results.duckdb", datasets={"knee": 10, "hip": 8},
               models={"sam": 0.0, EVIL: -0.1}, prompters=("gt_box", "yolo_boxes"), detector_prompters=("yolo_boxes",))
    add_qc_slice(db)
    out = folder / "report.html"
    assert main(["report", "--db", str(db), "--out", str(out), "--n-boot", "200"]) == 0
    return out, out.read_text(encoding="utf-8")


def test_report_is_self_contained(report):
    _, text = report
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "@import" not in text
    sources = re.findall(r'<img [^>]*src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "default-src 'none'" in text  # the page itself forbids network loads


def test_report_escapes_user_strings(report):
    _, text = report
    assert text.count("<script>") == 1  # the inline table sorter only
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_report_has_every_section_with_real_content(report):
    _, text = report
    for anchor in ("runs", "summary", "comparison", "distributions", "agreement", "prompts", "acquisition", "qc"):
        assert f'<section id="{anchor}">' in text
    assert "Bland–Altman, knee / sam / gt_box" in text and "Regression, knee / sam / gt_box" in text
    assert "Mixed-effects estimates" in text
    assert "yolo_boxes (detector)" in text and "Detection quality" in text
    assert "knee / sam / gt_box: knee-000 slice 8" in text  # the QC overlay
    assert "&quot;python&quot;: &quot;3.11&quot;" in text  # the run manifest, pretty-printed and escaped


def test_qc_thumbnail_round_trip():
    image = np.random.default_rng(0).normal(100, 20, (600, 300))
    labels = np.zeros((600, 300), np.uint8)
    labels[100:200, 50:120] = 3
    row = encode_qc_slice(image, labels, labels)
    assert row["scale"] == pytest.approx(256 / 600)
    thumb = decode(row["reference"])
    assert thumb.shape == (256, 128) and set(np.unique(thumb)) == {0, 3}
    assert decode(row["image"]).dtype == np.uint8


def test_report_without_qc_table_says_so(tmp_path):
    db = plant(tmp_path / "r.duckdb", datasets={"knee": 8}, models={"a": 0.0, "b": -0.1})
    out = tmp_path / "r.html"
    assert main(["report", "--db", str(db), "--out", str(out), "--n-boot", "100"]) == 0
    assert "stores no QC thumbnails" in out.read_text()


def test_report_renders_in_chromium_without_console_errors(report):
    path, _ = report
    with browser_or_skip() as browser:
        browser.open(path)
        assert browser.evaluate("document.querySelectorAll('img').length") >= 10
        assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        browser.screenshot(ARTIFACTS / "report.png")
        assert browser.errors == []

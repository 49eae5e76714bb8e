"""`mskbench report`: headline first, self-contained, escaped; checked in headless Chromium; bad inputs render."""

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pytest
from scipy import stats

import mskbench.cli.analysis  # noqa: F401
from headless_chromium import browser_or_skip
from mskbench.cli.main import main
from mskbench.report.leaderboard import slug
from mskbench.report.qc import QC_TABLE_SQL, decode, encode_qc_slice
from stats_fixtures import plant
from test_stats_rounds import write_rounds_db

EVIL = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
SIZE_EFFECT = 0.2


def add_qc_slice(path):
    image = np.linspace(0, 1000, 64 * 96).reshape(64, 96)
    reference = np.zeros((64, 96), np.uint8)
    reference[12:31, 10:41] = 1
    prediction = np.zeros((64, 96), np.uint8)
    prediction[14:33, 12:43] = 1
    con = duckdb.connect(str(path))
    con.execute(QC_TABLE_SQL)
    cell = con.execute("SELECT run_id, cell_id FROM cells WHERE prompter = 'gt_box' AND dataset = 'knee' "
                       "AND model = 'sam'").fetchone()
    row = encode_qc_slice(image, reference, prediction)
    con.execute("INSERT INTO qc_slices VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [*cell, "knee-000", 8, row["scale"], row["image"], row["reference"], row["prediction"]])
    con.close()


def render(db, out, *extra, n_boot: int = 400) -> str:
    assert main(["report", "--db", str(db), "--out", str(out), "--n-boot", str(n_boot), *extra]) == 0
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """knee (24 subjects): sam best, medsam 0.05 worse, twin as good as sam; hip (8 subjects); an evil model."""
    folder = tmp_path_factory.mktemp("report")
    db = plant(folder / "results.duckdb", datasets={"knee": 24, "hip": 8},
               models={"sam": 0.0, "twin": 0.0, "medsam": -0.05, EVIL: -0.1}, prompters=("gt_box", "yolo_boxes"),
               detector_prompters=("yolo_boxes",), slice_size_effect=SIZE_EFFECT, biomarker_bias={"medsam": 0.3})
    add_qc_slice(db)
    out = folder / "report.html"
    return db, out, render(db, out, n_boot=2500)  # enough resamples to tell a 95 % from a 90 % interval


def table_rows(html: str) -> tuple[list[str], list[list[str]]]:
    """Header texts and the cell HTML of every body row of the first table in ``html``."""
    head = re.findall(r"<th[^>]*>(.*?)</th>", html.split("<tbody>")[0])
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return head, [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]


def headline_rows(text: str, dataset: str) -> dict[tuple[str, str], dict[str, str]]:
    """(model, prompter) -> {header: cell HTML} of the dataset's headline table."""
    head, rows = table_rows(text.split(f'id="headline-table-{slug(dataset)}"')[1])
    return {(cells[0], cells[1]): dict(zip(head, cells)) for cells in rows}


def test_report_is_self_contained(report):
    _, _, text = report
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<link" not in text and "@import" not in text
    sources = re.findall(r'<img [^>]*src="([^"]*)"', text)
    assert sources and all(re.match(r"data:image/(png|webp);base64,", s) for s in sources)
    assert any(s.startswith("data:image/webp;") for s in sources)  # the QC thumbnail (an MR slice) is WebP
    assert "default-src 'none'" in text  # the page itself forbids network loads


def test_report_escapes_user_strings(report):
    _, _, text = report
    assert text.count("<script>") == 1  # the inline scripts only
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "alert(1)</" not in text


def test_headline_comes_first_then_datasets_then_the_rest(report):
    _, _, text = report
    order = [text.index(f'id="{anchor}"') for anchor in (
        "headline", f"headline-{slug('hip')}", f"headline-{slug('knee')}", f"dataset-{slug('hip')}",
        f"dataset-{slug('knee')}", "acquisition", "comparison", "full", "runs", "settings")]
    assert order == sorted(order)
    knee = text.split(f'id="dataset-{slug("knee")}"')[1].split('id="acquisition"')[0]
    for anchor in ("structures", "size", "agreement", "prompts", "prompter-pairs", "qc"):
        assert f'id="{anchor}-{slug("knee")}"' in knee
    assert 'id="finetune"' not in text  # no model has a card
    assert "<details><summary>All " in text.split('id="full"')[1]  # the full table is collapsed
    assert "knee / sam / gt_box: knee-000 slice 8" in knee  # the QC thumbnail
    assert "&quot;python&quot;: &quot;3.11&quot;" in text  # the run manifest, pretty-printed and escaped


def subject_dice(db, dataset, model, prompter) -> np.ndarray:
    """Mean over labels per subject straight from the rows (SQL, not the report's reader)."""
    con = duckdb.connect(str(db), read_only=True)
    values = con.execute(
        """SELECT avg(m.value) FROM subject_metrics m JOIN cells c USING (run_id, cell_id)
           WHERE c.dataset = ? AND c.model = ? AND c.prompter = ? AND m.metric = 'dice'
           GROUP BY m.subject_id ORDER BY m.subject_id""", [dataset, model, prompter]).fetchall()
    con.close()
    return np.array([v[0] for v in values])


def number_and_ci(cell: str) -> tuple[float, float, float]:
    mean, low, high = re.findall(r"-?\d+\.\d+", cell)
    return float(mean), float(low), float(high)


def test_headline_mean_and_ci_match_the_normal_theory_interval(report):
    db, _, text = report
    rows = headline_rows(text, "knee")
    for model in ("sam", "medsam"):
        values = subject_dice(db, "knee", model, "gt_box")
        mean, low, high = number_and_ci(rows[(model, "gt_box")]["dice [95% CI]"])
        assert mean == pytest.approx(values.mean(), abs=5e-4)
        half = stats.norm.ppf(0.975) * values.std(ddof=0) / np.sqrt(len(values))  # the bootstrap's normal limit
        assert (high - low) / 2 == pytest.approx(half, rel=0.08)
        assert low < mean < high


def test_headline_marks_the_planted_loser_and_not_the_twin(report):
    _, _, text = report
    rows = headline_rows(text, "knee")
    markers = {model: cells["vs best"] for (model, prompter), cells in rows.items() if prompter == "gt_box"}
    assert "best" in markers["sam"] or "best" in markers["twin"]
    assert "▼" in markers["medsam"] and "▼" in markers["&lt;script&gt;alert(1)&lt;/script&gt;"]
    assert "≈" in markers["twin" if "best" in markers["sam"] else "sam"]  # same planted Dice: not different
    lead = text.split(f'id="headline-{slug("knee")}"')[1].split('class="lead">')[1].split("</p>")[0]
    assert lead.startswith("Best: ") and "significantly better than 2 of 3 other model(s) with" in lead
    bias = {model: float(cells["bias"]) for (model, prompter), cells in rows.items() if prompter == "gt_box"}
    assert bias["medsam"] == pytest.approx(0.3, abs=0.06) and abs(bias["sam"]) < 0.06  # planted biomarker bias


def test_dice_against_object_size_recovers_the_planted_effect(report):
    db, _, text = report
    _, rows = table_rows(text.split(f'id="size-{slug("knee")}"')[1])
    means = {(cells[0], cells[1], cells[2]): float(cells[3]) for cells in rows}
    subject = subject_dice(db, "knee", "sam", "gt_box").mean()
    fixed, tertile = "size bin (% of slice area)", "size tertile per label"
    assert means[(fixed, "sam / gt_box", "medium")] == pytest.approx(subject, abs=1e-3)
    assert means[(fixed, "sam / gt_box", "small")] == pytest.approx(subject - SIZE_EFFECT, abs=1e-3)
    assert means[(tertile, "sam / gt_box", "T1")] == pytest.approx(subject - SIZE_EFFECT / 2, abs=1e-3)
    assert means[(tertile, "sam / gt_box", "T2")] == pytest.approx(subject, abs=1e-3)
    assert means[(tertile, "sam / gt_box", "T3")] == pytest.approx(subject, abs=1e-3)


def test_qc_thumbnail_round_trip():
    image = np.random.default_rng(0).normal(100, 20, (600, 300))
    labels = np.zeros((600, 300), np.uint8)
    labels[100:200, 50:120] = 3
    row = encode_qc_slice(image, labels, labels)
    assert row["scale"] == pytest.approx(256 / 600)
    thumb = decode(row["reference"])
    assert thumb.shape == (256, 128) and set(np.unique(thumb)) == {0, 3}
    assert decode(row["image"]).dtype == np.uint8


def visible(browser, selector: str, height: int = 800) -> bool:
    box = json.loads(browser.evaluate(f"JSON.stringify(document.querySelector('{selector}').getBoundingClientRect())"))
    return box["width"] > 0 and 0 <= box["top"] and box["bottom"] <= height and box["right"] <= 1280


def type_filter(browser, text: str) -> None:
    browser.evaluate("(() => { const f = document.querySelector('[data-filter-for=\"full-table\"]'); "
                     f"f.value = {json.dumps(text)}; f.dispatchEvent(new Event('input')); }})()")


def test_report_in_chromium_headline_in_first_screen_filter_and_thumbnails(report):
    _, path, _ = report
    first = slug("hip")
    with browser_or_skip() as browser:
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        browser.open(path)
        assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert visible(browser, f"#headline-figure-{first} img")
        assert visible(browser, f"#headline-table-{first}")
        browser.screenshot(ARTIFACTS / "report.png")
        rows = "document.querySelectorAll('#full-table tbody tr:not([hidden])').length"
        total = browser.evaluate(rows)
        browser.evaluate("document.querySelector('#full details').open = true")
        assert browser.evaluate("document.querySelector('[data-count-for=\"full-table\"]').textContent") == \
            f"{total} of {total} rows"
        type_filter(browser, "KNEE femoral_cartilage dice gt_box")
        assert browser.evaluate(rows) == 4  # four models
        assert browser.evaluate("Array.from(document.querySelectorAll('#full-table tbody tr:not([hidden])'))"
                                ".every(r => r.cells[0].textContent === 'knee' && r.cells[3].textContent === 'dice')")
        type_filter(browser, "")
        assert browser.evaluate(rows) == total
        width = "document.querySelector('figure.qc img').getBoundingClientRect().width"
        small = browser.evaluate(width)
        browser.evaluate("document.querySelector('figure.qc').click()")
        assert browser.evaluate(width) > 1.5 * small
        assert browser.errors == []


def test_report_with_one_model_says_no_comparison(tmp_path):
    db = plant(tmp_path / "r.duckdb", datasets={"knee": 8}, models={"solo": 0.0}, prompters=("gt_box", "jitter"))
    text = render(db, tmp_path / "r.html")
    assert "No comparison: solo is the only model on knee." in text
    assert "stores no QC thumbnails" not in text and 'id="qc-' not in text  # no QC table: the section is left out
    assert all("no comparison" in cells["vs best"] for cells in headline_rows(text, "knee").values())


def test_report_with_nan_only_metrics_renders(tmp_path):
    subjects = [f"knee-{i:03d}" for i in range(8)]
    db = plant(tmp_path / "r.duckdb", datasets={"knee": 8}, models={"a": 0.0, "b": -0.1},
               nan_subjects={"a": subjects, "b": subjects})
    text = render(db, tmp_path / "r.html")
    assert "No finite subject dice on knee: every value is undefined (excluded)" in text
    rows = headline_rows(text, "knee")
    assert all("no finite values" in cells["vs best"] for cells in rows.values())
    assert all(cells["n (excl., subst.)"] == "0 (8, 0)" for cells in rows.values())  # every subject excluded
    assert 'id="headline-figure-' in text


def test_report_with_interactive_and_one_shot_cells(tmp_path):
    db = write_rounds_db(tmp_path / "rounds.duckdb")
    text = render(db, tmp_path / "r.html")
    knee = text.split(f'id="dataset-{slug("knee")}"')[1]
    assert f'id="interaction-{slug("knee")}"' in knee and "knee / clicks: Dice vs round" in knee
    rows = headline_rows(text, "knee")
    assert set(rows) == {("a", "box"), ("b", "box"), ("a", "clicks"), ("b", "clicks")}  # one-shot and interactive
    first = render(db, tmp_path / "r0.html", "--round", "0")
    assert "round 0 of each cell (--round 0)" in first


def test_report_unknown_metric_is_one_line(tmp_path, capsys):
    db = plant(tmp_path / "r.duckdb", datasets={"knee": 6}, models={"a": 0.0})
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "r.html"), "--metric", "dcie"]) == 2
    err = capsys.readouterr().err
    assert "--metric dcie: not in the database (did you mean 'dice'?)" in err and "Traceback" not in err


def test_headline_on_a_lower_is_better_metric(tmp_path):
    db = plant(tmp_path / "r.duckdb", datasets={"knee": 8}, models={"good": 0.0, "bad": -0.1})
    text = render(db, tmp_path / "r.html", "--metric", "hd95")
    rows = headline_rows(text, "knee")
    assert "best" in rows[("good", "gt_box")]["vs best"] and "▼" in rows[("bad", "gt_box")]["vs best"]
    assert "Best: good with gt_box: mean subject hd95" in text and "subject hd95 (lower is better" in text

"""The report's sections for prompter pairs, size tests, GP regression and fine-tuning effects: known answers."""

import re

import duckdb
import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

import mskbench.cli.analysis  # noqa: F401
from mskbench.cli.main import main
from mskbench.report.leaderboard import slug
from stats_fixtures import plant
from test_report_html import render, subject_dice, table_rows

FINETUNE_GAIN = 0.1
JITTER_LOSS = 0.05
PROMPTERS = ("gt_box", "jitter", "twin_box")


def give_cards(db, cards: dict[str, tuple[str, float, str, int]]) -> None:
    """Set the model-card columns of a model's cells: (trains, max shift px, mix JSON, training subjects)."""
    con = duckdb.connect(str(db))
    for model, (trains, shift, mix, n_subjects) in cards.items():
        con.execute("UPDATE cells SET finetune_trains = ?, finetune_max_shift = ?, finetune_mix = ?, "
                    "finetune_train_subjects = ? WHERE model = ?", [trains, shift, mix, n_subjects, model])
    con.close()


def skew_biomarker(db, model: str) -> None:
    """Two outlying predictions of the model: Shapiro–Wilk rejects normal differences, so the GP applies."""
    con = duckdb.connect(str(db))
    con.execute("""UPDATE biomarkers SET value = value + 2.0 WHERE source = 'prediction'
                   AND subject_id IN ('knee-000', 'knee-001')
                   AND cell_id IN (SELECT cell_id FROM cells WHERE model = ?)""", [model])
    con.close()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """knee and hip (16 subjects each): ft is base + 0.1 (fine-tuned decoder), other = base (no card); jitter
    costs 0.05 Dice, twin_box none; medsam's thickness has two outliers on knee."""
    folder = tmp_path_factory.mktemp("analyses")
    db = plant(folder / "r.duckdb", datasets={"knee": 16, "hip": 16}, base=0.7,
               models={"base": 0.0, "ft": FINETUNE_GAIN, "other": 0.0}, prompters=PROMPTERS,
               prompter_offsets={"jitter": -JITTER_LOSS}, slice_size_effect=0.2)
    give_cards(db, {"ft": ("decoder", 0.0, '{"knee": 1.0, "hip": 1.0}', 20)})
    skew_biomarker(db, "other")
    return db, render(db, folder / "r.html")


def section(text: str, anchor: str) -> str:
    return text.split(f'id="{anchor}"')[1].split("</section>")[0]


def rows_by(html: str, *keys: str) -> dict[tuple[str, ...], dict[str, str]]:
    """{key columns: {header: cell HTML}} of the first table in ``html``."""
    head = re.findall(r'<th scope="col">(.*?)</th>', html.split("<tbody>")[0])
    _, rows = table_rows(html)
    out = {}
    for cells in rows:
        row = dict(zip(head, cells))
        out[tuple(row[k] for k in keys)] = row
    return out


def test_finetune_table_shows_the_planted_gain_with_its_sign(planted):
    _, text = planted
    block = section(text, "finetune")
    status = rows_by(block, "prompter")
    assert {p: r["status"] for p, r in status.items()} == {(p,): "computed" for p in PROMPTERS}
    assert "mixedlm" in status[("gt_box",)]["model_kind"]
    estimates = rows_by(block.split("<h3>Estimates</h3>")[1], "prompter", "term")
    for prompter in PROMPTERS:
        estimate, low, high = map(float, re.findall(r"-?\d+\.\d+", estimates[(prompter, "trains_decoder")]
                                                    ["estimate [95% CI]"]))
        assert estimate == pytest.approx(FINETUNE_GAIN, abs=0.015) and low < FINETUNE_GAIN < high
        assert float(estimates[(prompter, "trains_decoder")]["p"]) < 1e-3
    removed = rows_by(block.split("<h3>Covariates left out</h3>")[1], "prompter", "covariate")
    assert ("gt_box", "train_subjects") in removed  # 20 for ft only: collinear with trains_decoder


def test_finetune_section_absent_without_cards(tmp_path):
    db = plant(tmp_path / "r.duckdb", datasets={"knee": 8}, models={"a": 0.0, "b": -0.1})
    text = render(db, tmp_path / "r.html")
    assert 'id="finetune"' not in text and "Fine-tuning effects" not in text
    assert 'id="prompter-pairs-' not in text  # one prompter: no prompter pairs either
    assert 'id="gp-' not in text  # no group where Bland–Altman rejected normality


def test_prompter_pairs_match_wilcoxon_and_bh_of_the_subject_values(planted):
    db, text = planted
    block = section(text, f"prompter-pairs-{slug('knee')}")
    rows = rows_by(block, "model", "structure", "prompter_a", "prompter_b")
    whole = {key[2:]: row for key, row in rows.items() if key[:2] == ("base", "mean over labels")}
    assert set(whole) == {("gt_box", "jitter"), ("gt_box", "twin_box"), ("jitter", "twin_box")}
    values = {p: subject_dice(db, "knee", "base", p) for p in PROMPTERS}
    raw = [stats.wilcoxon(values[a], values[b]).pvalue for a, b in whole]
    adjusted = multipletests(raw, method="fdr_bh")[1]
    for (pair, row), p, q in zip(whole.items(), raw, adjusted):
        assert float(row["p"]) == pytest.approx(p, rel=2e-3, abs=1e-6)
        assert float(row["p (BH)"]) == pytest.approx(q, rel=2e-3, abs=1e-6)
        a, b = pair
        assert float(row["mean diff (a − b)"]) == pytest.approx((values[a] - values[b]).mean(), abs=1e-4)
    loss = whole[("gt_box", "jitter")]
    assert "yes" in loss["significant"] and loss["better"] == "gt_box"
    assert float(loss["mean diff (a − b)"]) == pytest.approx(JITTER_LOSS, abs=0.01)
    assert "no" == whole[("gt_box", "twin_box")]["significant"]


def test_size_tests_are_shown_beside_the_size_figure(planted):
    db, text = planted
    block = section(text, f"size-{slug('knee')}").split("Kruskal–Wallis across bins</h4>")[1]
    rows = rows_by(block, "model", "prompter", "binning")
    row = rows[("base", "gt_box", "samri")]
    assert row["status"] == "computed" and row["n_bins"] == "3"
    con = duckdb.connect(str(db), read_only=True)
    by_bin = con.execute(
        """SELECT s.size_bin, list(s.value ORDER BY s.subject_id, s.label_name, s.slice_index)
           FROM slice_metrics s JOIN cells c USING (run_id, cell_id)
           WHERE c.dataset = 'knee' AND c.model = 'base' AND c.prompter = 'gt_box' GROUP BY 1""").fetchall()
    con.close()
    expected = stats.kruskal(*[np.array(v) for _, v in by_bin])
    assert float(row["H"]) == pytest.approx(expected.statistic, rel=1e-3)
    assert float(row["p"]) < 1e-6  # the planted 0.2 loss on small objects


def test_gp_section_shows_the_fit_where_normality_was_rejected(planted):
    _, text = planted
    block = section(text, f"gp-{slug('knee')}")
    rows = rows_by(block, "model", "prompter")
    assert set(rows) == {("other", p) for p in PROMPTERS}  # only the skewed model's groups
    for row in rows.values():
        assert row["status"] == "computed" and row["reason"].startswith("Shapiro–Wilk p = ")
        assert row["inside band"] == "87.5 %"  # 14 of 16 pairs: all but the two planted outliers
    assert block.count("<img") == 1 and "GP mean (line) and 95% prediction band" in block
    assert f'id="gp-{slug("hip")}"' not in text  # hip has no outliers


@pytest.mark.slow  # one stats run and four reports: about 50 s on a shared machine
def test_report_reads_the_stored_stats_tables_of_the_same_settings(planted, tmp_path):
    db, text = planted
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(db.read_bytes())
    assert main(["stats", "--db", str(copy), "--n-boot", "400"]) == 0
    stored = render(copy, tmp_path / "stored.html")
    strip = lambda page: re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "", page)  # noqa: E731
    assert strip(stored) == strip(text)  # same numbers from the tables as computed
    con = duckdb.connect(str(copy))
    con.execute("UPDATE stats_prompter_pairs SET p_adjusted = 0.987654 WHERE dataset = 'knee'")
    con.close()
    assert "0.988" in section(render(copy, tmp_path / "marked.html"), f"prompter-pairs-{slug('knee')}")
    other = render(copy, tmp_path / "other.html", "--seed", "1")  # other settings: computed afresh
    assert "0.988" not in section(other, f"prompter-pairs-{slug('knee')}")
    con = duckdb.connect(str(copy))  # a run started after the stats were stored: they are stale
    con.execute("INSERT INTO runs (run_id, started_at) VALUES ('later', now()::TIMESTAMP + INTERVAL 1 HOUR)")
    con.close()
    assert "0.988" not in section(render(copy, tmp_path / "stale.html"), f"prompter-pairs-{slug('knee')}")


def test_subject_value_slice_mean_reaches_the_headline(tmp_path):
    db = plant(tmp_path / "r.duckdb", datasets={"knee": 8}, models={"a": 0.0, "b": -0.1},
               slice_mean_offset={"a": 0.05})
    volume = render(db, tmp_path / "v.html")
    slices = render(db, tmp_path / "s.html", "--subject-value", "slice_mean")
    mean = lambda page: float(re.findall(r"-?\d+\.\d+", rows_by(  # noqa: E731
        page.split(f'id="headline-table-{slug("knee")}"')[1], "model")[("a",)]["dice [95% CI]"])[0])
    assert mean(slices) == pytest.approx(mean(volume) + 0.05, abs=1e-3)
    assert "subject value: the mean of its slice values (--subject-value slice_mean)" in slices
    assert "--subject-value" not in volume.split('id="headline"')[1].split("</p>")[0]


def test_report_unknown_subject_value_is_one_line(tmp_path, capsys):
    db = plant(tmp_path / "r.duckdb", datasets={"knee": 6}, models={"a": 0.0})
    code = main(["report", "--db", str(db), "--out", str(tmp_path / "r.html"), "--subject-value", "slice"])
    err = capsys.readouterr().err
    assert code == 2 and "--subject-value slice: unknown" in err and "Traceback" not in err


def test_new_sections_in_chromium_load_without_errors(planted, tmp_path):
    from headless_chromium import browser_or_skip

    _, text = planted
    path = tmp_path / "r.html"
    path.write_text(text, encoding="utf-8")
    with browser_or_skip() as browser:
        browser.open(path)
        assert browser.evaluate("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        for anchor in ("finetune", f"prompter-pairs-{slug('knee')}", f"gp-{slug('knee')}"):
            assert browser.evaluate(f"document.getElementById('{anchor}') !== null"), anchor
        assert browser.errors == []

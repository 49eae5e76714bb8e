"""`mskbench leaderboard`: static site, escaping, significance markers; sorting checked in headless Chromium."""

import json
import re
from pathlib import Path

import pytest

import mskbench.cli.analysis  # noqa: F401
from headless_chromium import browser_or_skip
from mskbench.cli.main import main
from mskbench.report.leaderboard import slug
from stats_fixtures import plant

EVIL = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("leaderboard")
    db = plant(folder / "results.duckdb", datasets={"knee": 16, EVIL: 10},
               models={"sam": 0.0, "medsam": -0.05, "twin": -0.05, EVIL: -0.15},
               prompters=("gt_box", "jitter"), run_id=f"run-{EVIL}", biomarker_bias={"medsam": 0.3})
    out = folder / "site"
    assert main(["leaderboard", "--db", str(db), "--out", str(out), "--n-boot", "300"]) == 0
    return out


def test_site_layout_and_manifest_pages(site):
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    run = slug(f"run-{EVIL}")
    assert pages == sorted(["index.html", f"{slug('knee')}.html", f"{slug(EVIL)}.html",
                            f"runs/{run}.html", f"runs/{run}.json"])
    manifest = json.loads((site / "runs" / f"{run}.json").read_text())
    assert manifest["run_id"] == f"run-{EVIL}" and manifest["manifest"]["packages"] == {"numpy": "2"}
    knee = (site / f"{slug('knee')}.html").read_text()
    assert f'href="runs/{run}.html"' in knee


def test_every_user_string_is_escaped(site):
    for page in site.rglob("*.html"):
        text = page.read_text()
        assert text.count("<script>") == 1, page  # only the inline sorter
        assert "alert(1)</" not in text
    index = (site / "index.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index


def board(site, prompter="gt_box"):
    text = (site / f"{slug('knee')}.html").read_text()
    table = text.split(f'id="board-{slug(prompter)}"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in rows], table


def test_board_ranks_marks_significance_and_shows_agreement(site):
    rows, table = board(site)
    models = [cells[1] for cells in rows]
    assert models[0] == "sam" and models[-1] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert set(models[1:3]) == {"medsam", "twin"}
    assert "leader" in rows[0][8] and all("▼ worse" in cells[8] for cells in rows[1:])
    intervals = {cells[1]: cells[6] for cells in rows}
    assert intervals["sam"] == "1–1"
    assert intervals["medsam"] == intervals["twin"] == "2–3"  # the twins are not reliably ordered
    assert "femoral_cartilage cartilage_thickness: ICC" in table
    bias = {cells[1]: float(cells[12]) for cells in rows}
    assert bias["medsam"] == pytest.approx(0.3, abs=0.08) and abs(bias["sam"]) < 0.08


def test_unknown_metric_is_a_usage_error(site, capsys, tmp_path):
    db = plant(tmp_path / "r.duckdb", datasets={"knee": 6}, models={"a": 0.0})
    assert main(["leaderboard", "--db", str(db), "--out", str(tmp_path / "s"), "--metric", "dcie"]) == 2
    assert "(did you mean 'dice'?)" in capsys.readouterr().err


def test_sorting_in_headless_chromium(site):
    column_text = ("Array.from(document.querySelector('#board-{p} tbody').rows)"
                   ".map(r => r.cells[{i}].textContent)")
    with browser_or_skip() as browser:
        browser.open(site / "index.html")
        assert browser.evaluate("document.querySelectorAll('#index tbody tr').length") == 4
        browser.open(site / f"{slug('knee')}.html")
        assert browser.evaluate("document.title") == "Leaderboard: knee"
        p = slug("gt_box")
        means = lambda: [float(v) for v in browser.evaluate(column_text.format(p=p, i=2))]  # noqa: E731
        before = means()
        assert before == sorted(before, reverse=True)  # best first as written
        browser.evaluate(f"document.querySelector('#board-{p} thead th:nth-child(3)').click()")
        after = means()
        assert after == sorted(before) and after != before
        browser.evaluate(f"document.querySelector('#board-{p} thead th:nth-child(3)').click()")
        assert means() == sorted(before, reverse=True)
        browser.evaluate(f"document.querySelector('#board-{p} thead th:nth-child(2)').click()")
        names = browser.evaluate(column_text.format(p=p, i=1))
        assert names == sorted(names, key=str) and "<script>alert(1)</script>" in names
        assert browser.evaluate("window.__xss === undefined && document.scripts.length === 1")
        shot = browser.screenshot(ARTIFACTS / "leaderboard.png")
        assert shot.stat().st_size > 10_000
        assert browser.errors == []

"""Issue 17 end to end on CPU: a grid of a random reduced SAM trains, its suite runs with the real plugins
(the card tells the ``sam`` plugin to build the reduced architecture), and stats and the gate read the cells."""

from __future__ import annotations

import json

import duckdb
import pytest

from mskbench.cli.main import main

RECIPE = """
[recipe]
name = "e2e"
seed = 0
device = "cpu"

[base]
plugin = "sam"
init = "random"
architecture = "reduced"

[train]
mode = "decoder"
epochs = 1
batch_size = 2

[prompt]
kind = "box"
max_shift = 0

[[datasets]]
name = "knee"
plugin = "phantom"
params = { anatomy = "knee", subjects = 6, seed = 3, pixel_spacing_min = 1.4, pixel_spacing_max = 1.6, supersample = 1 }
labels = ["patella"]
subjects = 2
slices_per_subject = 1
"""
GRID = """
recipe = "e2e.toml"

[grid]
"prompt.max_shift" = [20]

[evaluate]
metrics = ["dice"]
biomarkers = false
"""
RUNS = ("max-shift-20",)


@pytest.mark.slow
def test_tiny_grid_trains_runs_its_suite_and_feeds_stats_and_gate(tmp_path, capsys):
    (tmp_path / "e2e.toml").write_text(RECIPE)
    (tmp_path / "grid.toml").write_text(GRID)
    out = tmp_path / "out"
    assert main(["train", "--grid", str(tmp_path / "grid.toml"), "--out", str(out)]) == 0
    suite = (out / "suite.toml").read_text()
    for model in (*RUNS, "base"):  # every run and the untrained base, each from its folder in OUT
        assert f'name = "{model}"\nplugin = "sam"\ncheckpoint = "${{SUITE_DIR}}/{model}/model.pt"' in suite

    assert main(["run", str(out / "suite.toml")]) == 0, capsys.readouterr().err
    db = out / "results.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        cells = con.execute("SELECT model, status, finetune_trains, finetune_max_shift, finetune_shift_space "
                            "FROM cells ORDER BY model").fetchall()
        manifests = dict(con.execute("SELECT name, manifest FROM models").fetchall())
        scored = con.execute("SELECT DISTINCT model FROM subject_metrics ORDER BY 1").fetchall()
    assert cells == [("base", "done", None, None, None),  # the base: no fine-tuning covariates
                     ("max-shift-20", "done", "decoder", 20.0, "model_1024")]
    assert scored == [("base",), ("max-shift-20",)]
    base_sha = json.loads((out / RUNS[0] / "card.json").read_text())["base"]["checkpoint_sha256"]
    for run in RUNS:  # every run started from the weights the suite evaluates as the base
        assert json.loads((out / run / "card.json").read_text())["base"]["checkpoint_sha256"] == base_sha
    assert json.loads(manifests["base"])["checkpoint"] == str(out / "base" / "model.pt")

    assert main(["stats", "--db", str(db)]) == 0
    capsys.readouterr()
    code = main(["gate", "--db", str(db), "--baseline", "base", "--candidate", RUNS[0], "--margin", "0",
                 "--min-subjects", "3", "--json"])
    verdict = json.loads(capsys.readouterr().out)
    assert code == 1 and verdict["promote"] is False  # one test subject: too few to decide, so not promoted
    assert "1 paired subject(s), at least 3 needed" in json.dumps(verdict)

"""Issue 17 end to end on CPU: a grid of a random reduced SAM trains, its suite runs with the real plugins
(the card tells the ``sam`` plugin to build the reduced architecture), and stats and the gate read the cells."""

from __future__ import annotations

import json

import duckdb
import torch
import pytest

from card_fixtures import write_trained
from mskbench.cli.main import main
from mskbench.errors import CheckpointError
from mskbench.segmenters.architecture import reduced_sam
from mskbench.segmenters.sam import SamSegmenter
from sam_family_tiny import tiny_sam

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


def _blocks(segmenter) -> int:
    return len(segmenter.model.image_encoder.blocks)


def test_the_sam_plugin_builds_the_architecture_the_card_records(tmp_path, monkeypatch):
    from segment_anything import sam_model_registry

    monkeypatch.setitem(sam_model_registry, "vit_b", lambda checkpoint=None: tiny_sam(seed=0))  # 2 blocks
    write_trained(tmp_path / "reduced", reduced_sam(), train=["knee_000"], val=["knee_006"],
                  recipe={"base": {"plugin": "sam", "init": "random", "architecture": "reduced"}})
    loaded = SamSegmenter.from_checkpoint("vit_b", "fp32", "cpu", str(tmp_path / "reduced" / "model.pt"))
    assert _blocks(loaded) == 1 and loaded.weights.path == str(tmp_path / "reduced" / "model.pt")

    write_trained(tmp_path / "full", tiny_sam(seed=1), train=["knee_000"], val=["knee_006"],
                  recipe={"base": {"plugin": "sam", "architecture": "full"}})
    assert _blocks(SamSegmenter.from_checkpoint("vit_b", "fp32", "cpu", str(tmp_path / "full" / "model.pt"))) == 2
    (tmp_path / "full" / "card.json").unlink()  # no card: the registry model, as for official weights
    assert _blocks(SamSegmenter.from_checkpoint("vit_b", "fp32", "cpu", str(tmp_path / "full" / "model.pt"))) == 2


def test_a_card_naming_an_unknown_architecture_or_other_weights_is_one_error(tmp_path):
    card = write_trained(tmp_path / "odd", reduced_sam(), train=["knee_000"], val=["knee_006"],
                         recipe={"base": {"architecture": "huge"}})
    with pytest.raises(CheckpointError, match=r"card.json: recipe.base.architecture 'huge' is not one of full, reduced"):
        SamSegmenter.from_checkpoint("vit_b", "fp32", "cpu", str(card.parent / "model.pt"))
    write_trained(tmp_path / "swapped", reduced_sam(), train=["knee_000"], val=["knee_006"],
                  recipe={"base": {"architecture": "reduced"}})
    (tmp_path / "swapped" / "model.pt").write_bytes((tmp_path / "odd" / "model.pt").read_bytes() + b"x")
    with pytest.raises(CheckpointError, match=r"sha256 differs from the one in .*card.json"):
        SamSegmenter.from_checkpoint("vit_b", "fp32", "cpu", str(tmp_path / "swapped" / "model.pt"))


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
        manifest = json.loads(con.execute("SELECT manifest FROM runs").fetchone()[0])
        scored = con.execute("SELECT DISTINCT model FROM subject_metrics JOIN cells USING (cell_id) ORDER BY 1").fetchall()
    assert cells == [("base", "done", None, None, None),  # the base: no fine-tuning covariates
                     ("max-shift-20", "done", "decoder", 20.0, "model_1024")]
    assert scored == [("base",), ("max-shift-20",)]
    base_file = manifest["models"]["base"]
    assert base_file["checkpoint"] == str(out / "base" / "model.pt")
    for run in RUNS:  # the file evaluated as the base is the start every run recorded (sha256 of its state dict)
        assert json.loads((out / run / "card.json").read_text())["base"]["checkpoint_sha256"] == \
            base_file["checkpoint_sha256"] != manifest["models"][run]["checkpoint_sha256"]

    assert main(["stats", "--db", str(db)]) == 0
    capsys.readouterr()
    code = main(["gate", "--db", str(db), "--baseline", "base", "--candidate", RUNS[0], "--margin", "0",
                 "--min-subjects", "3", "--json"])
    verdict = json.loads(capsys.readouterr().out)
    assert code == 1 and verdict["promote"] is False  # one test subject: too few to decide, so not promoted
    assert "1 paired subject(s), at least 3 needed" in json.dumps(verdict)


def test_the_sam2_plugin_builds_the_reduced_sam2_its_card_records(tmp_path):
    from mskbench.segmenters.architecture import sam2_model
    from mskbench.segmenters.sam2_image import Sam2Segmenter
    from mskbench.segmenters.sam_catalog import sam2_config

    reduced = sam2_model(sam2_config("2.1", "base_plus"), "reduced")
    assert len(reduced.image_encoder.trunk.blocks) == 5 and reduced.sam_mask_decoder.transformer_dim == 256
    card = write_trained(tmp_path / "run", reduced, train=["knee_000"], val=["knee_006"],
                         recipe={"base": {"plugin": "sam2", "init": "random", "architecture": "reduced"}})
    loaded = Sam2Segmenter.from_checkpoint("2.1", "base_plus", "fp32", "cpu", str(card.parent / "model.pt"))
    assert len(loaded.model.image_encoder.trunk.blocks) == 5
    for name, value in reduced.state_dict().items():  # the file's weights, not a fresh initialisation
        assert torch.equal(loaded.model.state_dict()[name].cpu(), value), name

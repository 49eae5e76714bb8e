"""Leakage guard (issue 17, item 3): a suite refuses to score a fine-tuned model on its card's subjects."""

from __future__ import annotations

import json

import duckdb
import pytest

from card_fixtures import PHANTOM_KNEE, write_trained
from mskbench.cli.main import main
from sam_family_tiny import tiny_sam

TRAIN = ["knee_000", "knee_001", "knee_002", "knee_003", "knee_004", "knee_007"]
VAL = ["knee_006"]  # the phantom's val split; knee_005 is its only test subject


def toml_inline(table: dict) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in table.items()) + " }"


def suite_text(checkpoint, *, split="test", dataset="knee", extra_model="", params=PHANTOM_KNEE) -> str:
    return f"""
[suite]
name = "guarded"
device = "cpu"

[[datasets]]
name = "{dataset}"
plugin = "phantom"
params = {toml_inline(params)}
split = "{split}"
labels = ["femur", "tibia"]

[[models]]
name = "finetuned"
plugin = "sam"
checkpoint = "{checkpoint}"
on_missing_checkpoint = "error"
{extra_model}

[[models]]
name = "box_fill"
plugin = "box_fill"

[[prompters]]
name = "gt_box"
plugin = "gt_box"

[metrics]
names = ["dice"]

[biomarkers]
enabled = false
"""


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A tiny SAM 'trained' on the phantom knees' train and val splits, loadable as sam vit_b."""
    from segment_anything import sam_model_registry

    monkeypatch.setitem(sam_model_registry, "vit_b", lambda checkpoint=None: tiny_sam(seed=0))
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path / "checkpoints"))
    write_trained(tmp_path / "run", tiny_sam(seed=1), train=TRAIN, val=VAL)
    return tmp_path / "run" / "model.pt"


def validate(tmp_path, text: str, capsys) -> tuple[int, str]:
    suite = tmp_path / "suite.toml"
    suite.write_text(text)
    code = main(["validate", str(suite)])
    return code, capsys.readouterr().err.strip()


def test_overlapping_subjects_are_one_line_naming_dataset_subjects_count_and_fix(trained, tmp_path, capsys):
    code, err = validate(tmp_path, suite_text(trained, split="all"), capsys)
    assert code == 2 and "\n" not in err
    assert "models[0] (finetuned) on dataset 'knee' (split 'all'): 7 subject(s)" in err
    assert "knee_000, knee_001, knee_002, knee_003, knee_004, … (7 in all)" in err
    assert "evaluate on held-out subjects" in err and "allow_training_subjects = true" in err


def test_a_renamed_suite_dataset_with_the_same_data_is_still_refused(trained, tmp_path, capsys):
    code, err = validate(tmp_path, suite_text(trained, split="val", dataset="knees_renamed"), capsys)
    assert code == 2 and "dataset 'knees_renamed' (split 'val'): 1 subject(s)" in err and "knee_006" in err


def test_held_out_subjects_pass(trained, tmp_path, capsys):
    code, _ = validate(tmp_path, suite_text(trained, split="test"), capsys)
    assert code == 0
    # another phantom cohort under another name is other data: its knee_000 is not the card's knee_000
    other = {**PHANTOM_KNEE, "seed": 11}
    code, _ = validate(tmp_path, suite_text(trained, split="all", dataset="other", params=other), capsys)
    assert code == 0


def test_a_damaged_card_is_one_line_exit_2_even_when_missing_checkpoints_are_skipped(trained, tmp_path, capsys):
    card = trained.parent / "card.json"
    card.write_text(card.read_text()[:-20])
    text = suite_text(trained).replace('on_missing_checkpoint = "error"', 'on_missing_checkpoint = "skip"')
    code, err = validate(tmp_path, text, capsys)
    assert code == 2 and "\n" not in err
    assert "models[0] (finetuned)" in err and "model card is not valid JSON" in err


def test_allow_training_subjects_runs_and_is_recorded_with_the_card_on_the_cells(trained, tmp_path, capsys):
    suite = tmp_path / "suite.toml"
    suite.write_text(suite_text(trained, split="val", extra_model="allow_training_subjects = true"))
    db = tmp_path / "r.duckdb"
    assert main(["run", str(suite), "--db", str(db)]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("""SELECT model, allow_training_subjects, finetune_base, finetune_trains, finetune_prompt,
                                     finetune_max_shift, finetune_shift_space, finetune_subjects,
                                     finetune_train_subjects, finetune_mix FROM cells ORDER BY model""").fetchall()
        scored = con.execute("SELECT DISTINCT subject_id FROM subject_metrics").fetchall()
    assert scored == [("knee_006",)]
    assert rows[0] == ("box_fill", False, None, None, None, None, None, None, None, None)
    model, allowed, base, trains, prompt, shift, space, subjects, n_train, mix = rows[1]
    assert (model, allowed, base, trains, prompt, shift, space) == ("finetuned", True, "sam", "decoder", "box", 20.0,
                                                                     "original")
    assert json.loads(subjects) == {"knee": 6} and n_train == 6 and json.loads(mix) == {"knee": 1.0}


def test_cells_of_an_older_database_read_allow_training_subjects_as_false(tmp_path):
    from mskbench.store import Store

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE cells (run_id VARCHAR, cell_id VARCHAR, model VARCHAR)")
        con.execute("INSERT INTO cells VALUES ('r', 'knee:m:p:0', 'm')")
    Store.open_for_writing(db).close()
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT allow_training_subjects, finetune_trains FROM cells").fetchall() == [(False, None)]

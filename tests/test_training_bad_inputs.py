"""Bad recipes and options of `mskbench train`: one line on stderr, exit code 2, nothing trained or written."""

from __future__ import annotations

import re

import pytest

from mskbench.cli.main import main
from training_fixtures import recipe_config, write_recipe


def run_train(tmp_path, capsys, config, *options) -> str:
    out = tmp_path / "out"
    code = main(["train", write_recipe(tmp_path / "r.toml", config), "--out", str(out), *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, (code, err)
    assert not (out / "model.pt").exists() and not (out / "resume.pt").exists()
    return err[0]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"base": {"init": "checkpoint", "checkpoint": "/no/such/sam_finetune.pth"}},
         r"checkpoint /no/such/sam_finetune.pth \(given for 'sam_vit_b'\) does not exist"),
        ({"base": {"init": "checkpoint"}}, r"checkpoint sam_vit_b_01ec64.pth for 'sam_vit_b' not found in"),
        ({"dataset": {"subjects": 50}}, r"datasets\[0\] \(knee\)\.subjects: 50 is more than the 7 subjects of its "
                                        r"'train' split; choose at most 7"),
        ({"dataset": {"train_split": "test"}}, r"subjects: 2 is more than the 1 subjects of its 'test' split"),
        ({"dataset": {"params": {"anatomy": "knee", "subjects": 2, "seed": 3}, "train_split": "test", "subjects": "all"}},
         r"no training subjects"),
        ({"train": {"loss": "dice+bc"}}, r"train\.loss: 'dice\+bc' is not one of .*\(did you mean 'dice\+bce'\?\)"),
        ({"train": {"epoch": 3}}, r"train\.epoch: unknown key \(did you mean 'epochs'\?\)"),
        ({"train": {"precision": "bf16"}}, r"train\.precision = \"bf16\" is CUDA-only .* on cpu"),
        ({"train": {"mode": "adapter"}}, r"train\.mode: 'adapter' is not one of .*did you mean 'adapters'"),
        ({"dataset": {"subjects": "al"}}, r"datasets\[0\]\.subjects: 'al' is not valid: training subjects"),
        ({"prompt": {"max_shift": -5}}, r"prompt\.max_shift: -5.0 is below the minimum 0"),
        ({"base": {"plugin": "sam3"}}, r"base\.plugin: 'sam3' is not one of .*did you mean 'sam'"),
    ],
)
def test_a_bad_recipe_is_one_line_and_exit_2_before_training(tmp_path, capsys, monkeypatch, tables, message):
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path / "checkpoints"))
    line = run_train(tmp_path, capsys, recipe_config(**tables))
    assert re.search(message, line), line


def test_an_unwritable_out_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["train", write_recipe(tmp_path / "r.toml", recipe_config()), "--out", str(blocker / "sub")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--out" in err[0], err


def test_an_out_with_a_finished_run_needs_another_folder(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "card.json").write_text("{}")
    code = main(["train", write_recipe(tmp_path / "r.toml", recipe_config()), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "already holds card.json" in err[0], err
    code = main(["train", str(tmp_path / "r.toml"), "--out", str(tmp_path / "out"), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "complete" in err[0], err


def test_a_missing_recipe_file_is_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.toml")]) == 2
    assert "recipe file not found" in capsys.readouterr().err


def test_a_hostile_resume_state_runs_no_code(tmp_path, capsys, monkeypatch):
    """`--resume` reads OUT/resume.pt with weights_only=True: a pickle that runs code is one line, and no code runs."""
    from segment_anything import sam_model_registry

    from code_pickles import armed, pickle_bytes
    from sam_family_tiny import tiny_sam

    monkeypatch.setitem(sam_model_registry, "vit_b", lambda checkpoint=None: tiny_sam(seed=0))
    marker = tmp_path / "marker"
    out = tmp_path / "out"
    out.mkdir()
    (out / "resume.pt").write_bytes(pickle_bytes(marker, "torch-zip"))
    assert armed(marker, "torch-zip")  # the payload does fire under a plain unpickler (armed removes the marker)
    code = main(["train", write_recipe(tmp_path / "r.toml", recipe_config()), "--out", str(out), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "resume.pt: cannot be read as a training state" in err[0], err
    assert not marker.exists()

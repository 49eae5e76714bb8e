"""Suite parsing: schema errors name the key path and the nearest valid key."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from mskbench.cli.main import main
from mskbench.errors import SuiteError
from mskbench.suite import load_suite

MINIMAL = """
[suite]
name = "t"
seed = 3

[[datasets]]
plugin = "phantom"
params = { anatomy = "knee", subjects = 2 }

[[models]]
plugin = "box_fill"

[[prompters]]
plugin = "gt_box"
"""


def write(tmp_path: Path, text: str, name: str = "suite.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_minimal_suite_defaults(tmp_path):
    suite = load_suite(write(tmp_path, MINIMAL))
    assert suite.name == "t"
    assert suite.seeds == (3,)
    assert suite.datasets[0].name == "phantom"
    assert suite.datasets[0].split == "test"
    assert suite.models[0].on_missing_checkpoint == "skip"
    assert suite.biomarkers is None and suite.biomarkers_enabled


def test_unknown_key_names_path_and_suggestion(tmp_path):
    text = MINIMAL.replace('plugin = "box_fill"', 'plugin = "box_fill"\non_mising_checkpoint = "skip"')
    with pytest.raises(SuiteError, match=r"models\[0\]\.on_mising_checkpoint: unknown key \(did you mean 'on_missing_checkpoint'\?\)"):
        load_suite(write(tmp_path, text))


def test_toml_syntax_error_reports_line(tmp_path):
    with pytest.raises(SuiteError, match=r"TOML syntax error.*line 3"):
        load_suite(write(tmp_path, "[suite]\nname = 't'\nseed = = 1\n"))


def test_missing_file(tmp_path):
    with pytest.raises(SuiteError, match="suite file not found"):
        load_suite(tmp_path / "nope.toml")


def test_env_interpolation_and_missing_variable(tmp_path, monkeypatch):
    text = MINIMAL.replace('plugin = "box_fill"', 'plugin = "box_fill"\ncheckpoint = "${CKPT_DIR}/x.pth"')
    monkeypatch.setenv("CKPT_DIR", "/weights")
    assert load_suite(write(tmp_path, text)).models[0].checkpoint == "/weights/x.pth"
    monkeypatch.delenv("CKPT_DIR")
    with pytest.raises(SuiteError, match=r"models\[0\]\.checkpoint: environment variable \$\{CKPT_DIR\} is not set"):
        load_suite(write(tmp_path, text))


def test_include_merges_tables_and_replaces_arrays(tmp_path):
    write(tmp_path, MINIMAL, "base.toml")
    child = write(tmp_path, """
        include = "base.toml"
        [suite]
        seed = 7
        [[prompters]]
        name = "j"
        plugin = "jitter_box"
    """, "child.toml")
    suite = load_suite(child)
    assert suite.name == "t"  # kept from base
    assert suite.seeds == (7,)  # overridden
    assert [p.name for p in suite.prompters] == ["j"]  # array replaced whole
    assert suite.hash != load_suite(tmp_path / "base.toml").hash


def test_include_cycle(tmp_path):
    write(tmp_path, 'include = "b.toml"\n', "a.toml")
    write(tmp_path, 'include = "a.toml"\n', "b.toml")
    with pytest.raises(SuiteError, match="include cycle"):
        load_suite(tmp_path / "a.toml")


def test_duplicate_names(tmp_path):
    text = MINIMAL + '\n[[models]]\nplugin = "box_fill"\n'
    with pytest.raises(SuiteError, match="name 'box_fill' is used twice"):
        load_suite(write(tmp_path, text))


def test_validate_cli_exit_codes(tmp_path, capsys):
    good = write(tmp_path, MINIMAL)
    assert main(["validate", str(good)]) == 0
    bad = write(tmp_path, MINIMAL.replace('plugin = "gt_box"', 'plugin = "gt_bx"'), "bad.toml")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "unknown prompter 'gt_bx' (did you mean 'gt_box'?)" in err[0]


def test_bad_plugin_param_is_reported_before_work(tmp_path, capsys):
    text = MINIMAL.replace('params = { anatomy = "knee", subjects = 2 }', 'params = { anatomy = "knee", subjectz = 2 }')
    assert main(["validate", str(write(tmp_path, text))]) == 2
    assert "datasets[0].params.subjectz: unknown parameter (did you mean 'subjects'?)" in capsys.readouterr().err


def test_incompatible_prompter_is_a_plan_error(tmp_path, capsys):
    text = MINIMAL.replace('plugin = "gt_box"', 'plugin = "points"')
    assert main(["validate", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert "cannot take prompter 'points'" in err and "point" in err


def test_only_supported_leaves_incompatible_pairs_out(tmp_path):
    from mskbench.plan import build_plan
    from mskbench.plugin_manager import get_registry

    text = MINIMAL + '\n[[prompters]]\nplugin = "points"\nonly_supported = true\n'
    plan = build_plan(load_suite(write(tmp_path, text)), get_registry())
    assert [c.prompter for c in plan.cells] == ["gt_box"]


def test_shipped_suites_validate(repo):
    for suite in ("zero_shot.toml", "smoke.toml"):
        assert main(["validate", str(repo / "suites" / suite)]) == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[suite]", "[suite]\nseeds = [1, 1]"), "repeats a seed"),
        (("[suite]", "[suite]\nseeds = [3000000000]"), "from 0 to 2147483647"),
        (('plugin = "box_fill"', 'plugin = "box_fill"\nprompters = [1]'), r"models\[0\]\.prompters: expected a list of names"),
        (('plugin = "box_fill"', 'plugin = "box_fill"\nname = "a:b"'), "must not contain ':'"),
        (('[[models]]', '[metrics]\nnames = []\n\n[[models]]'), "metrics.names: empty"),
    ],
)
def test_value_errors_name_the_key(tmp_path, edit, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, MINIMAL.replace(*edit, 1)))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('labels = ["femurr"]', r"datasets\.phantom: .*femurr"),
        ("preprocess = { clip_percentiles = [99, 1] }", r"datasets\.phantom\.preprocess: clip_percentiles"),
        ("preprocess = { clip_percentiles = 5 }", "expected two numbers"),
    ],
)
def test_dataset_selection_and_preprocessing_fail_validation(tmp_path, capsys, extra, message):
    text = MINIMAL.replace('params = { anatomy = "knee", subjects = 2 }', 'params = { anatomy = "knee", subjects = 2 }\n' + extra)
    assert main(["validate", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err


def test_usage_errors_are_one_block_and_exit_2(capsys):
    assert main(["run", "--no-such-option", "x.toml"]) == 2
    assert "No such option" in capsys.readouterr().err

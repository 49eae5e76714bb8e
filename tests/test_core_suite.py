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


def test_suite_dir_is_the_folder_of_the_suite_named(tmp_path, monkeypatch):
    text = MINIMAL.replace('plugin = "box_fill"', 'plugin = "box_fill"\ncheckpoint = "${SUITE_DIR}/w.pth"')
    (tmp_path / "suites").mkdir()
    monkeypatch.chdir(tmp_path)
    assert load_suite(write(tmp_path / "suites", text)).models[0].checkpoint == f"{tmp_path / 'suites'}/w.pth"


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


def test_a_model_runs_only_on_its_datasets(tmp_path):
    """A model restricted by `datasets` has no cells, and no label check, on the other datasets."""
    from mskbench.plan import build_plan
    from mskbench.plugin_manager import get_registry

    text = (MINIMAL.replace('plugin = "phantom"', 'name = "knee"\nplugin = "phantom"')
            + '\n[[datasets]]\nname = "hip"\nplugin = "phantom"\nparams = { anatomy = "hip", subjects = 2 }\n'
            + '\n[[models]]\nname = "knee_only"\nplugin = "box_fill"\ndatasets = ["knee"]\n')
    plan = build_plan(load_suite(write(tmp_path, text)), get_registry())
    assert sorted((c.dataset, c.model) for c in plan.cells) == [
        ("hip", "box_fill"), ("knee", "box_fill"), ("knee", "knee_only")]


def test_predict_refuses_a_dataset_outside_the_models_list(tmp_path, capsys):
    text = (MINIMAL.replace('plugin = "phantom"', 'name = "knee"\nplugin = "phantom"')
            + '\n[[datasets]]\nname = "hip"\nplugin = "phantom"\nparams = { anatomy = "hip", subjects = 2 }\n'
            + '\n[[models]]\nname = "knee_only"\nplugin = "otsu_box"\ndatasets = ["knee"]\n'
            + '\n[[prompters]]\nplugin = "none"\nonly_supported = true\n')
    import nibabel as nib
    import numpy as np

    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(tmp_path / "in.nii.gz"))
    args = ["predict", "--suite", str(write(tmp_path, text)), "--model", "knee_only", "--dataset", "hip",
            "--input", str(tmp_path / "in.nii.gz"), "--out", str(tmp_path / "out")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model 'knee_only' runs only on knee (its `datasets` list)" in err[0], err


def test_shipped_suites_validate(repo):
    for suite in ("zero_shot.toml", "smoke.toml"):
        assert main(["validate", str(repo / "suites" / suite)]) == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("[suite]", "[suite]\nseeds = [1, 1]"), "repeats a seed"),
        (("[suite]", "[suite]\nseeds = [3000000000]"), r"suite\.seeds\[0\]: 3000000000 is above the maximum 2147483647"),
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


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[output]\ndb = 5", r"^output\.db: expected a path \(a non-empty string\), got 5"),
        ('[output]\nembedding_cache_max_gb = "abc"', r"^output\.embedding_cache_max_gb: expected a finite number, got 'abc'"),
        ("[output]\nembedding_cache_max_gb = -1", r"^output\.embedding_cache_max_gb: -1\.0 is below the minimum"),
        ("[output]\nembedding_cache_max_gb = nan", r"^output\.embedding_cache_max_gb: expected a finite number, got nan"),
        ('[output]\nskip_bad_subjects = "false"', r"^output\.skip_bad_subjects: expected true or false, got 'false'; write false without quotes"),
        ('[output]\ndbb = "x.duckdb"', r"^output\.dbb: unknown key \(did you mean 'db'\?\)"),
        ('[metrics]\nparams = { surface = 2 }', r"^metrics\.params\.surface: expected a table"),
        ('[biomarkers]\nenabled = "no"', r"^biomarkers\.enabled: expected true or false"),
        ('[suite]\nseed = "1"', r"^suite\.seed: expected a whole number, got '1'; write the number without quotes"),
        ('[suite]\nseed = -1', r"^suite\.seed: -1 is below the minimum 0"),
        ('[suite]\ndevice = "gpu"', r"^suite\.device: 'gpu' is not valid: auto, cpu, cuda or cuda:N"),
    ],
)
def test_every_suite_key_is_checked_by_type_and_range(tmp_path, extra, message):
    # Appended tables go after the entries; a [suite] table replaces MINIMAL's.
    text = MINIMAL.replace('[suite]\nname = "t"\nseed = 3\n', "") + "\n" + extra + "\n" if extra.startswith("[suite]") \
        else MINIMAL + "\n" + extra + "\n"
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, text))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('plugin = "box_fill"', 'plugin = "box_fill"\nbatch_size = 0'), r"models\[0\]\.batch_size: 0 is below the minimum 1"),
        (('plugin = "box_fill"', 'plugin = "box_fill"\non_missing_checkpoint = "eror"'), r"'eror' is not one of 'skip', 'error' \(did you mean 'error'\?\)"),
        (('plugin = "box_fill"', 'plugin = "box_fill"\ncheckpoint = 3'), r"models\[0\]\.checkpoint: expected a path"),
        (('plugin = "gt_box"', 'plugin = "gt_box"\nonly_supported = 1'), r"prompters\[0\]\.only_supported: expected true or false"),
        (('plugin = "phantom"', 'plugin = "phantom"\nsplit = "tets"'), r"datasets\[0\]\.split: 'tets' is not one of .*\(did you mean 'test'\?\)"),
        (('plugin = "phantom"', 'plugin = "phantom"\nlimit_subjects = 0'), r"datasets\[0\]\.limit_subjects: 0 is below the minimum 1"),
        (('plugin = "phantom"', 'plugin = "phantom"\nmerge = { bone = "femur" }'), r"datasets\[0\]\.merge\.bone: expected a list of names"),
        (('params = { anatomy = "knee", subjects = 2 }', 'params = 4'), r"datasets\[0\]\.params: expected a table"),
        (('[suite]', 'output = 3\n[suite]'), r"^output: expected a table"),
        (('[[models]]', '[[models]]\nplugin = 7\n[[models]]'), r"models\[0\]\.plugin: expected a string, got 7"),
        (('[[prompters]]\nplugin = "gt_box"', '[[prompters]]\nname = "g"'), r"prompters\[0\]\.plugin: required key is missing"),
    ],
)
def test_entry_keys_are_checked_by_type_and_range(tmp_path, edit, message):
    with pytest.raises(SuiteError, match=message):
        load_suite(write(tmp_path, MINIMAL.replace(*edit, 1)))


def test_output_defaults_are_filled_in(tmp_path):
    suite = load_suite(write(tmp_path, MINIMAL + '\n[output]\nembedding_cache_max_gb = 1\n'))
    assert suite.output == {"db": "results/mskbench.duckdb", "embedding_cache": None,
                            "embedding_cache_max_gb": 1.0, "skip_bad_subjects": False}
    assert isinstance(suite.output["embedding_cache_max_gb"], float)


def test_a_directory_is_not_a_suite(tmp_path, capsys):
    (tmp_path / "folder").mkdir()
    with pytest.raises(SuiteError, match="folder: is a directory, not a suite file; name the .toml file"):
        load_suite(tmp_path / "folder")
    child = write(tmp_path, 'include = "folder"\n' + MINIMAL, "child.toml")
    with pytest.raises(SuiteError, match=r"is a directory, not a suite file \(included from .*child\.toml\)"):
        load_suite(child)
    assert main(["validate", str(tmp_path / "folder")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL.replace('plugin = "box_fill"', 'plugin = "box_fill"\nprompters = []'), r"models\[0\]\.prompters: empty"),
        (MINIMAL.replace('plugin = "gt_box"', 'plugin = "points"\nonly_supported = true'),
         r"models\[0\] \(box_fill\): no cell left for this model"),
        (MINIMAL + '\n[[models]]\nname = "b"\nplugin = "box_fill"\nprompters = ["pts"]\n'
                   '\n[[prompters]]\nname = "pts"\nplugin = "points"\nonly_supported = true\n',
         r"models\[1\] \(b\): no cell left for this model"),
    ],
)
def test_an_empty_plan_is_a_plan_error(tmp_path, capsys, text, message):
    assert main(["validate", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0]), err


def test_resume_refuses_a_changed_subject_selection(tmp_path, capsys):
    import duckdb

    suite = write(tmp_path, MINIMAL.replace('[suite]\nname = "t"', '[suite]\nname = "t"\ndevice = "cpu"')
                  .replace('plugin = "phantom"', 'plugin = "phantom"\nsplit = "all"'))
    db = tmp_path / "r.duckdb"
    assert main(["run", str(suite), "--db", str(db), "--limit-subjects", "1"]) == 0
    with duckdb.connect(str(db)) as con:  # as if the run had been killed
        (manifest,) = con.execute("UPDATE runs SET status = 'running' RETURNING manifest").fetchone()
    import json

    recorded = json.loads(manifest)["subject_selection"]
    assert recorded["limit_subjects"] == 1 and len(recorded["subjects"]["phantom"]) == 1
    capsys.readouterr()
    for extra, says in ((["--limit-subjects", "2"], "with --limit-subjects 1, this command has --limit-subjects 2"),
                        ([], "with --limit-subjects 1, this command has no --limit-subjects")):
        assert main(["run", str(suite), "--db", str(db), "--resume", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and says in err[0] and "resume with --limit-subjects 1" in err[0], err
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), min(status) FROM runs").fetchone() == (1, "running")
    # The same selection resumes and finishes the one run.
    assert main(["run", str(suite), "--db", str(db), "--resume", "--limit-subjects", "1"]) == 0
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*), min(status) FROM runs").fetchone() == (1, "finished")


def test_a_resume_compares_the_subjects_not_the_option():
    from mskbench.runner import _selection_change

    then = {"limit_subjects": 2, "subjects": {"knee": ["a", "b"]}}
    assert _selection_change("r", then, {"limit_subjects": None, "subjects": {"knee": ["b", "a"]}}) is None
    grown = _selection_change("r", then, {"limit_subjects": None, "subjects": {"knee": ["a", "b", "c"]}})
    assert "started with --limit-subjects 2, this command has no --limit-subjects" in grown
    assert "dataset 'knee': 1 subject(s) added, 0 dropped" in grown
    changed = _selection_change("r", then, {"limit_subjects": 2, "subjects": {"knee": ["a", "c"]}})
    assert "the subjects changed since run r was started (dataset 'knee': 1 subject(s) added, 1 dropped)" in changed

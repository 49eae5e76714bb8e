"""Bad suites, plans and run options through the real CLI (issue 11).

Most cases go through `mskbench validate` (the suite is read and planned,
nothing else); the ones about run options, an empty split and `--resume` go
through `mskbench run --db {db}`, so they also prove that a refused run leaves
the existing results database untouched. Each case must end in one error
line, exit code 2 and no traceback (``harness.check``).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from harness import BadInput, check, run_cli

SUITE = """
[suite]
name = "bad"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = { anatomy = "knee", subjects = 2, seed = 0 }
split = "all"

[[models]]
name = "box_fill"
plugin = "box_fill"

[[prompters]]
name = "gt_box"
plugin = "gt_box"
"""


def suite(text: str = SUITE, name: str = "suite.toml"):
    """A setup writing ``text`` to the case folder."""

    def setup(tmp: Path) -> None:
        (tmp / name).write_text(text)

    return setup


def edit(*pairs: tuple[str, str]):
    """The working suite with each (old, new) replaced once."""
    text = SUITE
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return suite(text)


def appended(extra: str):
    return suite(SUITE + "\n" + extra + "\n")


def _directory(tmp: Path) -> None:
    (tmp / "suites").mkdir()


def _include_directory(tmp: Path) -> None:
    (tmp / "shared_parts").mkdir()
    (tmp / "suite.toml").write_text('include = "shared_parts"\n' + SUITE)


def _include_cycle(tmp: Path) -> None:
    (tmp / "a.toml").write_text('include = "b.toml"\n' + SUITE)
    (tmp / "b.toml").write_text('include = "a.toml"\n')


def _interrupted_run(tmp: Path) -> None:
    """A real, quick run of the first of 2 phantom subjects, then marked unfinished as if it had been killed."""
    (tmp / "suite.toml").write_text(SUITE)
    done = run_cli(["run", "suite.toml", "--db", "run.duckdb", "--limit-subjects", "1"], tmp)
    assert done.returncode == 0, done.stderr
    with duckdb.connect(str(tmp / "run.duckdb")) as con:
        con.execute("UPDATE runs SET status = 'running'")


VALIDATE = ["validate", "{tmp}/suite.toml"]
RUN = ["run", "{tmp}/suite.toml", "--db", "{db}"]

CASES = [
    # -- files ---------------------------------------------------------------------------------------------
    BadInput("missing-suite", ["validate", "{tmp}/nope.toml"], None, "suite file not found"),
    BadInput("suite-is-a-directory", ["validate", "{tmp}/suites"], _directory, "is a directory, not a suite file"),
    BadInput("run-suite-is-a-directory", ["run", "{tmp}/suites", "--db", "{db}"], _directory, "is a directory"),
    BadInput("include-is-a-directory", VALIDATE, _include_directory, "shared_parts: is a directory, not a suite file (included from"),
    BadInput("include-cycle", ["validate", "{tmp}/a.toml"], _include_cycle, "include cycle"),
    BadInput("include-missing", VALIDATE, suite('include = "base.toml"\n' + SUITE), "suite file not found (included from"),
    BadInput("toml-syntax-error", VALIDATE, suite(SUITE.replace('name = "bad"', 'name = = "bad"')), "TOML syntax error"),
    BadInput("not-utf8", VALIDATE, lambda tmp: (tmp / "suite.toml").write_bytes(b"\xff\xfe[suite]\n"), "not a UTF-8 text file"),
    # -- keys ----------------------------------------------------------------------------------------------
    BadInput("unknown-top-level-key", VALIDATE, suite("colour = 1\n" + SUITE), "colour: unknown key; valid keys:"),
    BadInput("unknown-key-did-you-mean", VALIDATE, edit(('plugin = "box_fill"', 'plugin = "box_fill"\nbatch_sise = 2')),
             "models[0].batch_sise: unknown key (did you mean 'batch_size'?)"),
    BadInput("unknown-table-did-you-mean", VALIDATE, appended("[ouput]\ndb = 'x.duckdb'"), "ouput: unknown key (did you mean 'output'?)"),
    BadInput("unknown-output-key", VALIDATE, appended("[output]\ndatabase = 'x.duckdb'"), "output.database: unknown key"),
    BadInput("biomarker-rounds-value", VALIDATE, appended("[biomarkers]\nrounds = 'every'"),
             "biomarkers.rounds: 'every' is not one of 'final', 'all'"),
    BadInput("required-plugin-missing", VALIDATE, edit(('plugin = "gt_box"', 'only_supported = false')),
             "prompters[0].plugin: required key is missing"),
    # -- [output] values -----------------------------------------------------------------------------------
    BadInput("output-db-number", VALIDATE, appended("[output]\ndb = 5"), "output.db: expected a path"),
    BadInput("run-output-db-number", RUN, appended("[output]\ndb = 5"), "output.db: expected a path"),
    BadInput("cache-size-text", VALIDATE, appended('[output]\nembedding_cache = "cache"\nembedding_cache_max_gb = "abc"'),
             "output.embedding_cache_max_gb: expected a finite number, got 'abc'"),
    BadInput("cache-size-negative", VALIDATE, appended("[output]\nembedding_cache_max_gb = -1"),
             "output.embedding_cache_max_gb: -1.0 is below the minimum"),
    BadInput("run-cache-size-negative", RUN, appended('[output]\nembedding_cache = "c"\nembedding_cache_max_gb = -1'),
             "output.embedding_cache_max_gb: -1.0 is below the minimum"),
    BadInput("cache-size-nan", VALIDATE, appended("[output]\nembedding_cache_max_gb = nan"), "expected a finite number, got nan"),
    BadInput("skip-bad-subjects-quoted", VALIDATE, appended('[output]\nskip_bad_subjects = "false"'),
             "output.skip_bad_subjects: expected true or false, got 'false'; write false without quotes"),
    # -- other values --------------------------------------------------------------------------------------
    BadInput("seed-negative", VALIDATE, edit(('name = "bad"', 'name = "bad"\nseed = -1')), "suite.seed: -1 is below the minimum 0"),
    BadInput("seed-text", VALIDATE, edit(('name = "bad"', 'name = "bad"\nseed = "7"')), "write the number without quotes"),
    BadInput("seeds-repeated", VALIDATE, edit(('name = "bad"', 'name = "bad"\nseeds = [1, 1]')), "suite.seeds: [1, 1] repeats a seed"),
    BadInput("device-unknown-in-suite", VALIDATE, edit(('device = "cpu"', 'device = "gpu"')), "suite.device: 'gpu' is not valid"),
    BadInput("split-typo", VALIDATE, edit(('split = "all"', 'split = "tset"')), "datasets[0].split: 'tset' is not one of"),
    BadInput("batch-size-zero", VALIDATE, edit(('plugin = "box_fill"', 'plugin = "box_fill"\nbatch_size = 0')),
             "models[0].batch_size: 0 is below the minimum 1"),
    BadInput("name-with-colon", VALIDATE, edit(('name = "box_fill"', 'name = "box:fill"')), "must not contain ':'"),
    BadInput("duplicate-names", VALIDATE, suite(SUITE + '\n[[models]]\nname = "box_fill"\nplugin = "otsu_box"\n'),
             "models: name 'box_fill' is used twice"),
    BadInput("undefined-env", VALIDATE, edit(('plugin = "box_fill"', 'plugin = "box_fill"\ncheckpoint = "${MSKBENCH_NO_SUCH_VAR}/w.pth"')),
             "models[0].checkpoint: environment variable ${MSKBENCH_NO_SUCH_VAR} is not set"),
    BadInput("model-unknown-dataset", VALIDATE, edit(('plugin = "box_fill"', 'plugin = "box_fill"\ndatasets = ["kne"]')),
             "models[0].datasets: unknown dataset 'kne' (did you mean 'knee'?)"),
    BadInput("postprocess-even-kernel", VALIDATE, edit(('plugin = "box_fill"', 'plugin = "box_fill"\npostprocess = { closing_px = 6 }')),
             "models[0].postprocess.closing_px: 6 is not an odd number of pixels (or 0 to disable); e.g. 7 or 15"),
    BadInput("postprocess-unknown-key", VALIDATE, edit(('plugin = "box_fill"', 'plugin = "box_fill"\npostprocess = { fill_hole = "slice" }')),
             "models[0].postprocess.fill_hole: unknown key (did you mean 'fill_holes'?)"),
    BadInput("postprocess-fill-choice", VALIDATE, edit(('plugin = "box_fill"', 'plugin = "box_fill"\npostprocess = { fill_holes = "3d" }')),
             "models[0].postprocess.fill_holes: '3d' is not one of 'off', 'slice', 'volume'"),
    BadInput("postprocess-unknown-label", VALIDATE,
             edit(('plugin = "box_fill"', 'plugin = "box_fill"\npostprocess = { closing_px_by_label = { femor = 7 } }')),
             "models[0].postprocess.closing_px_by_label.femor: no dataset of the suite has this label (did you mean 'femur'?)"),
    # -- plugins and their params --------------------------------------------------------------------------
    BadInput("unknown-dataset-plugin", VALIDATE, edit(('plugin = "phantom"', 'plugin = "phantm"')),
             "datasets[0]: unknown dataset 'phantm' (did you mean 'phantom'?)"),
    BadInput("unknown-model-plugin", VALIDATE, edit(('plugin = "box_fill"', 'plugin = "box_fil"')),
             "models[0]: unknown model 'box_fil' (did you mean 'box_fill'?)"),
    BadInput("unknown-prompter-plugin", VALIDATE, edit(('plugin = "gt_box"', 'plugin = "gt_bx"')),
             "prompters[0]: unknown prompter 'gt_bx' (did you mean 'gt_box'?)"),
    BadInput("plugin-param-type", VALIDATE, edit(("subjects = 2", 'subjects = "two"')),
             "datasets[0].params.subjects: expected a whole number, got 'two'"),
    BadInput("plugin-param-range", VALIDATE, edit(("subjects = 2", "subjects = 0")), "datasets[0].params.subjects: 0 is below the minimum 1"),
    BadInput("plugin-param-unknown", VALIDATE, edit(("subjects = 2", "subject = 2")),
             "datasets[0].params.subject: unknown parameter (did you mean 'subjects'?)"),
    BadInput("plugin-param-choice", VALIDATE, edit(('anatomy = "knee"', 'anatomy = "kne"')), "(did you mean 'knee'?)"),
    BadInput("metric-params-not-a-table", VALIDATE, appended("[metrics]\nparams = { surface = 2 }"),
             "metrics.params.surface: expected a table"),
    BadInput("unknown-metric", VALIDATE, appended('[metrics]\nnames = ["dice", "hd96"]'),
             "metrics.names: unknown metric 'hd96' (did you mean 'hd95'?)"),
    # -- empty plans ---------------------------------------------------------------------------------------
    BadInput("model-with-no-prompters", VALIDATE, edit(('plugin = "box_fill"', 'plugin = "box_fill"\nprompters = []')),
             "models[0].prompters: empty"),
    BadInput("every-cell-filtered-out", VALIDATE, edit(('plugin = "gt_box"', 'plugin = "points"\nonly_supported = true')),
             "models[0] (box_fill): no cell left for this model"),
    BadInput("run-empty-split", RUN, edit(('split = "all"', 'split = "test"')), "datasets.knee: no subjects in split 'test'"),
    # -- run options ---------------------------------------------------------------------------------------
    BadInput("limit-subjects-zero", [*RUN, "--limit-subjects", "0"], suite(), "--limit-subjects 0: must be at least 1"),
    BadInput("limit-subjects-negative", [*RUN, "--limit-subjects", "-3"], suite(), "--limit-subjects -3: must be at least 1"),
    BadInput("device-unknown", [*RUN, "--device", "tpu"], suite(), "--device: 'tpu' is not valid: auto, cpu, cuda or cuda:N"),
    BadInput("resume-with-changed-limit",
             ["run", "{tmp}/suite.toml", "--db", "{tmp}/run.duckdb", "--resume", "--limit-subjects", "2"], _interrupted_run,
             "was started with --limit-subjects 1, this command has --limit-subjects 2 (dataset 'knee': 1 subject(s) "
             "added, 0 dropped); resume with --limit-subjects 1"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_suite(case: BadInput, tmp_path: Path, template_db: Path) -> None:
    check(case, tmp_path, template_db)


def test_resume_refusal_leaves_the_interrupted_run_as_it_was(tmp_path: Path) -> None:
    _interrupted_run(tmp_path)
    db = tmp_path / "run.duckdb"

    def state() -> list[tuple]:
        with duckdb.connect(str(db), read_only=True) as con:
            return con.execute("SELECT (SELECT list(status) FROM runs), (SELECT count(*) FROM subject_status), "
                               "(SELECT count(*) FROM subject_metrics)").fetchall()

    before = state()
    done = run_cli(["run", "suite.toml", "--db", "run.duckdb", "--resume"], tmp_path)
    assert done.returncode == 2 and "this command has no --limit-subjects" in done.stderr, done.stderr
    assert state() == before

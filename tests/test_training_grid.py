"""Ablation grids (issue 17, item 4): expansion, naming, validation, skip-finished, and the suite they write."""

from __future__ import annotations

import json

import duckdb
import pytest

from card_fixtures import PHANTOM_KNEE, write_trained
from mskbench.errors import SuiteError, UserError
from mskbench.training.grid import Trainer, load_grid
from mskbench.training.grid_run import train_grid
from mskbench.training.toml_text import value
from sam_family_tiny import tiny_sam

PHANTOM_TRAIN = ["knee_000", "knee_001", "knee_002", "knee_003", "knee_004", "knee_007"]
RECIPE = f"""
[recipe]
seed = 0
device = "cpu"

[base]
plugin = "sam"
params = {{ variant = "vit_b" }}

[train]
mode = "decoder"
epochs = 1

[prompt]
kind = "box"
max_shift = 0

[[datasets]]
name = "knee"
plugin = "phantom"
params = {value(PHANTOM_KNEE)}
labels = ["patella"]
subjects = 2
"""
GRID = """
recipe = "tiny.toml"

[grid]
"train.mode" = ["decoder", "full"]
"prompt.max_shift" = [0, 20]
"""


class FakeTrainer:
    """Checks ``train.mode`` like the recipe does and 'trains' by writing a tiny SAM and its card."""

    def __init__(self):
        self.calls: list[tuple[str, bool]] = []

    def check(self, recipe, where):
        if recipe["train"]["mode"] not in ("decoder", "full"):
            raise SuiteError(f"train.mode: {recipe['train']['mode']!r} is not one of 'decoder', 'full'")
        return recipe

    def train(self, recipe, out_dir, resume):
        self.calls.append((out_dir.name, resume))
        n = int(recipe["datasets"][0]["subjects"])
        return write_trained(out_dir, tiny_sam(seed=len(self.calls)), train=PHANTOM_TRAIN[:n], val=["knee_006"],
                             trains=recipe["train"]["mode"], max_shift=recipe["prompt"]["max_shift"], recipe=recipe)

    def trainer(self) -> Trainer:
        return Trainer(self.check, self.train)


def write_grid(tmp_path, grid=GRID, recipe=RECIPE):
    (tmp_path / "tiny.toml").write_text(recipe)
    (tmp_path / "grid.toml").write_text(grid)
    return tmp_path / "grid.toml"


def test_runs_are_the_product_named_by_the_varied_values(tmp_path):
    grid = load_grid(write_grid(tmp_path, GRID.replace('[grid]', '[grid]\n"datasets.knee.subjects" = [1, "all"]')))
    names = [run.name for run in grid.runs]
    assert names == [f"subjects-{n}_mode-{m}_max-shift-{s}" for n in (1, "all") for m in ("decoder", "full")
                     for s in (0, 20)]
    run = grid.runs[7]  # subjects "all", full, shift 20
    assert run.recipe["datasets"][0]["subjects"] == "all" and run.recipe["train"] == {"mode": "full", "epochs": 1}
    assert run.recipe["prompt"]["max_shift"] == 20 and run.recipe["recipe"]["name"] == f"tiny_{run.name}"
    assert grid.base["train"]["mode"] == "decoder"  # the base recipe is left as it was


@pytest.fixture
def tiny_vit_b(tmp_path, monkeypatch):
    from segment_anything import sam_model_registry

    monkeypatch.setitem(sam_model_registry, "vit_b", lambda checkpoint=None: tiny_sam(seed=0))
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path / "checkpoints"))


@pytest.mark.slow
def test_a_2x2_grid_gives_4_cards_and_a_suite_that_plans_runs_and_records_them(tiny_vit_b, tmp_path, capsys):
    from mskbench.cli.main import main

    fake = FakeTrainer()
    grid = write_grid(tmp_path, GRID + '[evaluate]\nmetrics = ["dice"]\nbiomarkers = false\n')
    outcome = train_grid(grid, tmp_path / "out", trainer=fake.trainer(), report=lambda _: None)
    assert sorted(p.parent.name for p in outcome.cards.values()) == sorted(n for n, _ in fake.calls)
    assert len(fake.calls) == 4 and not any(resume for _, resume in fake.calls)
    assert all(p.is_file() for p in outcome.cards.values())
    db = tmp_path / "r.duckdb"
    assert main(["run", str(outcome.suite), "--db", str(db), "--limit-subjects", "1"]) == 0, capsys.readouterr().err
    with duckdb.connect(str(db), read_only=True) as con:
        cells = con.execute("SELECT model, status, finetune_trains, finetune_max_shift, finetune_subjects "
                            "FROM cells ORDER BY model").fetchall()
        scored = con.execute("SELECT DISTINCT subject_id FROM subject_metrics").fetchall()
    assert scored == [("knee_005",)]  # the phantom's test split: held out from every run's card
    assert cells[0][:3] == ("base", "skipped", None)  # no official weights here: the base model is skipped
    assert [(m, t, s) for m, _, t, s, _ in cells[1:]] == [
        ("mode-decoder_max-shift-0", "decoder", 0.0), ("mode-decoder_max-shift-20", "decoder", 20.0),
        ("mode-full_max-shift-0", "full", 0.0), ("mode-full_max-shift-20", "full", 20.0)]
    assert {json.loads(c[4])["knee"] for c in cells[1:]} == {2}
    assert main(["stats", "--db", str(db)]) == 0  # one subject: the fine-tuning model says why it is not fitted
    with duckdb.connect(str(db), read_only=True) as con:
        (status, reason), = con.execute("SELECT status, reason FROM stats_finetune_status").fetchall()
    assert status == "not computed" and "too few" in reason


def test_finished_runs_are_skipped_and_an_interrupted_one_resumes(tmp_path):
    fake = FakeTrainer()
    grid = write_grid(tmp_path)
    train_grid(grid, tmp_path / "out", trainer=fake.trainer(), report=lambda _: None)
    (tmp_path / "out" / "mode-full_max-shift-0" / "card.json").unlink()  # killed before its card was written
    lines: list[str] = []
    train_grid(grid, tmp_path / "out", trainer=fake.trainer(), report=lines.append)
    assert fake.calls[4:] == [("mode-full_max-shift-0", True)]
    assert sum("finished before, skipped" in line for line in lines) == 3


def test_a_finished_run_of_another_recipe_is_refused(tmp_path):
    fake = FakeTrainer()
    train_grid(write_grid(tmp_path), tmp_path / "out", trainer=fake.trainer(), report=lambda _: None)
    with pytest.raises(UserError, match=r"mode-decoder_max-shift-0: holds a finished run of another recipe"):
        train_grid(write_grid(tmp_path, recipe=RECIPE.replace("epochs = 1", "epochs = 2")), tmp_path / "out",
                   trainer=fake.trainer(), report=lambda _: None)


@pytest.mark.parametrize(("grid", "message"), [
    (GRID.replace("[grid]", "[gird]"), r"gird: unknown key \(did you mean 'grid'\?\)"),
    (GRID.replace('"train.mode"', '"trian.mode"'), r"the recipe has no table 'trian' \(did you mean 'train'\?\)"),
    (GRID.replace('"train.mode"', '"datasets.knea.subjects"'),
     r"datasets has no entry named 'knea' \(did you mean 'knee'\?\); entries: knee"),
    (GRID.replace('"train.mode"', '"datasets.subjects"'), r"'datasets' is a list of entries; name one"),
    (GRID.replace('["decoder", "full"]', "[]"), r"expected a non-empty list of values to try"),
    (GRID.replace('["decoder", "full"]', '"full"'), r"expected a non-empty list of values to try, got 'full'"),
    (GRID.replace('["decoder", "full"]', '["full", "full"]'), r"repeats a value; each value is one run"),
    (GRID.replace('["decoder", "full"]', '["decoder", "frozen"]'),
     r"run mode-frozen_max-shift-0 \(train.mode = 'frozen', prompt.max_shift = 0\): train.mode: 'frozen'"),
    (GRID.replace("tiny.toml", "tiny_recipe.toml"), r"tiny_recipe.toml: recipe \(the grid's `recipe`\) not found"),
    (GRID + '[evaluate]\nsplit = "tset"\n', r"evaluate.split: .*did you mean 'test'"),
    (GRID + '[evaluate]\nprompters = [{ name = "b", plugin = "gt_bx" }]\n', r"evaluate.prompters\[0\].*gt_bx"),
    (GRID + '[evaluate]\nprompters = [{ name = "b", plugn = "gt_box" }]\n', r"plugn: unknown key"),
])
def test_bad_grids_are_one_line_before_any_training(tmp_path, grid, message):
    fake = FakeTrainer()
    with pytest.raises(UserError, match=message) as raised:
        train_grid(write_grid(tmp_path, grid), tmp_path / "out", trainer=fake.trainer(), report=lambda _: None)
    assert raised.value.exit_code == 2 and "\n" not in str(raised.value) and fake.calls == []


def test_an_unwritable_out_is_one_line_before_any_training(tmp_path):
    (tmp_path / "file").write_text("")
    fake = FakeTrainer()
    with pytest.raises(UserError, match=r"--out .*file"):
        train_grid(write_grid(tmp_path), tmp_path / "file", trainer=fake.trainer(), report=lambda _: None)
    assert fake.calls == []


def test_the_suite_resolves_recipe_dir_keeps_env_vars_and_leaves_out_a_random_base(tmp_path):
    import tomllib

    from mskbench.training.grid_suite import suite_text

    recipe = RECIPE.replace("[base]", '[base]\ninit = "random"').replace(
        "[[datasets]]", '[[datasets]]\npreprocess = { clip_percentiles = [0.5, 99.5] }\nweight = 2.0')
    recipe += '\n[[datasets]]\nname = "spine"\nplugin = "spider"\nparams = { root = "${RECIPE_DIR}/spider", ' \
              'cache = "${SCRATCH}" }\nsubjects = "all"\n'
    suite = tomllib.loads(suite_text(load_grid(write_grid(tmp_path, GRID + '[evaluate]\nsplit = "val"\n', recipe))))
    assert [m["name"] for m in suite["models"]][0] == "mode-decoder_max-shift-0"  # no weights: no base model
    knee, spine = suite["datasets"]
    assert knee["split"] == "val" and knee["preprocess"] == {"clip_percentiles": [0.5, 99.5]}
    assert "weight" not in knee and "subjects" not in knee  # recipe-only keys stay in the recipe
    assert spine["params"] == {"root": f"{tmp_path}/spider", "cache": "${SCRATCH}"}


def test_a_grid_that_changes_what_a_dataset_name_means_is_refused(tmp_path):
    grid = GRID.replace('"train.mode" = ["decoder", "full"]', '"datasets.knee.labels" = [["femur"], ["tibia"]]')
    with pytest.raises(SuiteError, match=r"changes dataset 'knee' \(plugin, params or labels\)"):
        train_grid(write_grid(tmp_path, grid), tmp_path / "out", trainer=FakeTrainer().trainer(),
                   report=lambda _: None)


@pytest.mark.parametrize("item", [
    "plain", 'quote " and \\ backslash', "tab\tand newline\n", "ünïcode ✓", "${SUITE_DIR}/x", 0, -3, 2.5, 1e-7,
    True, [1, "a", [2.0]], {"k": 1, "needs quoting": {"x.y": "z"}}, {}, [],
])
def test_toml_values_read_back_as_written(item):
    import tomllib

    from mskbench.training.toml_text import document

    assert tomllib.loads(f"v = {value(item)}")["v"] == item  # tomllib is the reference reader
    assert tomllib.loads(document({"t": {"v": item}}, {}))["t"]["v"] == item


@pytest.mark.parametrize("evaluate_base", [True, False])
def test_a_random_base_is_trained_for_zero_epochs_as_run_base_unless_evaluate_base_is_false(tmp_path, evaluate_base):
    fake, seen = FakeTrainer(), []
    train = fake.train
    fake.train = lambda recipe, out_dir, resume: seen.append(recipe) or train(recipe, out_dir, resume)
    recipe = RECIPE.replace('params = { variant = "vit_b" }', 'init = "random"')
    grid = GRID + ("" if evaluate_base else "[evaluate]\nbase = false\n")
    outcome = train_grid(write_grid(tmp_path, grid, recipe), tmp_path / "out", trainer=fake.trainer(),
                         report=lambda _: None)
    suite = outcome.suite.read_text()
    if evaluate_base:
        assert [name for name, _ in fake.calls][-1] == "base" and len(fake.calls) == 5
        assert seen[-1]["train"] == {"mode": "decoder", "epochs": 0} and seen[-1]["recipe"]["name"] == "tiny_base"
        assert 'name = "base"\nplugin = "sam"\ncheckpoint = "${SUITE_DIR}/base/model.pt"' in suite
    else:
        assert "base" not in [name for name, _ in fake.calls] and 'name = "base"' not in suite

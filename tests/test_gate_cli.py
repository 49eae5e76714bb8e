"""`mskbench gate`: planted better, equal and worse candidates; exit 0 promote, 1 reject, 2 usage error."""

import json

import pytest

import mskbench.cli.analysis  # noqa: F401
from mskbench.cli.main import main
from stats_fixtures import plant


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("gate") / "results.duckdb"
    return plant(path, datasets={"knee": 20, "spine": 16},
                 models={"base": 0.0, "better": 0.03, "equal": 0.0, "worse": -0.03, "slightly": -0.004},
                 biomarker_bias={"worse": 0.5}, noise_sd=0.005, biomarker_noise=0.02)


def gate(db, candidate, *extra):
    return main(["gate", "--db", str(db), "--baseline", "base", "--candidate", candidate, *extra])


@pytest.mark.parametrize("method", ["bootstrap", "wilcoxon"])
@pytest.mark.parametrize("candidate, expected", [("better", 0), ("equal", 0), ("slightly", 0), ("worse", 1)])
def test_planted_candidates(db, capsys, method, candidate, expected):
    assert gate(db, candidate, "--method", method, "--margin", "0.01") == expected
    out = capsys.readouterr().out
    assert ("verdict: PROMOTE" if expected == 0 else "verdict: REJECT") in out


def test_zero_margin_rejects_a_slightly_worse_candidate(db, capsys):
    assert gate(db, "slightly", "--margin", "0") == 1


def test_lower_is_better_metric_direction(db, capsys):
    # hd95 = 10 * (1 - dice): the better-Dice candidate is better on HD95 too
    assert gate(db, "better", "--metric", "hd95", "--margin", "0.05") == 0
    assert gate(db, "worse", "--metric", "hd95", "--margin", "0.05") == 1


def test_biomarker_bias_bound(db, capsys):
    assert gate(db, "equal", "--biomarker", "cartilage_thickness", "--max-abs-bias", "0.1") == 0
    assert gate(db, "better", "--dataset", "knee", "--biomarker", "cartilage_thickness", "--max-abs-bias",
                "0.1", "--json") == 0
    assert gate(db, "worse", "--margin", "0.05", "--biomarker", "cartilage_thickness", "--max-abs-bias", "0.1") == 1


def test_json_verdict(db, capsys):
    assert gate(db, "worse", "--dataset", "knee", "--json") == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["promote"] is False
    (check,) = payload["checks"]
    assert check["dataset"] == "knee" and check["n_subjects"] == 20
    assert check["mean_diff"] == pytest.approx(-0.03, abs=0.01)
    assert check["ci_high"] < 0


def test_too_few_subjects_rejects_with_reason(tmp_path, capsys):
    small = plant(tmp_path / "small.duckdb", datasets={"knee": 4}, models={"base": 0.0, "better": 0.1})
    assert gate(small, "better") == 1
    assert "not computed: 4 paired subject(s), at least 6 needed" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--baseline", "bse", "--candidate", "better"], "--baseline/--candidate bse: not in the database (did you mean 'base'?)"),
    (["--baseline", "base", "--candidate", "base"], "same as --baseline"),
    (["--baseline", "base", "--candidate", "better", "--dataset", "kne"], "(did you mean 'knee'?)"),
    (["--baseline", "base", "--candidate", "better", "--method", "wilcox"], "(did you mean 'wilcoxon'?)"),
    (["--baseline", "base", "--candidate", "better", "--biomarker", "cartilage_thickness"], "go together"),
    (["--baseline", "base", "--candidate", "better", "--biomarker", "thickness", "--max-abs-bias", "1"],
     "--biomarker thickness: not in the database"),
])
def test_usage_errors_exit_2(db, capsys, args, message):
    assert main(["gate", "--db", str(db), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1

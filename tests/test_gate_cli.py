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


def missing_hardest_db(path, how: str):
    """20 subjects; the baseline's Dice rises with the subject index (subject 0 is the hardest). The candidate is
    0.01 better on the 10 easiest and has no usable result for the 10 hardest: no rows (`absent`), NaN values
    (`nan`) or a failed subject status without metrics (`failed`)."""
    from mskbench.store import RowBuffer, Store, to_json, utcnow

    buf = RowBuffer()
    buf.add("runs", run_id="r1", suite_name="gate", suite_hash="h", suite_path="s.toml", config="{}",
            manifest="{}", started_at=utcnow(), finished_at=utcnow(), status="finished")
    for model in ("base", "cand"):
        cell = f"knee:{model}:gt_box:0"
        buf.add("cells", run_id="r1", cell_id=cell, dataset="knee", model=model, prompter="gt_box", seed=0,
                dataset_plugin="phantom", model_plugin=model, prompter_plugin="gt_box", params=to_json({}),
                status="done", skip_reason=None)
        for i in range(20):
            subject = f"s{i:02d}"
            baseline = 0.40 + 0.025 * i
            value = baseline if model == "base" else baseline + 0.01
            hard = model == "cand" and i < 10
            if hard and how == "failed":
                buf.add("subject_status", run_id="r1", cell_id=cell, dataset="knee", subject_id=subject,
                        status="failed", reason="model crashed", finished_at=utcnow())
            if hard and how in ("absent", "failed"):
                continue
            for metric, v in (("dice", value), ("hd95", 10 * (1 - value))):
                buf.add("subject_metrics", run_id="r1", cell_id=cell, subject_id=subject, label=1,
                        label_name="femur", case_state="hit", metric=metric,
                        value=float("nan") if hard else v, substituted=False)
    with Store(path) as store:
        store.write(buf)
    return path


@pytest.mark.parametrize("how", ["absent", "nan", "failed"])
def test_candidate_missing_the_hardest_subjects_is_rejected(tmp_path, capsys, how):
    db = missing_hardest_db(tmp_path / "missing.duckdb", how)
    args = ["gate", "--db", str(db), "--baseline", "base", "--candidate", "cand"]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "verdict: REJECT" in out
    assert "no result for 10 subject(s) the baseline has (s00, s01, s02, ...)" in out
    row = next(line for line in out.splitlines() if line.startswith("dice non-inferiority"))
    assert row.split()[5:7] == ["10", "10"], row  # n (paired) and missing columns
    assert "missing: the candidate has no result for 10 subject(s)" in out

    assert main([*args, "--metric", "hd95", "--json"]) == 1
    payload = json.loads(capsys.readouterr().out)
    (check,) = payload["checks"]
    assert payload["allow_missing"] is False and check["missing_in_candidate"] == 10
    assert check["missing_subjects"].split(", ") == [f"s{i:02d}" for i in range(10)]

    # Opting out judges the 10 paired subjects, on which the candidate is better, and says so.
    assert main([*args, "--allow-missing"]) == 0
    out = capsys.readouterr().out
    assert "verdict: PROMOTE" in out and "allow-missing" in out.splitlines()[0]
    assert "--allow-missing: 10 subject(s) the baseline has but the candidate has no result for were left out" in out
    assert main([*args, "--allow-missing", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["allow_missing"] is True


def test_subjects_only_the_candidate_has_do_not_reject(tmp_path, capsys):
    db = missing_hardest_db(tmp_path / "missing.duckdb", "absent")
    # Swapped roles: the baseline lacks subjects the candidate has; the paired subjects decide.
    assert main(["gate", "--db", str(db), "--baseline", "cand", "--candidate", "base", "--margin", "0.02"]) == 0
    out = capsys.readouterr().out
    assert "verdict: PROMOTE" in out and "missing:" not in out

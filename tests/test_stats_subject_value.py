"""`--subject-value slice_mean`, the tissue tier and slice objects, on databases scored by the real scorer."""

import json

import duckdb
import numpy as np
import pytest

import mskbench.cli.analysis  # noqa: F401  (registers stats/report/leaderboard/gate on the app)
from mskbench.cli.main import main
from mskbench.metrics.overlap import OverlapMetrics
from mskbench.scoring import score_subject
from mskbench.stats import data
from mskbench.store import RowBuffer, Store, to_json, utcnow
from mskbench.types import LabelInfo, TissueClass
from stats_fixtures import plant

LABELS = [LabelInfo(1, "femur", TissueClass.BONE), LabelInfo(2, "tibia", TissueClass.BONE),
          LabelInfo(3, "cartilage_a", TissueClass.CARTILAGE), LabelInfo(4, "cartilage_b", TissueClass.CARTILAGE)]


def hand_made_subject():
    """4 slices of 40 x 60 (axis 0, spacing 3 x 0.5 x 0.4 mm).

    femur: slice 1 a 10 x 10 block predicted exactly, slice 2 a 2 x 2 block missed.
    Volume Dice = 2 * 100 / (104 + 100); slice Dice 1 and 0 (slices 0 and 3 are
    empty in both masks: excluded), so the slice mean is 0.5.
    tibia: a 20 x 10 block on slices 1-2 predicted exactly (Dice 1 either way).
    cartilage_a / cartilage_b: 5 x 30 strips, predictions one row short (Dice 2*120/270 on each slice).
    """
    reference = np.zeros((4, 40, 60), np.uint8)
    reference[1, 5:15, 5:15] = 1
    reference[2, 20:22, 20:22] = 1
    reference[1:3, 25:35, 30:50] = 2
    reference[1:3, 0:5, 20:50] = 3
    reference[1:3, 35:40, 5:35] = 4
    predictions = {1: np.zeros(reference.shape, bool), 2: reference == 2, 3: reference == 3, 4: reference == 4}
    predictions[1][1, 5:15, 5:15] = True
    predictions[3][1:3, 4, 20:50] = False
    predictions[4][1:3, 39, 5:35] = False
    return reference, predictions


def write_hand_made(path):
    reference, predictions = hand_made_subject()
    store = Store(path)
    buf = RowBuffer()
    buf.add("runs", run_id="r1", suite_name="hand", suite_hash="h", suite_path="s.toml", config=to_json({}),
            manifest=to_json({}), started_at=utcnow(), finished_at=utcnow(), status="finished")
    buf.add("cells", run_id="r1", cell_id="c1", dataset="knee", model="m", prompter="gt_box", seed=0,
            dataset_plugin="knee", model_plugin="m", prompter_plugin="gt_box", params=to_json({}), status="done")
    slices, subjects = score_subject(reference, predictions, LABELS, range(4), 0, (3.0, 0.5, 0.4),
                                     [OverlapMetrics()], {"run_id": "r1", "cell_id": "c1", "subject_id": "s1",
                                                          "round": 0})
    buf.extend("slice_metrics", slices)
    buf.extend("subject_metrics", subjects)
    store.write(buf)
    store.close()
    return path


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory):
    return write_hand_made(tmp_path_factory.mktemp("hand") / "results.duckdb")


def values_of(path, subject_value):
    con = data.open_results(path)
    try:
        frame = data.subject_metrics(con, ["dice"], subject_value=subject_value)
    finally:
        con.close()
    return frame.set_index("structure")["value"]


def test_slice_mean_and_volume_dice_known_answer(hand_made):
    volume, slice_mean = values_of(hand_made, "volume"), values_of(hand_made, "slice_mean")
    cartilage = 2 * 120 / 270
    assert volume["femur"] == pytest.approx(200 / 204)
    assert slice_mean["femur"] == pytest.approx(0.5)
    assert volume["tibia"] == slice_mean["tibia"] == pytest.approx(1.0)
    assert slice_mean["mean over labels"] == pytest.approx((0.5 + 1.0 + 2 * cartilage) / 4)
    assert volume["mean over labels"] == pytest.approx((200 / 204 + 1.0 + 2 * cartilage) / 4)


def test_slice_mean_leaves_out_metrics_that_have_no_slices(tmp_path):
    path = write_hand_made(tmp_path / "derived.duckdb")
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO subject_metrics (run_id, cell_id, subject_id, round, label, label_name, metric, value, "
                "slice_mean, tissue) VALUES ('r1', 'c1', 's1', 0, 1, 'femur', 'dsc_auc', 0.7, 'NaN', 'bone')")
    con.close()
    con = data.open_results(path)
    try:
        volume = set(data.subject_metrics(con, None)["metric"])
        slice_mean = set(data.subject_metrics(con, None, subject_value="slice_mean")["metric"])
    finally:
        con.close()
    assert "dsc_auc" in volume and "dsc_auc" not in slice_mean


def test_tissue_tier_means_over_the_declared_classes(hand_made):
    volume = values_of(hand_made, "volume")
    assert volume["tissue: bone"] == pytest.approx((200 / 204 + 1.0) / 2)
    assert volume["tissue: cartilage"] == pytest.approx(2 * 120 / 270)
    con = duckdb.connect(str(hand_made), read_only=True)
    stored = dict(con.execute("SELECT DISTINCT label_name, tissue FROM subject_metrics").fetchall())
    con.close()
    assert stored == {"femur": "bone", "tibia": "bone", "cartilage_a": "cartilage", "cartilage_b": "cartilage"}


def test_stored_tissue_wins_and_old_databases_guess_from_names(tmp_path):
    path = write_hand_made(tmp_path / "renamed.duckdb")
    con = duckdb.connect(str(path))
    con.execute("UPDATE subject_metrics SET tissue = 'muscle' WHERE label_name = 'tibia'")  # declared, not guessable
    con.close()
    tiers = {s for s in values_of(path, "volume").index if s.startswith(data.TISSUE_PREFIX)}
    assert tiers == {"tissue: cartilage"}  # bone now has one label: no tier
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE subject_metrics DROP COLUMN tissue")  # a database from before the column
    con.close()
    guessed = values_of(path, "volume")
    assert guessed["tissue: bone"] == pytest.approx((200 / 204 + 1.0) / 2)
    con = duckdb.connect(str(path))
    con.execute("UPDATE subject_metrics SET label_name = 'left_' || label_name WHERE label_name LIKE 'cartilage%'")
    con.execute("UPDATE subject_metrics SET label_name = replace(label_name, 'cartilage', 'thing')")
    con.close()
    assert not any(s.endswith("other") for s in values_of(path, "volume").index)  # 'other' is not a tissue


def test_slice_objects_carry_size_and_bin(hand_made):
    con = data.open_results(hand_made)
    objects = data.slice_objects(con)
    con.close()
    femur = objects[objects["structure"] == "femur"].set_index("slice_index")
    assert femur.loc[1, "area_fraction"] == pytest.approx(100 / 2400) and femur.loc[1, "size_bin"] == "large"
    assert femur.loc[2, "area_fraction"] == pytest.approx(4 / 2400) and femur.loc[2, "size_bin"] == "small"
    assert list(femur["value"]) == [1.0, 0.0]
    assert set(objects["slice_index"]) == {1, 2}  # slices without the reference object have no size


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    """medsam is 0.05 worse on volume Dice but 0.1 better on the slice mean."""
    path = tmp_path_factory.mktemp("shifted") / "results.duckdb"
    return plant(path, datasets={"knee": 20}, models={"sam": 0.0, "medsam": -0.05},
                 slice_mean_offset={"medsam": 0.15})


def test_gate_judges_the_chosen_subject_value(shifted, capsys):
    args = ["gate", "--db", str(shifted), "--baseline", "sam", "--candidate", "medsam", "--n-boot", "300", "--json"]
    assert main(args) == 1
    assert json.loads(capsys.readouterr().out)["subject_value"] == "volume"
    assert main([*args, "--subject-value", "slice_mean"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["promote"] and verdict["subject_value"] == "slice_mean"
    assert verdict["checks"][0]["mean_diff"] == pytest.approx(0.1, abs=0.02)


def test_stats_and_leaderboard_take_the_subject_value(shifted, tmp_path, capsys):
    assert main(["stats", "--db", str(shifted), "--no-write", "--json", "--n-boot", "200", "--n-boot-icc", "200",
                 "--subject-value", "slice_mean", "--metric", "dice"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["settings"]["subject_value"] == "slice_mean"
    better = [r for r in out["pairwise"] if r["structure"] == "mean over labels"][0]
    assert better["better"] == "medsam"
    assert main(["leaderboard", "--db", str(shifted), "--out", str(tmp_path / "site"), "--n-boot", "200",
                 "--subject-value", "slice_mean"]) == 0
    page = next((tmp_path / "site").glob("knee*.html")).read_text()
    assert page.index("<td>medsam</td>") < page.index("<td>sam</td>")  # ranked first on the slice mean
    assert main(["leaderboard", "--db", str(shifted), "--out", str(tmp_path / "volume"), "--n-boot", "200"]) == 0
    page = next((tmp_path / "volume").glob("knee*.html")).read_text()
    assert page.index("<td>sam</td>") < page.index("<td>medsam</td>")


@pytest.mark.parametrize("command", [["stats"], ["leaderboard", "--out", "site"],
                                     ["gate", "--baseline", "sam", "--candidate", "medsam"]])
def test_unknown_subject_value_is_one_line(shifted, tmp_path, capsys, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [command[0], "--db", str(shifted), *command[1:], "--subject-value", "slice_mea"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --subject-value slice_mea: unknown (did you mean 'slice_mean'?)")
    assert len(err.splitlines()) == 1


def test_interactive_summary_rows_keep_the_labels_tissue():
    from mskbench.execution.records import _derived_rows

    rows = [{"label": 1, "label_name": "femur", "tissue": "bone", "metric": "dice", "value": v, "round": r,
             "case_state": "hit"} for r, v in enumerate([0.5, 0.7, 0.9])]
    derived = _derived_rows(rows, 2, {"cell_id": "c1", "subject_id": "s1"})
    assert derived and {row["tissue"] for row in derived} == {"bone"}

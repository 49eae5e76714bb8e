"""The phantom nnU-Net shipped in models/ (docs/models.md §5): a learned automatic model must beat a filled box.

It runs through the harness, as the default suite runs it, on knee phantom
subjects of a seed used neither for training (100, models/phantom_nnunet_knee/training.json)
nor by the default suite (0-3), without test-time mirroring to keep it fast.
The floor is the measured mean subject Dice minus a margin for CPU/library
numerics.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

pytest.importorskip("nnunetv2")

from mskbench.cli.main import main  # noqa: E402

MODEL_FOLDER = Path(__file__).resolve().parents[1] / "models" / "phantom_nnunet_knee"
HELD_OUT_SEED = 7
SUBJECTS = 1  # knee_000 of seed 7: about 20 s on two CPU cores
BONES = ("femur", "tibia", "patella")
MEASURED_MEAN_DICE = 0.528  # measured 2026-11-30, nnunetv2 2.8.1, torch 2.14.1 (box_fill + gt_box: 0.480)
MARGIN = 0.03  # CPU/library numerics; a swapped or dropped label costs far more

SUITE = """
[suite]
name = "phantom_nnunet_held_out"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = {subjects}, seed = {seed} }}
split = "all"

[[models]]
name = "nnunet_phantom_knee"
plugin = "nnunet"
params = {{ model_folder = "{folder}", configuration = "2d", use_mirroring = false }}
prompters = ["none"]

[[models]]
name = "box_fill"
plugin = "box_fill"
prompters = ["gt_box"]

[[prompters]]
name = "none"
plugin = "none"

[[prompters]]
name = "gt_box"
plugin = "gt_box"

[metrics]
names = ["dice"]

[biomarkers]
enabled = false
"""


@pytest.fixture(scope="module")
def dice(tmp_path_factory):
    """(model, label) -> Dice per subject, from one harness run of both models."""
    tmp = tmp_path_factory.mktemp("phantom_nnunet")
    suite = tmp / "suite.toml"
    suite.write_text(SUITE.format(subjects=SUBJECTS, seed=HELD_OUT_SEED, folder=MODEL_FOLDER))
    assert main(["run", str(suite), "--db", str(tmp / "r.duckdb")]) == 0
    con = duckdb.connect(str(tmp / "r.duckdb"), read_only=True)
    rows = con.execute("SELECT split_part(cell_id, ':', 2), label_name, subject_id, value FROM subject_metrics "
                       "WHERE metric = 'dice'").fetchall()
    con.close()
    table: dict[tuple[str, str], dict[str, float]] = {}
    for model, label, subject, value in rows:
        table.setdefault((model, label), {})[subject] = value
    return table


def mean_subject_dice(dice, model: str) -> float:
    """Mean over subjects of each subject's mean Dice over the labels (the leaderboard's subject Dice)."""
    per_subject: dict[str, list[float]] = {}
    for (name, _), values in dice.items():
        if name == model:
            for subject, value in values.items():
                per_subject.setdefault(subject, []).append(value)
    return sum(sum(v) / len(v) for v in per_subject.values()) / len(per_subject)


@pytest.mark.slow
def test_held_out_mean_subject_dice_stays_above_the_floor(dice):
    assert mean_subject_dice(dice, "nnunet_phantom_knee") >= MEASURED_MEAN_DICE - MARGIN


@pytest.mark.slow
@pytest.mark.parametrize("bone", BONES)
def test_it_beats_a_filled_ground_truth_box_on_every_bone(dice, bone):
    learned, box = dice[("nnunet_phantom_knee", bone)], dice[("box_fill", bone)]
    assert sum(learned.values()) / len(learned) > sum(box.values()) / len(box)

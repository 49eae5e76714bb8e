"""`mskbench train --grid` through the real trainer and CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def test_a_2x2_tiny_grid_trains_4_runs_and_its_base_with_cards_and_a_second_call_skips_them(tmp_path, capsys):
    from mskbench.cli.main import main
    from mskbench.training.card import read_card

    grid = tmp_path / "grid.toml"
    grid.write_text(f'recipe = {json.dumps(str(RECIPES / "source_study_tiny.toml"))}\n'
                    '[grid]\n"train.mode" = ["decoder", "full"]\n"prompt.max_shift" = [0, 20]\n')
    assert main(["train", "--grid", str(grid), "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    cards = {p.parent.name: read_card(p) for p in (tmp_path / "out").glob("*/card.json")}
    base = cards.pop("base")  # the random base, untrained, so the grid's suite can compare the runs with it
    assert base.epochs_run == 0
    assert sorted(cards) == ["mode-decoder_max-shift-0", "mode-decoder_max-shift-20", "mode-full_max-shift-0",
                             "mode-full_max-shift-20"]
    assert {(c.trains, c.prompt.max_shift) for c in cards.values()} == {
        ("decoder", 0), ("decoder", 20), ("full", 0), ("full", 20)}
    assert (tmp_path / "out" / "suite.toml").is_file()
    capsys.readouterr()
    assert main(["train", "--grid", str(grid), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.count("finished before, skipped") == 5

"""Which interaction round the analyses read: ``--round N|final`` (DESIGN §9).

``final`` is each (cell, subject)'s last round: the only round of a one-shot
prompter, round K of an interactive one, so one-shot and interactive cells
stay comparable on one board. ``N`` is round N exactly; a cell without it
is left out with a warning rather than silently compared on another round.
The derived interaction metrics (``dsc_auc``, ``noc_90``, ...) summarise the
whole protocol, so they exist for ``final`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from mskbench.errors import UserError
from mskbench.interaction.summary import DERIVED_METRICS

log = logging.getLogger(__name__)

FINAL = "final"
RoundChoice = int | str
"""``FINAL`` or a round number >= 0."""


def parse_round(text: str, option: str = "--round") -> RoundChoice:
    """``final`` or a non-negative integer; anything else is one usage line."""
    value = text.strip().lower()
    if value == FINAL:
        return FINAL
    if value.isdigit():
        return int(value)
    raise UserError(f"{option} {text}: expected 'final' or a round number 0, 1, 2, ... (0 = the initial prompt)")


def round_label(choice: RoundChoice) -> str:
    """How outputs name the selection: 'the final round' or 'round N'."""
    return "the final round" if choice == FINAL else f"round {choice}"


def check_metrics(metrics: Sequence[str], choice: RoundChoice, option: str = "--metric") -> None:
    """Derived metrics asked for with a specific round: one line saying to use ``--round final``."""
    derived = [m for m in metrics if m in DERIVED_METRICS]
    if derived and choice != FINAL:
        raise UserError(f"{option} {derived[0]}: summarises every round of the interaction, so it has no value at "
                        f"--round {choice}; use --round final (the default) with it")


def keep_round(rows: pd.DataFrame, choice: int, what: str = "cell", required: bool = True,
               hint: str = "") -> pd.DataFrame:
    """Rows of round ``choice``, from rows with columns dataset, model, prompter, round (one row per round).

    A (dataset, model, prompter) without that round is left out with one
    warning line, and when no cell has it that is an error naming the rounds
    there are. Rows that are not ``required`` (biomarkers) warn only for
    cells that went past the round without a value there (the metrics'
    warning already names cells that never reached it), with ``hint``.
    """
    if rows.empty:
        return rows
    present = rows.groupby(["dataset", "model", "prompter"], sort=True)["round"].agg(
        lambda r: sorted({int(x) for x in r}))
    if required and not any(choice in held for held in present):
        listed = ", ".join(map(str, sorted({r for held in present for r in held})))
        raise UserError(f"--round {choice}: no {what} has round {choice}; this database holds round(s) {listed} "
                        f"(0 = the initial prompt; --round final = each cell's last round)")
    for cell, held in present.items():
        if choice not in held and (required or max(held) > choice):
            log.warning("--round %s: left out %s %s (its rounds: %s)%s", choice, what, " / ".join(cell),
                        ", ".join(map(str, held)), hint)
    return rows[rows["round"] == choice]

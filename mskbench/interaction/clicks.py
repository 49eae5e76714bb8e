"""The `clicks` prompter: an initial prompt, then corrective clicks round by round (DESIGN §11).

It does not run the loop itself (the runner does, because each round needs
the model's previous prediction); it says what the loop is: the initial
prompter, the number of rounds, the placement rule, whether clicks are
placed per slice or in the volume, and what the model gets back from its
previous round (``logits``, ``mask`` or ``none``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mskbench.errors import PluginError
from mskbench.interaction.placement import PLACEMENTS, Click, place_in_box
from mskbench.prompting.box3d import Box3dPrompter
from mskbench.prompting.oracle import GtBoxPrompter, PointsPrompter

INITIALS: tuple[str, ...] = ("box", "point", "box3d", "none")
SPACES: tuple[str, ...] = ("slice", "volume")
FEEDBACKS: tuple[str, ...] = ("logits", "mask", "none")
MAX_ROUNDS = 50


def _choice(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise PluginError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
    return value


class ClicksPrompter:
    """Initial prompt (round 0) plus ``rounds`` corrective clicks; see the module docstring."""

    def __init__(
        self,
        initial: str = "box3d",
        rounds: int = 5,
        placement: str = "max_edt_largest_error",
        space: str = "volume",
        feedback: str = "logits",
        key_slice: str = "largest",
        mode: str = "outward",
        max_shift: float = 0.0,
    ) -> None:
        self.initial = _choice("initial", initial, INITIALS)
        if not isinstance(rounds, int) or isinstance(rounds, bool) or not 0 <= rounds <= MAX_ROUNDS:
            raise PluginError(f"rounds: {rounds!r} must be a whole number from 0 to {MAX_ROUNDS}")
        self.rounds = rounds
        self.placement = _choice("placement", placement, PLACEMENTS)
        self.space = _choice("space", space, SPACES)
        self.feedback = _choice("feedback", feedback, FEEDBACKS)
        if initial != "box3d" and (key_slice, mode, max_shift) != ("largest", "outward", 0.0):
            raise PluginError(f"key_slice, mode, max_shift: they shape the box3d initial prompt; "
                              f"with initial = {initial!r} leave them at their defaults")
        if initial == "box3d":
            self.initial_prompter = Box3dPrompter(key_slice=key_slice, mode=mode, max_shift=max_shift)
        else:
            self.initial_prompter = {"box": GtBoxPrompter(), "point": PointsPrompter(), "none": None}[initial]
        self.produces = frozenset({"point"} | ({initial} if initial != "none" else set()))

    def place(
        self, reference: np.ndarray, prediction: np.ndarray, rng: np.random.Generator, axis: int = 0
    ) -> list[Click]:
        """The clicks of one round for one label, from bool reference and prediction arrays (slice or volume;
        ``axis``: the volume's slice axis, for rules that click slice by slice)."""
        return place_in_box(self.placement, reference, prediction, rng, axis)

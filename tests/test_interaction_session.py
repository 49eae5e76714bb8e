"""The round loop's wiring: what round r returned is what round r + 1 gets back as ``previous``, as the
prompter's ``feedback`` says; ``feedback = "none"`` passes None; prompts accumulate every click so far."""

from __future__ import annotations

import numpy as np
import pytest

from mskbench.interaction.clicks import ClicksPrompter
from mskbench.interaction.session import VolumeRounds, slice_rounds, volume_model_rounds
from mskbench.prompting.seeding import VOLUME
from mskbench.protocols import Refinement, VolumeInput
from mskbench.types import Prompt

ROUNDS = 3


def rng(slice_index, round_):
    return np.random.default_rng([slice_index + 2, round_]), round_


class Echo:
    """Takes logits and masks back; call n returns a one-pixel mask at flat index n (never the reference, so
    every round gets a click) and logits filled with n. Records what every call got."""

    feedback = frozenset({"logits", "mask"})

    def __init__(self, shape):
        self.shape, self.previous, self.prompts, self.outputs = shape, [], [], []

    def _step(self, prompts, previous):
        n = len(self.previous)
        self.previous.append(previous)
        self.prompts.append(prompts)
        mask = np.zeros(self.shape, bool)
        mask.flat[n] = True
        self.outputs.append(Refinement(mask, np.full((1, 4, 4), float(n))))
        return self.outputs[-1]

    def refine(self, embedding_or_volume, prompt, previous):
        return self._step(prompt, previous)


def expected_previous(model, feedback):
    """Call r (r >= 1) gets call r - 1's logits, its mask, or None; call 0 gets None."""
    out = [None]
    for result in model.outputs[:-1]:
        out.append({"logits": result.logits, "mask": result.mask, "none": None}[feedback])
    return out


def assert_previous(model, feedback):
    assert len(model.previous) == ROUNDS + 1
    for got, want in zip(model.previous, expected_previous(model, feedback)):
        if want is None:
            assert got is None
        else:
            np.testing.assert_array_equal(got, want)


def reference_2d():
    reference = np.zeros((12, 14), np.int32)
    reference[6:10, 8:12] = 1
    return reference


@pytest.mark.parametrize("feedback", ["logits", "mask", "none"])
def test_slice_rounds_feed_back_the_previous_output(feedback):
    reference = reference_2d()
    model = Echo(reference.shape)
    box = Prompt(kind="box", label=1, prompter="c", seed=0, box=(8.0, 6.0, 11.0, 9.0), slice_index=0)
    prompter = ClicksPrompter(initial="box", rounds=ROUNDS, space="slice", feedback=feedback)
    rounds = slice_rounds(model, "embedding", 0, reference, {1: box}, [1], prompter, "c", rng)
    assert_previous(model, feedback)
    # each round's prompt is the box plus every click so far; the recorded clicks are those clicks
    assert [len(p.points) for p in model.prompts] == [0, 1, 2, 3] and all(p.box == box.box for p in model.prompts)
    assert [c.points[0] for c in rounds.clicks] == list(model.prompts[-1].points)
    for r in range(ROUNDS + 1):
        np.testing.assert_array_equal(rounds.masks[r][1], model.outputs[r].mask)


@pytest.mark.parametrize("feedback", ["logits", "mask", "none"])
def test_volume_space_rounds_of_a_slice_model_feed_back_that_slice_s_output(feedback):
    """One slice holds the label, so every click lands there and refines the same target."""
    reference = np.zeros((3, 12, 14), np.int32)
    reference[1] = reference_2d()
    model = Echo(reference.shape[1:])
    prompter = ClicksPrompter(initial="box", rounds=ROUNDS, space="volume", feedback=feedback)
    session = VolumeRounds(model, reference, 0, [1], prompter, "c", rng)
    box = Prompt(kind="box", label=1, prompter="c", seed=0, box=(8.0, 6.0, 11.0, 9.0), slice_index=1)
    for k in range(3):
        session.start_slice(k, f"embedding {k}", {1: box} if k == 1 else {})
    rounds = session.finish()
    assert_previous(model, feedback)
    assert {c.slice_index for c in rounds.clicks} == {1}
    np.testing.assert_array_equal(rounds.masks[ROUNDS][1][1], model.outputs[-1].mask)


class EchoVolume(Echo):
    def refine(self, volume, prompts, previous):
        return self._step(list(prompts), previous)


@pytest.mark.parametrize("feedback", ["logits", "mask", "none"])
def test_volume_model_rounds_feed_back_the_previous_output(feedback):
    reference = np.zeros((3, 12, 14), np.int32)
    reference[1:3, 6:10, 8:12] = 1
    model = EchoVolume(reference.shape)
    volume = VolumeInput(np.zeros(reference.shape, np.uint8), (3.0, 1.0, 1.0), 0, (1,))
    box3d = Prompt(kind="box3d", label=1, prompter="c", seed=0, box=(8.0, 6.0, 11.0, 9.0), slice_index=1, extent=(1, 2))
    prompter = ClicksPrompter(initial="box3d", rounds=ROUNDS, feedback=feedback)
    rounds = volume_model_rounds(model, "m", volume, reference, {1: [box3d]}, prompter, "c", rng)
    assert_previous(model, feedback)
    assert [len(p) for p in model.prompts] == [1, 2, 3, 4] and all(p[0] == box3d for p in model.prompts)
    assert rounds.clicks == model.prompts[-1][1:] and all(c.seed == c.round for c in rounds.clicks)
    assert [t[:2] for t in rounds.timings] == [(r, VOLUME) for r in range(ROUNDS + 1)]


def test_a_model_that_takes_nothing_back_gets_none_whatever_the_prompter_offers():
    reference = reference_2d()
    model = Echo(reference.shape)
    model.feedback = frozenset()
    box = Prompt(kind="box", label=1, prompter="c", seed=0, box=(8.0, 6.0, 11.0, 9.0), slice_index=0)
    slice_rounds(model, None, 0, reference, {1: box}, [1], ClicksPrompter(initial="box", rounds=ROUNDS, space="slice"),
                 "c", rng)
    assert model.previous == [None] * (ROUNDS + 1)

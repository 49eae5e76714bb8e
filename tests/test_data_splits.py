"""Subject-level stratified splits: deterministic, disjoint, proportional."""

from __future__ import annotations

import random

import pytest

from mskbench.data.splits import assign_splits
from mskbench.errors import DataError, SuiteError


def _cohort(n_f: int, n_m: int, n_unknown: int = 0):
    ids = [f"s{i:03d}" for i in range(n_f + n_m + n_unknown)]
    strata = ["F"] * n_f + ["M"] * n_m + [None] * n_unknown
    return ids, strata


def test_every_subject_in_exactly_one_split():
    ids, strata = _cohort(23, 31, 4)
    splits = assign_splits(ids, strata)
    assert set(splits) == set(ids)
    assert set(splits.values()) <= {"train", "val", "test"}
    groups = {name: {s for s, v in splits.items() if v == name} for name in ("train", "val", "test")}
    assert groups["train"].isdisjoint(groups["val"]) and groups["train"].isdisjoint(groups["test"])
    assert groups["val"].isdisjoint(groups["test"])
    assert sum(len(g) for g in groups.values()) == len(ids)


def test_counts_and_strata_are_proportional():
    ids, strata = _cohort(40, 60)
    splits = assign_splits(ids, strata, ratios=(0.7, 0.15, 0.15), seed=3)
    counts = {name: sum(v == name for v in splits.values()) for name in ("train", "val", "test")}
    assert counts == {"train": 70, "val": 15, "test": 15}
    sex = dict(zip(ids, strata, strict=True))
    for name, ratio in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        females = sum(1 for s, v in splits.items() if v == name and sex[s] == "F")
        assert abs(females - 40 * ratio) <= 1.5, (name, females)


def test_deterministic_and_independent_of_input_order():
    ids, strata = _cohort(10, 12, 3)
    first = assign_splits(ids, strata, seed=7)
    pairs = list(zip(ids, strata, strict=True))
    random.Random(1).shuffle(pairs)
    shuffled = assign_splits([p[0] for p in pairs], [p[1] for p in pairs], seed=7)
    assert first == shuffled
    assert assign_splits(ids, strata, seed=8) != first


def test_small_cohort_and_other_ratios():
    splits = assign_splits(["a", "b", "c", "d", "e"], ["F", "M", "F", "M", None], ratios=(0.6, 0.2, 0.2))
    counts = sorted(sum(v == n for v in splits.values()) for n in ("train", "val", "test"))
    assert counts == [1, 1, 3]


@pytest.mark.parametrize("ratios", [(0.5, 0.5), (0.7, 0.2, 0.2), (1.2, -0.1, -0.1)])
def test_bad_ratios_are_user_errors(ratios):
    with pytest.raises(SuiteError, match="ratios"):
        assign_splits(["a", "b"], [None, None], ratios=ratios)


def test_duplicate_ids_are_rejected():
    with pytest.raises(DataError, match="twice"):
        assign_splits(["a", "a"], ["F", "F"])

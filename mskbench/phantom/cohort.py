"""A phantom cohort: its subject ids and their train/val/test splits.

Splits are stratified by sex with :func:`mskbench.data.splits.assign_splits`
(70/15/15 by default). Only demographics are drawn to decide them, so listing
a split never builds a subject.
"""

from __future__ import annotations

from collections.abc import Sequence

from mskbench.data.splits import DEFAULT_RATIOS, assign_splits
from mskbench.phantom.generate import subject_demographics, subject_id


def subject_ids(anatomy: str, n_subjects: int) -> list[str]:
    return [subject_id(anatomy, index) for index in range(n_subjects)]


def cohort_splits(
    anatomy: str, n_subjects: int, seed: int, ratios: Sequence[float] = DEFAULT_RATIOS
) -> dict[str, str]:
    """Subject id -> split for the first ``n_subjects`` subjects of (anatomy, seed)."""
    sexes = [subject_demographics(anatomy, seed, index).sex for index in range(n_subjects)]
    return assign_splits(subject_ids(anatomy, n_subjects), sexes, ratios=ratios, seed=seed)

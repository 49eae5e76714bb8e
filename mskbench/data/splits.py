"""Deterministic, subject-level, stratified train/val/test splits.

Hand-written rather than scikit-learn's ``train_test_split`` (not a
dependency) because the harness needs three splits in one call, a result that
does not depend on the order the ids were listed in, near-exact overall counts
even when strata are tiny (two or three subjects per sex), and an explicit seed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from mskbench.errors import DataError, SuiteError
from mskbench.types import SPLITS

DEFAULT_RATIOS: tuple[float, float, float] = (0.7, 0.15, 0.15)
_UNKNOWN = "\uffffunknown"  # sorts after every real stratum name


def _split_sequence(total: int, ratios: Sequence[float]) -> list[int]:
    """Split index for each position 0..total-1, balanced over every prefix.

    Each position goes to the split furthest below its quota so far, so any
    prefix (and hence any contiguous stratum) is within about one subject of
    proportional, and extending the list never changes earlier positions.
    """
    counts = [0] * len(ratios)
    sequence = []
    for position in range(total):
        deficits = [(position + 1) * r - c for r, c in zip(ratios, counts, strict=True)]
        chosen = max(range(len(ratios)), key=lambda k: (deficits[k], -k))
        counts[chosen] += 1
        sequence.append(chosen)
    return sequence


def _check_ratios(ratios: Sequence[float]) -> tuple[float, ...]:
    if len(ratios) != len(SPLITS):
        raise SuiteError(f"split ratios {tuple(ratios)}: give {len(SPLITS)} values for {', '.join(SPLITS)}")
    if any(not math.isfinite(r) or r < 0 for r in ratios) or not math.isclose(sum(ratios), 1.0, abs_tol=1e-6):
        raise SuiteError(f"split ratios {tuple(ratios)}: values must be >= 0 and sum to 1, e.g. (0.7, 0.15, 0.15)")
    return tuple(float(r) for r in ratios)


def assign_splits(
    subject_ids: Sequence[str],
    strata: Sequence[str | None],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    seed: int = 0,
) -> dict[str, str]:
    """Map each subject id to ``train``, ``val`` or ``test``.

    ``strata`` gives each subject's stratification key (sex by default; None
    is its own "unknown" stratum). Each stratum is shuffled by a generator
    seeded with ``seed``, and the strata, one after the other, walk a
    sequence that gives each next subject to the split furthest below its
    quota: overall counts are within one subject of ``n * ratios`` and each
    stratum is within about one subject of proportional.
    The result depends only on the (id, stratum) pairs, never on their order.
    """
    ratios = _check_ratios(ratios)
    if len(subject_ids) != len(strata):
        raise ValueError(f"{len(subject_ids)} subject ids but {len(strata)} strata")
    seen: set[str] = set()
    for sid in subject_ids:
        if sid in seen:
            raise DataError(f"subject id {sid!r} appears twice; subject ids must be unique within a dataset")
        seen.add(sid)

    groups: dict[str, list[str]] = defaultdict(list)
    for sid, key in zip(subject_ids, strata, strict=True):
        groups[_UNKNOWN if key is None else str(key)].append(sid)

    rng = np.random.default_rng(seed)
    ordered: list[str] = []
    for key in sorted(groups):
        members = sorted(groups[key])
        ordered.extend(members[i] for i in rng.permutation(len(members)))
    sequence = _split_sequence(len(ordered), ratios)
    return {sid: SPLITS[k] for sid, k in zip(ordered, sequence, strict=True)}

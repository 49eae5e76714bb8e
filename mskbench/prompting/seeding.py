"""Per-slice random generators for prompters (DESIGN §4, §10).

The seed is a hash of (suite seed, prompter name, dataset, subject, slice),
so a slice gets the same prompts in every run, whatever the order of models
or subjects, and every model of a suite sees the very same jittered boxes:
the model is deliberately not part of the key. ``hashlib`` is used because
Python's ``hash()`` of a str changes between processes.

Interactive rounds extend the key with the round (round 0 keeps the
one-shot key, so an initial prompt equals the one-shot prompter's). A
prompt made for the whole volume (``box3d``, clicks placed in 3D) uses
slice index -1.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

_SEED_BITS = 63  # fits DuckDB BIGINT (signed 64-bit) in the prompts table


VOLUME = -1  # the slice index of prompts made for the whole volume


def prompt_seed(
    suite_seed: int, prompter: str, dataset: str, subject_id: str, slice_index: int, round: int = 0
) -> int:
    """The stable non-negative 63-bit seed of one (prompter, slice, round)."""
    parts = [int(suite_seed), prompter, dataset, subject_id, int(slice_index)]
    key = json.dumps(parts + [int(round)] if round else parts)
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - _SEED_BITS)


def prompt_rng(
    suite_seed: int, prompter: str, dataset: str, subject_id: str, slice_index: int, round: int = 0
) -> tuple[np.random.Generator, int]:
    """The prompter's generator for one slice and the seed it was made from.

    ``np.random.default_rng(seed)`` with the returned seed recreates the
    generator, which is how a stored prompt can be re-derived.
    """
    seed = prompt_seed(suite_seed, prompter, dataset, subject_id, slice_index, round)
    return np.random.default_rng(seed), seed

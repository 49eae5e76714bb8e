"""What every file-backed dataset plugin shares: subject listing, splits, loading.

A dataset plugin only has to say which subjects exist (with their sex, when a
metadata table knows it without opening images) and how to read one; this
base turns that into the :class:`mskbench.protocols.Dataset` protocol with
deterministic stratified splits and one-line errors for unknown ids.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from mskbench.data.labels import UNLISTED_LABEL_POLICIES, apply_unlisted_labels
from mskbench.data.readers import Volume
from mskbench.data.splits import DEFAULT_RATIOS, assign_splits
from mskbench.errors import DataError
from mskbench.params import Param, suggest
from mskbench.types import SPLITS, LabelInfo, SliceAxis, Subject

SLICE_AXES = ("axial", "sagittal", "coronal", "through_plane")
_OFFICIAL_SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "validation": "val", "test": "test"}


UNLISTED_LABELS_PARAM = Param(
    "str", default="error", choices=list(UNLISTED_LABEL_POLICIES),
    help="Mask values with no name: error (default), or background to ignore them (name only the labels you want).",
)


def with_unlisted_labels(mask: Volume, label_map: Mapping[int, LabelInfo], policy: str, where: Path,
                         names_from: str = "label_names") -> Volume:
    """A mask read from a file after the dataset's ``unlisted_labels`` policy (:func:`apply_unlisted_labels`)."""
    cleaned = apply_unlisted_labels(mask.array, label_map, policy, str(where), names_from)
    return mask if cleaned is mask.array else dataclasses.replace(mask, array=cleaned)


def split_params(slice_axis: str) -> dict[str, Param]:
    """Params every dataset plugin accepts, with the dataset's natural slice axis as default."""
    return {
        "slice_axis": Param("str", default=slice_axis, choices=SLICE_AXES, help="Direction the 3D volumes are sliced along."),
        "split_ratios": Param("list", default=list(DEFAULT_RATIOS), help="train/val/test fractions, summing to 1."),
        "split_seed": Param("int", default=0, help="Seed of the subject-level split."),
        "stratify_by": Param("str", default="sex", choices=["sex", "none"], help="Key the split is stratified by."),
        "official_split": Param(
            "bool", default=False, help="Use the split the dataset publishes (where it has one) instead of a stratified one."
        ),
    }


def root_param(what: str) -> Param:
    return Param("path", help=f"Folder holding {what}.")


def check_root(root: str | Path, expected: str) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{path}: dataset folder not found; download the data and point `root` at {expected}")
    return path


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file whose delimiter (',' or ';') is detected from its header."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc}); check the file exists and is readable") from None
    header = text.splitlines()[0] if text else ""
    delimiter = ";" if header.count(";") > header.count(",") else ","
    return list(csv.DictReader(text.splitlines(), delimiter=delimiter))


def claim_subject_id(taken: dict[str, Path], subject_id: str, path: Path) -> str:
    """Record that ``path`` is subject ``subject_id``; a second file with that id is an error naming both."""
    if subject_id in taken:
        raise DataError(
            f"subject id '{subject_id}' belongs to two files, {taken[subject_id]} and {path}; "
            "rename one so that every subject has its own id"
        )
    taken[subject_id] = path
    return subject_id


class FileDataset:
    """Base of the file-backed datasets; subclasses fill ``_scan`` and ``_read``.

    ``_scan`` returns ``{subject_id: stratum}`` (sex or None) from the folder
    listing and metadata tables only, so construction stays cheap; ``_read``
    opens the files of one subject.
    """

    anatomy: str | None = None
    label_map: dict[int, LabelInfo]
    slice_axis: SliceAxis

    def __init__(
        self,
        *,
        slice_axis: str,
        split_ratios: Sequence[float] = DEFAULT_RATIOS,
        split_seed: int = 0,
        stratify_by: str = "sex",
        official_split: bool = False,
    ) -> None:
        self.slice_axis = slice_axis  # type: ignore[assignment]
        self.split_ratios = tuple(float(r) for r in split_ratios)
        self.split_seed = split_seed
        self.stratify_by = stratify_by
        self.official_split = official_split

    # --- to implement -------------------------------------------------------------
    def _scan(self) -> dict[str, str | None]:
        raise NotImplementedError

    def _read(self, subject_id: str) -> Subject:
        raise NotImplementedError

    def _official_splits(self) -> Mapping[str, str] | None:
        """The dataset's published split per subject, or None when it has none."""
        return None

    # --- the Dataset protocol -----------------------------------------------------
    @cached_property
    def _strata(self) -> dict[str, str | None]:
        strata = self._scan()
        if not strata:
            raise DataError(f"{self!r}: no subjects found; check `root` points at the dataset's top folder")
        return dict(sorted(strata.items()))

    @cached_property
    def _splits(self) -> dict[str, str]:
        ids = list(self._strata)
        if self.official_split:
            official = self._official_splits()
            if official is None:
                raise DataError(f"{type(self).__name__}: this dataset publishes no split; set official_split = false")
            return {sid: _OFFICIAL_SPLIT_NAMES.get(str(official.get(sid, "")).lower(), "test") for sid in ids}
        strata = [self._strata[sid] if self.stratify_by == "sex" else None for sid in ids]
        return assign_splits(ids, strata, self.split_ratios, self.split_seed)

    def subject_ids(self, split: str | None = None) -> list[str]:
        if split is None:
            return list(self._strata)
        if split not in SPLITS:
            raise DataError(f"split '{split}' is not one of {', '.join(SPLITS)}{suggest(split, list(SPLITS))}")
        return [sid for sid in self._strata if self._splits[sid] == split]

    def load(self, subject_id: str) -> Subject:
        if subject_id not in self._strata:
            raise DataError(
                f"{type(self).__name__}: unknown subject '{subject_id}'{suggest(subject_id, list(self._strata))}"
            )
        subject = self._read(subject_id)
        return dataclasses.replace(subject, split=self._splits[subject_id], anatomy=subject.anatomy or self.anatomy)

    def describe(self) -> dict[str, Any]:
        """Manifest entry: what was read and how it was split."""
        return {
            "subjects": len(self._strata),
            "split_ratios": list(self.split_ratios),
            "split_seed": self.split_seed,
            "stratify_by": self.stratify_by,
            "official_split": self.official_split,
        }

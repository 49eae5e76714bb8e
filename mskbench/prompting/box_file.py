"""The `box3d-from-file` prompter: 3D boxes a person drew, read from a CSV file instead of the reference.

The file has one row per (subject, label) with the box as two opposite
corners in world millimetres, ``space`` = ``RAS`` (3D Slicer's GUI, NIfTI,
nibabel) or ``LPS`` (DICOM, ITK, SimpleITK, Slicer's ``.mrk.json`` files)::

    subject_id,label,x1,y1,z1,x2,y2,z2
    knee_001,femur,-40.5,12.0,-30.0,35.5,60.0,25.0

World coordinates, not voxel indices, because they mean the same point in
every tool whatever the file's axis order, flips or 0/1-based indexing, and
mskbench turns them into voxels through the subject's own affine. The box
holds the voxels whose centres lie inside it (both faces included); a box
reaching past the image is clipped (``clipped`` on the prompt), one holding
no voxel centre of the image is refused. ``label`` is the label's name in
the label map or its integer id. A subject's label without a row gets no
prompt (a warning names them once per subject), as a reference prompter
makes none for a label absent from the reference.

The prompt is a ``box3d``: ``extent`` = the box's first and last slice along
the slicing axis, key slice = (first + last) // 2, 2D box = the box's
in-plane voxel range (the same on every slice, so ``per_slice`` gives a slice
model exactly the drawn box on each slice of the extent).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from mskbench.errors import PluginError
from mskbench.types import LabelInfo, Prompt, Subject

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = ("subject_id", "label", "x1", "y1", "z1", "x2", "y2", "z2")
SPACES: tuple[str, ...] = ("RAS", "LPS")
#: a voxel centre this close (in voxels) to a face of the box counts as inside (float round-off of the affine)
FACE_TOLERANCE = 1e-4
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class BoxRow:
    """One row: the box's corners in RAS mm; ``line`` is its line number in the file, for messages."""

    subject_id: str
    label: str
    corner1: tuple[float, float, float]
    corner2: tuple[float, float, float]
    line: int


def _number(text: str | None, column: str, where: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        raise PluginError(f"{where}: {column} = {text!r} is not a number; write millimetres like -12.5") from None
    if not math.isfinite(value):
        raise PluginError(f"{where}: {column} = {text!r} is not a finite number; write millimetres like -12.5")
    return value


def read_box_file(path: str | Path, space: str) -> list[BoxRow]:
    """Every row of a box file with its corners in RAS mm; anything malformed is one line naming file and row."""
    if space not in SPACES:
        raise PluginError(f"space: {space!r} is not one of {', '.join(SPACES)}")
    path = Path(path)
    if not path.is_file():
        raise PluginError(f"{path}: box file not found; give the CSV of boxes as the prompter's `path`")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise PluginError(f"{path}: line 1 lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                              f"the header must be {','.join(COLUMNS)}")
        rows: list[BoxRow] = []
        seen: dict[tuple[str, str], int] = {}
        for record in reader:
            where = f"{path}: line {reader.line_num}"
            subject_id, label = (record.get("subject_id") or "").strip(), (record.get("label") or "").strip()
            if not subject_id or not label:
                raise PluginError(f"{where}: subject_id and label must not be empty")
            if (subject_id, label) in seen:
                raise PluginError(f"{where}: a second box for subject '{subject_id}' label '{label}' "
                                  f"(the first is on line {seen[subject_id, label]}); keep one")
            seen[subject_id, label] = reader.line_num
            corners = [np.array([_number(record.get(f"{axis}{n}"), f"{axis}{n}", where) for axis in "xyz"])
                       for n in (1, 2)]
            if space == "LPS":
                corners = [_LPS_TO_RAS @ c for c in corners]
            rows.append(BoxRow(subject_id, label, tuple(map(float, corners[0])), tuple(map(float, corners[1])),
                               reader.line_num))
    if not rows:
        raise PluginError(f"{path}: no boxes; add rows {','.join(COLUMNS)}")
    return rows


def voxel_ranges(row: BoxRow, affine: np.ndarray, shape: Sequence[int]) -> tuple[list[tuple[int, int]], bool] | None:
    """The inclusive (first, last) voxel index per array axis whose centres lie in the box, clipped to the
    image, and whether clipping changed it; None when no voxel centre of the image lies inside."""
    corners = np.array([[(row.corner1, row.corner2)[pick][axis] for axis, pick in enumerate(choice)]
                        for choice in product((0, 1), repeat=3)])
    inverse = np.linalg.inv(np.asarray(affine, dtype=float))
    voxels = corners @ inverse[:3, :3].T + inverse[:3, 3]
    low, high = voxels.min(axis=0), voxels.max(axis=0)
    ranges, clipped = [], False
    for axis, size in enumerate(shape):
        first = math.ceil(low[axis] - FACE_TOLERANCE)
        last = math.floor(high[axis] + FACE_TOLERANCE)
        inside = (max(first, 0), min(last, int(size) - 1))
        if inside[0] > inside[1]:
            return None
        clipped = clipped or inside != (first, last)
        ranges.append(inside)
    return ranges, clipped


def label_ids_by_name(label_map: Mapping[int, LabelInfo]) -> dict[str, int]:
    """What the ``label`` column may hold: each label's name, or its id written as a number."""
    names = {info.name: label for label, info in label_map.items()}
    return {**{str(label): label for label in label_map}, **names}


class BoxFilePrompter:
    """``box3d`` prompts from a box file (module docstring); it never reads the reference."""

    produces = frozenset({"box3d"})
    reference_free = True

    def __init__(self, path: str, space: str) -> None:
        self.path = Path(path)
        self.rows = read_box_file(self.path, space)
        self.space = space

    def check_label_map(self, label_map: Mapping[int, LabelInfo]) -> None:
        """Raise one line naming the first row whose label is not in ``label_map``."""
        known = label_ids_by_name(label_map)
        for row in self.rows:
            if row.label not in known:
                raise PluginError(self._unknown_label(row, label_map))

    def _unknown_label(self, row: BoxRow, label_map: Mapping[int, LabelInfo]) -> str:
        listed = ", ".join(f"{label} ({info.name})" for label, info in sorted(label_map.items()))
        return (f"{self.path}: line {row.line}: label '{row.label}' is not a label of this dataset ({listed}); "
                "write one of their names or ids")

    def subject_prompts(self, subject: Subject, labels: Sequence[int], axis: int) -> list[Prompt]:
        """One box3d per requested label that has a row for this subject."""
        known = label_ids_by_name(subject.label_map)
        boxes: dict[int, BoxRow] = {}
        for row in (r for r in self.rows if r.subject_id == subject.id):
            if row.label not in known:
                raise PluginError(self._unknown_label(row, subject.label_map))
            boxes[known[row.label]] = row
        without = [subject.label_map[label].name for label in labels if label not in boxes]
        if without:
            log.warning("%s: no box for subject '%s' label%s %s; %s get no prompt", self.path, subject.id,
                        "s" if len(without) > 1 else "", ", ".join(without), "they" if len(without) > 1 else "it")
        prompts = []
        for label in (label for label in labels if label in boxes):
            prompts.append(self._prompt(boxes[label], label, subject, axis))
        return prompts

    def _prompt(self, row: BoxRow, label: int, subject: Subject, axis: int) -> Prompt:
        found = voxel_ranges(row, subject.affine, subject.volume.shape)
        if found is None:
            raise PluginError(
                f"{self.path}: line {row.line}: the box of subject '{subject.id}' label '{row.label}' holds no voxel "
                f"centre of the image; check the corners and that space = \"{self.space}\" is the convention "
                "they were written in"
            )
        ranges, clipped = found
        (row_first, row_last), (col_first, col_last) = (ranges[a] for a in range(3) if a != axis)
        first, last = ranges[axis]
        return Prompt(
            kind="box3d", label=int(label), prompter="", seed=0, clipped=clipped,
            box=(float(col_first), float(row_first), float(col_last), float(row_last)),
            slice_index=(first + last) // 2, extent=(first, last),
        )

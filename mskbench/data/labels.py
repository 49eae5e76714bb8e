"""Selecting and merging a subject's labels, as a suite's ``labels`` / ``merge`` ask.

Suites name labels by structure (``femoral_cartilage``) or by tissue class
(``cartilage``), and may merge structures into a new one (all vertebrae into
``vertebrae``). The result is a Subject whose label map and label volume both
reflect the choice, so nothing downstream needs to know it happened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from mskbench.data.subjects import label_dtype
from mskbench.errors import DataError
from mskbench.params import suggest
from mskbench.types import LabelInfo, Subject, TissueClass

_TISSUES = {t.value for t in TissueClass}


def _resolve(names: Sequence[str], label_map: Mapping[int, LabelInfo], what: str) -> list[int]:
    """Label ids for structure or tissue names; unknown names raise with a suggestion."""
    by_name = {info.name: label_id for label_id, info in label_map.items()}
    ids: list[int] = []
    for name in names:
        if name in by_name:
            ids.append(by_name[name])
        elif name in _TISSUES:
            ids.extend(label_id for label_id, info in sorted(label_map.items()) if info.tissue == name)
        else:
            valid = sorted(by_name) + sorted(_TISSUES)
            raise DataError(
                f"{what}: unknown label '{name}'{suggest(name, valid)}; use a label name "
                f"({', '.join(sorted(by_name))}) or a tissue class ({', '.join(sorted(_TISSUES))})"
            )
    return list(dict.fromkeys(ids))


def select_labels(
    subject: Subject,
    include: Sequence[str] | None,
    merge: Mapping[str, Sequence[str]] | None,
) -> Subject:
    """Keep the ``include``d labels and add ``merge``d ones; everything else becomes background.

    ``include`` items are label names or tissue-class names (None keeps every
    label not consumed by a merge). ``merge`` maps a new name to existing
    label or tissue names; the new label gets the next free id and the
    members' tissue class when they all agree, else ``other``. Merged members
    are replaced by the merged label (a voxel has one label), also when
    ``include`` names them, e.g. through their tissue class.
    """
    label_map = subject.label_map
    merge = dict(merge or {})
    merged_ids: dict[str, list[int]] = {}
    for new_name, members in merge.items():
        if new_name in {info.name for info in label_map.values()}:
            raise DataError(f"merge.{new_name}: a label with that name already exists; choose a new name")
        ids = _resolve(list(members), label_map, f"merge.{new_name}")
        if not ids:
            raise DataError(f"merge.{new_name}: the members {list(members)} match no label of subject {subject.id}")
        merged_ids[new_name] = ids
    consumed = {label_id for ids in merged_ids.values() for label_id in ids}
    if include is None:
        kept = [label_id for label_id in sorted(label_map) if label_id not in consumed]
    else:
        kept = [i for i in _resolve(list(include), label_map, "labels") if i not in consumed]
        if not kept and not merged_ids:
            raise DataError(f"labels {list(include)}: no label of subject {subject.id} matches; check the names")

    new_map: dict[int, LabelInfo] = {label_id: label_map[label_id] for label_id in kept}
    next_id = max(label_map, default=0) + 1
    lookup = np.zeros(max(label_map, default=0) + 1, dtype=np.int64)
    for label_id in kept:
        lookup[label_id] = label_id
    for new_name, ids in merged_ids.items():
        tissues = {label_map[i].tissue for i in ids}
        tissue = tissues.pop() if len(tissues) == 1 else TissueClass.OTHER
        new_map[next_id] = LabelInfo(next_id, new_name, TissueClass(tissue))
        lookup[ids] = next_id
        next_id += 1
    labels = lookup[np.clip(subject.labels, 0, len(lookup) - 1)]
    labels[subject.labels >= len(lookup)] = 0
    out_dtype = label_dtype(max(new_map, default=0))
    return dataclasses.replace(subject, labels=labels.astype(out_dtype), label_map=dict(sorted(new_map.items())))


_TISSUE_WORDS: tuple[tuple[TissueClass, tuple[str, ...]], ...] = (
    (TissueClass.CARTILAGE, ("cartilage",)),
    (TissueClass.MENISCUS, ("menisc",)),
    (TissueClass.DISC, ("disc", "ivd")),
    (TissueClass.NERVE, ("nerve", "spinal_cord", "cord", "neurovascular")),
    (TissueClass.FAT, ("fat",)),
    (
        TissueClass.MUSCLE,
        ("muscle", "autochthon", "iliopsoas", "psoas", "gluteus", "quadriceps", "sartorius", "compartment",
         "deltoid", "spinatus", "subscapularis", "erector", "multifidus", "hamstring", "adductor", "gracilis"),
    ),
    (
        TissueClass.BONE,
        ("bone", "femur", "tibia", "fibula", "patella", "vertebra", "sacrum", "hip", "humerus", "scapula",
         "clavicula", "acetabul", "pelvis", "rib", "radius", "ulna", "tarsal", "carpal", "phalang", "marrow", "cortex"),
    ),
)


def guess_tissue(name: str) -> TissueClass:
    """Tissue class from a structure name ('femoral_cartilage' -> cartilage), else OTHER.

    Used only for label maps that come with names but no tissue classes
    (nnU-Net dataset.json); a dataset can always state the classes itself.
    """
    key = name.lower().replace(" ", "_").replace("-", "_")
    for tissue, words in _TISSUE_WORDS:
        if any(word in key for word in words):
            return tissue
    return TissueClass.OTHER


def label_map_from_names(names: Mapping[int, str], tissues: Mapping[str, str] | None = None) -> dict[int, LabelInfo]:
    """A label map from id -> name, with tissue classes given or guessed from the names."""
    tissues = dict(tissues or {})
    out: dict[int, LabelInfo] = {}
    for label_id, name in sorted(names.items()):
        tissue = tissues.get(name)
        if tissue is not None and tissue not in _TISSUES:
            raise DataError(f"tissues.{name}: '{tissue}' is not a tissue class{suggest(tissue, sorted(_TISSUES))}")
        out[int(label_id)] = LabelInfo(int(label_id), name, TissueClass(tissue) if tissue else guess_tissue(name))
    return out


#: What to do with mask values the label map does not list (the `unlisted_labels` dataset param).
UNLISTED_LABEL_POLICIES = ("error", "background")


def unlisted_label_values(labels: np.ndarray, label_map: Mapping[int, LabelInfo]) -> list[int]:
    """Non-zero integer values of ``labels`` that ``label_map`` does not list, ascending."""
    present = np.unique(np.asarray(labels))
    return sorted(int(v) for v in present if v != 0 and float(v).is_integer() and int(v) not in label_map)


def check_unlisted_policy(policy: str) -> str:
    """``policy`` when it is one of UNLISTED_LABEL_POLICIES, else a one-line DataError."""
    if policy not in UNLISTED_LABEL_POLICIES:
        raise DataError(
            f"unlisted_labels '{policy}': use one of {', '.join(UNLISTED_LABEL_POLICIES)}"
            f"{suggest(str(policy), list(UNLISTED_LABEL_POLICIES))}"
        )
    return policy


def apply_unlisted_labels(
    labels: np.ndarray, label_map: Mapping[int, LabelInfo], policy: str, where: str, names_from: str = "label_names"
) -> np.ndarray:
    """Apply the ``unlisted_labels`` policy to a mask read from a file.

    ``error`` (the default) refuses a mask holding values the label map does
    not name, with one line naming those values and both fixes; ``background``
    sets them to 0, so a multi-label mask (e.g. TotalSegmentator's 23 labels)
    can be used with names for the wanted labels only. Returns ``labels``
    itself when nothing is unlisted; ``names_from`` says where names are
    given (for the message). Non-integer values are left for
    :func:`mskbench.data.subjects.check_label_values` to refuse.
    """
    check_unlisted_policy(policy)
    unknown = unlisted_label_values(labels, label_map)
    if not unknown:
        return labels
    if policy == "background":
        out = np.array(labels, copy=True)
        out[np.isin(out, unknown)] = 0
        return out
    shown = ", ".join(str(v) for v in unknown[:20]) + (f" (+{len(unknown) - 20} more)" if len(unknown) > 20 else "")
    listed = ", ".join(str(k) for k in sorted(label_map)) or "none"
    raise DataError(
        f"{where}: label values {shown} are in the mask but not in the label map (listed: {listed}); "
        f"name them in {names_from}, or set unlisted_labels = \"background\" in the dataset params to treat them as background"
    )

"""The slices a recipe trains and validates on: the suite's datasets, splits and label selection, seeded subsets.

Subjects come from each dataset plugin's own splits (``train_split`` /
``val_split``). ``subjects = k`` takes the first k subjects of the train
split's ids, sorted, then permuted by ``numpy.random.default_rng(seed)``:
the subsets of one seed are nested (the 5 subjects are among the 10, which
are among the 20), so a subject-count ablation only ever adds subjects.
Validation uses every subject of the val split.

Each subject is loaded and prepared exactly as a suite prepares it
(:func:`mskbench.execution.subject_task.load_prepared`: label selection and
merges, intensity clipping to uint8, small-object removal, labelled slices),
and every (slice, label) with reference pixels is one sample.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from mskbench.data.preprocess import take_slice
from mskbench.errors import DataError, SuiteError
from mskbench.execution.subject_task import load_prepared
from mskbench.manifest import sha256_of
from mskbench.plan import PlannedDataset, construct, preprocess_config, selected_label_map
from mskbench.plugin_manager import Registry
from mskbench.segmenters.cache import image_content_hash
from mskbench.training.recipe import Recipe, TrainDataset
from mskbench.types import Subject


@dataclass(frozen=True)
class Sample:
    """One training target: a uint8 slice and the bool mask of one label on it."""

    dataset: str
    subject: str
    slice_index: int
    label: int
    image: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class TrainingData:
    """The samples of each split and, for the card, {split: {dataset: {subject id: data sha256}}}."""

    train: list[Sample]
    val: list[Sample]
    subjects: dict[str, dict[str, dict[str, str]]]
    datasets: dict[str, dict]  # name -> {"plugin", "params"} (resolved params)


def plan_dataset(dataset: TrainDataset, index: int, registry: Registry) -> PlannedDataset:
    """The dataset entry planned as a suite plans it (plugin, resolved params, preprocessing, label map)."""
    entry, where = dataset.entry, f"datasets[{index}]"
    info = registry.get("dataset", entry.plugin, where)
    params = registry.resolve_params("dataset", entry.plugin, entry.params, where)
    source = construct(info, params, where)
    return PlannedDataset(entry, info, params, source, preprocess_config(entry), selected_label_map(entry, source.label_map))


def choose_subjects(ids: list[str], count: int | str, seed: int) -> list[str]:
    """The documented seeded subset (module docstring), in the permuted order."""
    order = [str(v) for v in np.random.default_rng(seed).permutation(sorted(ids))]
    return order if count == "all" else order[: int(count)]


def split_subjects(dataset: TrainDataset, planned: PlannedDataset, index: int, seed: int) -> tuple[list[str], list[str]]:
    """(train ids, val ids) of one dataset; too few subjects is one line naming the key."""
    where = f"datasets[{index}] ({dataset.entry.name})"
    split_ids = lambda split: planned.dataset.subject_ids(None if split == "all" else split)  # noqa: E731
    train_ids, val_ids = split_ids(dataset.train_split), split_ids(dataset.val_split)
    if dataset.subjects != "all" and dataset.subjects > len(train_ids):
        raise SuiteError(f"{where}.subjects: {dataset.subjects} is more than the {len(train_ids)} subjects of its "
                         f"'{dataset.train_split}' split; choose at most {len(train_ids)} or \"all\"")
    chosen = choose_subjects(train_ids, dataset.subjects, seed)
    overlap = sorted(set(chosen) & set(val_ids))
    if overlap:
        raise SuiteError(f"{where}: subjects {', '.join(overlap[:3])} are in both train_split "
                         f"'{dataset.train_split}' and val_split '{dataset.val_split}'; choose disjoint splits")
    return chosen, val_ids


def subject_sha256(subject: Subject) -> str:
    """The data a subject id stood for: its source files' hashes in order, else its generated arrays'."""
    digest = hashlib.sha256()
    if subject.source_files:
        for path in subject.source_files:
            digest.update(sha256_of(path).encode())
    else:
        digest.update(image_content_hash(subject.volume).encode())
        digest.update(image_content_hash(subject.labels).encode())
    return digest.hexdigest()


def evenly_spaced(indices: list[int], count: int | None) -> list[int]:
    """``count`` of ``indices`` spread from first to last (all when count is None or larger)."""
    if count is None or count >= len(indices):
        return list(indices)
    picks = np.linspace(0, len(indices) - 1, count).round().astype(int)
    return [indices[i] for i in picks]


def subject_samples(planned: PlannedDataset, subject_id: str, slices: int | None) -> tuple[str, Iterator[Sample]]:
    """(data sha256, samples) of one subject, prepared as a suite prepares it."""
    subject, prepared = load_prepared(planned, subject_id)
    axis, name = prepared.axis, planned.entry.name

    def samples() -> Iterator[Sample]:
        for k in evenly_spaced(prepared.slice_indices, slices):
            image, labels = take_slice(prepared.image, axis, k), take_slice(prepared.labels, axis, k)
            for label in sorted(prepared.subject.label_map):
                mask = labels == label
                if mask.any():
                    yield Sample(name, subject_id, k, label, np.ascontiguousarray(image), mask)

    return subject_sha256(subject), samples()


@dataclass(frozen=True)
class Selection:
    """The subjects a recipe chose, per dataset, before anything is loaded."""

    dataset: TrainDataset
    planned: PlannedDataset
    train_ids: list[str]
    val_ids: list[str]


def select_subjects(recipe: Recipe, registry: Registry) -> list[Selection]:
    """Plan each dataset and choose its subjects; no subject is loaded (bad input fails here, fast)."""
    selections = []
    for i, dataset in enumerate(recipe.datasets):
        planned = plan_dataset(dataset, i, registry)
        selections.append(Selection(dataset, planned, *split_subjects(dataset, planned, i, recipe.seed)))
    if not any(s.train_ids for s in selections if s.dataset.weight > 0):
        raise SuiteError("datasets: no training subjects: every weighted dataset's train split is empty after the "
                         "subject choice; check the splits and `subjects`")
    if not any(s.val_ids for s in selections):
        raise SuiteError("datasets: no validation subjects in any dataset's val_split; early stopping and the best "
                         "epoch need some: choose another val_split or more subjects")
    return selections


def load_training_data(selections: list[Selection], on_subject: Callable[[], None] = lambda: None) -> TrainingData:
    """Every sample of the chosen train and val subjects; ``on_subject`` is called after each subject."""
    train: list[Sample] = []
    val: list[Sample] = []
    hashes: dict[str, dict[str, dict[str, str]]] = {"train": {}, "val": {}}
    for selection in selections:
        name = selection.dataset.entry.name
        for split, subject_ids, into in (("train", selection.train_ids, train), ("val", selection.val_ids, val)):
            hashes[split][name] = {}
            for subject_id in subject_ids:
                digest, samples = subject_samples(selection.planned, subject_id, selection.dataset.slices_per_subject)
                hashes[split][name][subject_id] = digest
                into.extend(samples)
                on_subject()
    for split, samples in (("train", train), ("val", val)):
        if not samples:
            raise DataError(f"the {split} subjects have no labelled slice after preprocessing; check `labels` and "
                            "`preprocess` of the recipe's datasets")
    datasets = {s.dataset.entry.name: {"plugin": s.dataset.entry.plugin, "params": s.planned.params}
                for s in selections}
    return TrainingData(train, val, hashes, datasets)

"""`spider`: SPIDER lumbar spine MRI (van der Graaf et al., Sci Data 2024).

Published layout (Zenodo record 10159290)::

    root/images/<patient>_<sequence>.mha    sequence: t1, t2, t2_SPACE
    root/masks/<patient>_<sequence>.mha
    root/overview.csv                        one row per series: new_file_name, subset, sex, age, scanner fields

Mask values (the SPIDER challenge convention): 1-25 vertebrae numbered from
the bottom (the most caudal fully visible vertebra is 1), 100 spinal canal,
101-125 partially visible vertebrae, 201-225 intervertebral discs numbered
from the bottom (201 is the lowest disc). Each disc level is its own label,
which the disc-height biomarker needs; merge them in the suite to score all
discs as one structure.
"""

from __future__ import annotations

from typing import Any

from mskbench.data.metadata import acquisition_from_record, demographics_from_record
from mskbench.data.readers import read_volume
from mskbench.data.subjects import build_subject
from mskbench.errors import DataError
from mskbench.params import Param, suggest
from mskbench.types import LabelInfo, Subject, TissueClass
from mskbench_builtins.datasets.base import FileDataset, check_root, read_table, root_param, split_params

SEQUENCES = ("t1", "t2", "t2_SPACE")


def _spider_label_map() -> dict[int, LabelInfo]:
    labels = {i: LabelInfo(i, f"vertebra_{i}", TissueClass.BONE) for i in range(1, 26)}
    labels[100] = LabelInfo(100, "spinal_canal", TissueClass.OTHER)
    labels.update({100 + i: LabelInfo(100 + i, f"vertebra_partial_{i}", TissueClass.BONE) for i in range(1, 26)})
    labels.update({200 + i: LabelInfo(200 + i, f"disc_{i}", TissueClass.DISC) for i in range(1, 26)})
    return labels


LABEL_MAP = _spider_label_map()


class Spider(FileDataset):
    """One SPIDER sequence per patient; subject id = the series file stem, e.g. ``12_t2``."""

    anatomy = "spine"

    def __init__(self, root: str, sequence: str = "t2", **split: Any) -> None:
        super().__init__(**split)
        self.root = check_root(root, "the folder with images/, masks/ and overview.csv")
        if sequence not in SEQUENCES:
            raise DataError(f"sequence '{sequence}': use one of {', '.join(SEQUENCES)}{suggest(sequence, list(SEQUENCES))}")
        self.sequence = sequence
        self.label_map = dict(LABEL_MAP)
        self._overview: dict[str, dict[str, str]] = {}

    def _scan(self) -> dict[str, str | None]:
        overview = self.root / "overview.csv"
        if overview.is_file():
            self._overview = {row.get("new_file_name", ""): row for row in read_table(overview)}
        strata: dict[str, str | None] = {}
        for image in sorted((self.root / "images").glob(f"*_{self.sequence}.mha")):
            stem = image.name[: -len(".mha")]
            if stem.split("_", 1)[1] != self.sequence:
                continue  # t2 must not pick up t2_SPACE
            strata[stem] = demographics_from_record(self._overview.get(stem, {})).sex
        return strata

    def _official_splits(self) -> dict[str, str] | None:
        if not self._overview:
            return None
        return {sid: self._overview.get(sid, {}).get("subset", "") for sid in self._strata}

    def _read(self, subject_id: str) -> Subject:
        image_path = self.root / "images" / f"{subject_id}.mha"
        mask_path = self.root / "masks" / f"{subject_id}.mha"
        if not mask_path.is_file():
            raise DataError(f"{mask_path}: mask for {image_path.name} is missing; unzip masks.zip next to images/")
        record = self._overview.get(subject_id, {})
        return build_subject(
            subject_id,
            read_volume(image_path),
            read_volume(mask_path),
            self.label_map,
            acquisition=acquisition_from_record(record, sequence=self.sequence),
            demographics=demographics_from_record(record),
            source_files=(str(image_path), str(mask_path)),
        )

    def __repr__(self) -> str:
        return f"Spider({self.root}, {self.sequence})"


PARAMS = {
    "root": root_param("images/, masks/ and overview.csv from Zenodo record 10159290"),
    "sequence": Param("str", default="t2", choices=list(SEQUENCES), help="Which series of each patient to read."),
    **split_params("sagittal"),
}


def make_spider(**params: Any) -> Spider:
    return Spider(**params)

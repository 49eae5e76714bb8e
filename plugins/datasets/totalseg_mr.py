"""`totalseg_mr`: the TotalSegmentator MRI dataset (Akinci D'Antonoli et al., Radiology 2025).

Published layout (Zenodo record 14710732)::

    root/meta.csv                            image_id;age;gender;...;split;... (';'-separated)
    root/s0001/mri.nii.gz
    root/s0001/segmentations/<structure>.nii.gz   one binary mask per structure

The structures are merged into one label volume with TotalSegmentator's
``total_mr`` class ids (``totalsegmentator.map_to_binary.class_map``), so a
volume segmented by the TotalSegmentator tool and this dataset agree. The
``labels`` param picks the subset; the default is the musculoskeletal one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mskbench.data.labels import guess_tissue
from mskbench.data.metadata import acquisition_from_record, demographics_from_record
from mskbench.data.readers import read_volume
from mskbench.data.subjects import build_subject, check_same_grid, label_dtype
from mskbench.errors import DataError
from mskbench.params import Param, suggest
from mskbench.types import LabelInfo, Subject
from mskbench_builtins.datasets.base import FileDataset, check_root, read_table, root_param, split_params

TOTAL_MR = {
    1: "spleen", 2: "kidney_right", 3: "kidney_left", 4: "gallbladder", 5: "liver", 6: "stomach", 7: "pancreas",
    8: "adrenal_gland_right", 9: "adrenal_gland_left", 10: "lung_left", 11: "lung_right", 12: "esophagus",
    13: "small_bowel", 14: "duodenum", 15: "colon", 16: "urinary_bladder", 17: "prostate", 18: "sacrum",
    19: "vertebrae", 20: "intervertebral_discs", 21: "spinal_cord", 22: "heart", 23: "aorta",
    24: "inferior_vena_cava", 25: "portal_vein_and_splenic_vein", 26: "iliac_artery_left", 27: "iliac_artery_right",
    28: "iliac_vena_left", 29: "iliac_vena_right", 30: "humerus_left", 31: "humerus_right", 32: "scapula_left",
    33: "scapula_right", 34: "clavicula_left", 35: "clavicula_right", 36: "femur_left", 37: "femur_right",
    38: "hip_left", 39: "hip_right", 40: "gluteus_maximus_left", 41: "gluteus_maximus_right",
    42: "gluteus_medius_left", 43: "gluteus_medius_right", 44: "gluteus_minimus_left", 45: "gluteus_minimus_right",
    46: "autochthon_left", 47: "autochthon_right", 48: "iliopsoas_left", 49: "iliopsoas_right", 50: "brain",
}
IDS = {name: label_id for label_id, name in TOTAL_MR.items()}
MSK_LABELS = [TOTAL_MR[i] for i in (18, 19, 20, 21, *range(30, 50))]


def total_mr_label_map(names: list[str]) -> dict[int, LabelInfo]:
    """The total_mr label map restricted to ``names`` (tissue classes from the names)."""
    out: dict[int, LabelInfo] = {}
    for name in names:
        if name not in IDS:
            raise DataError(f"labels: '{name}' is not a total_mr structure{suggest(name, list(IDS))}")
        out[IDS[name]] = LabelInfo(IDS[name], name, guess_tissue(name))
    return dict(sorted(out.items()))


class TotalSegMR(FileDataset):
    """TotalSegmentator MRI subjects with the chosen subset of structures."""

    def __init__(self, root: str, labels: list[str] | None = None, **split: Any) -> None:
        super().__init__(**split)
        self.root = check_root(root, "the folder with meta.csv and the sXXXX folders")
        self.label_map = total_mr_label_map(list(labels) if labels else MSK_LABELS)
        self._meta: dict[str, dict[str, str]] = {}

    def _scan(self) -> dict[str, str | None]:
        meta = self.root / "meta.csv"
        if meta.is_file():
            self._meta = {row.get("image_id", ""): row for row in read_table(meta)}
        return {
            folder.name: demographics_from_record(self._meta.get(folder.name, {})).sex
            for folder in sorted(self.root.iterdir())
            if folder.is_dir() and (folder / "mri.nii.gz").is_file()
        }

    def _official_splits(self) -> dict[str, str] | None:
        if not self._meta:
            return None
        return {sid: self._meta.get(sid, {}).get("split", "") for sid in self._strata}

    def _read(self, subject_id: str) -> Subject:
        folder = self.root / subject_id
        image = read_volume(folder / "mri.nii.gz")
        labels = np.zeros(image.array.shape, dtype=label_dtype(max(self.label_map, default=0)))
        sources = [str(folder / "mri.nii.gz")]
        for label_id, info in self.label_map.items():
            path = folder / "segmentations" / f"{info.name}.nii.gz"
            if not path.is_file():
                raise DataError(f"{path}: segmentation missing; restore it or drop '{info.name}' from the labels param")
            mask = read_volume(path)
            check_same_grid(image, mask, what=f"{info.name} mask")
            labels[(mask.array > 0) & (labels == 0)] = label_id
            sources.append(str(path))
        record = self._meta.get(subject_id, {})
        return build_subject(
            subject_id,
            image,
            labels,
            self.label_map,
            acquisition=acquisition_from_record(record),
            demographics=demographics_from_record(record),
            source_files=tuple(sources),
        )

    def __repr__(self) -> str:
        return f"TotalSegMR({self.root})"


PARAMS = {
    "root": root_param("meta.csv and the sXXXX subject folders from Zenodo record 14710732"),
    "labels": Param("list", default=MSK_LABELS, help="total_mr structures to read (default: the musculoskeletal ones)."),
    **split_params("axial"),
}


def make_totalseg_mr(**params: Any) -> TotalSegMR:
    return TotalSegMR(**params)

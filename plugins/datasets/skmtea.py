"""`skmtea`: SKM-TEA knee qDESS (Desai et al., NeurIPS Datasets & Benchmarks 2021).

Published layout (Stanford AIMI, dataset v1.0.0)::

    root/image_files/MTR_005.h5              keys: echo1, echo2 (X, Y, Z), seg (X, Y, Z, 6) one-hot
    root/annotations/v1.0.0/{train,val,test}.json
                                             "images": [{"scan_id", "file_name", "orientation", "voxel_spacing", ...}]
    root/all_metadata.csv                    optional, one row per scan (MTR_ID, scanner and patient fields)

HDF5 holds no geometry; the orientation (DOSMA codes such as ``["SI", "AP",
"LR"]``, each naming the direction an axis runs *towards* its second letter)
and voxel spacing come from the annotation JSON. The six ``seg`` channels
are, in order: patellar cartilage, femoral cartilage, medial and lateral
tibial cartilage, medial and lateral meniscus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.data.metadata import acquisition_from_record, demographics_from_record
from mskbench.data.readers import canonical_volume, read_hdf5
from mskbench.data.subjects import build_subject
from mskbench.errors import DataError
from mskbench.params import Param
from mskbench.types import LabelInfo, Subject, TissueClass
from mskbench_builtins.datasets.base import FileDataset, check_root, claim_subject_id, read_table, root_param, split_params

LABEL_MAP = {
    1: LabelInfo(1, "patellar_cartilage", TissueClass.CARTILAGE),
    2: LabelInfo(2, "femoral_cartilage", TissueClass.CARTILAGE),
    3: LabelInfo(3, "medial_tibial_cartilage", TissueClass.CARTILAGE),
    4: LabelInfo(4, "lateral_tibial_cartilage", TissueClass.CARTILAGE),
    5: LabelInfo(5, "medial_meniscus", TissueClass.MENISCUS),
    6: LabelInfo(6, "lateral_meniscus", TissueClass.MENISCUS),
}
_DIRECTION = {"R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1)}


def dosma_affine(orientation: list[str], spacing: list[float], where: str) -> np.ndarray:
    """Voxel -> RAS affine from DOSMA orientation codes ('LR' runs towards R) and spacing."""
    if len(orientation) != 3 or len(spacing) != 3:
        raise DataError(f"{where}: orientation {orientation} / voxel_spacing {spacing} must have three entries each")
    affine = np.eye(4)
    for axis, (code, step) in enumerate(zip(orientation, spacing, strict=True)):
        towards = str(code)[-1:].upper()
        if towards not in _DIRECTION or float(step) <= 0:
            raise DataError(f"{where}: orientation code '{code}' or spacing {step} is invalid; check the annotation file")
        affine[:3, axis] = np.array(_DIRECTION[towards], dtype=float) * float(step)
    return affine


def labels_from_one_hot(seg: np.ndarray, where: str) -> np.ndarray:
    """Label ids 1..C from a one-hot (X, Y, Z, C) array; overlapping channels are an error."""
    if seg.ndim != 4 or seg.shape[-1] != len(LABEL_MAP):
        raise DataError(f"{where}: 'seg' has shape {seg.shape}; expected (X, Y, Z, {len(LABEL_MAP)}) one-hot")
    present = seg > 0
    if (present.sum(axis=-1) > 1).any():
        raise DataError(f"{where}: 'seg' channels overlap; the one-hot mask is corrupt, re-download the file")
    return np.where(present.any(axis=-1), np.argmax(present, axis=-1) + 1, 0).astype(np.uint8)


class SkmTea(FileDataset):
    """SKM-TEA scans: one qDESS echo as the image and the six-class tissue mask."""

    anatomy = "knee"

    def __init__(self, root: str, echo: str = "echo1", annotation_version: str = "v1.0.0", **split: Any) -> None:
        super().__init__(**split)
        self.root = check_root(root, "the folder with image_files/ and annotations/")
        self.echo = echo
        self.annotation_version = annotation_version
        self.label_map = dict(LABEL_MAP)
        self._scans: dict[str, dict[str, Any]] = {}
        self._official: dict[str, str] = {}
        self._metadata: dict[str, dict[str, str]] = {}

    def _scan(self) -> dict[str, str | None]:
        folder = self.root / "annotations" / self.annotation_version
        sources: dict[str, Path] = {}  # scan id -> the annotation file that listed it; a second listing is an error
        for split in ("train", "val", "test"):
            path = folder / f"{split}.json"
            if not path.is_file():
                continue
            try:
                images = json.loads(path.read_text())["images"]
            except (OSError, ValueError, KeyError) as exc:
                raise DataError(f"{path}: cannot read the annotation file ({exc}); re-download it") from None
            for entry in images:
                if not isinstance(entry, dict) or not entry.get("scan_id"):
                    raise DataError(f"{path}: an entry of 'images' has no scan_id; re-download the annotation file")
                claim_subject_id(sources, str(entry["scan_id"]), path)
                self._scans[entry["scan_id"]] = entry
                self._official[entry["scan_id"]] = split
        if not self._scans:
            raise DataError(f"{folder}: no train/val/test.json; check annotation_version and the download")
        metadata = self.root / "all_metadata.csv"
        if metadata.is_file():
            self._metadata = {row.get("MTR_ID", ""): row for row in read_table(metadata)}
        return {
            scan_id: demographics_from_record(self._metadata.get(scan_id, {})).sex
            for scan_id in self._scans
            if (self.root / "image_files" / f"{scan_id}.h5").is_file()
        }

    def _official_splits(self) -> dict[str, str]:
        return dict(self._official)

    def _read(self, subject_id: str) -> Subject:
        import h5py

        entry = self._scans[subject_id]
        path = self.root / "image_files" / entry.get("file_name", f"{subject_id}.h5")
        affine = dosma_affine(entry.get("orientation", []), entry.get("voxel_spacing", []), str(path))
        image = read_hdf5(path, self.echo, affine)
        with h5py.File(path, "r") as handle:
            if "seg" not in handle:
                raise DataError(f"{path}: no 'seg' dataset; this scan has no tissue mask, use the image-only release")
            seg = handle["seg"][()]
        labels = canonical_volume(labels_from_one_hot(seg, str(path)), affine, str(path))
        record = self._metadata.get(subject_id, {})
        return build_subject(
            subject_id,
            image,
            labels,
            self.label_map,
            acquisition=acquisition_from_record(record, sequence="qDESS", acquisition_type="3D"),
            demographics=demographics_from_record(record),
            source_files=(str(path),),
        )

    def __repr__(self) -> str:
        return f"SkmTea({self.root})"


PARAMS = {
    "root": root_param("image_files/ and annotations/ of the SKM-TEA release"),
    "echo": Param("str", default="echo1", choices=["echo1", "echo2"], help="Which qDESS echo is the image."),
    "annotation_version": Param("str", default="v1.0.0", help="Sub-folder of annotations/ to read."),
    **split_params("sagittal"),
}


def make_skmtea(**params: Any) -> SkmTea:
    return SkmTea(**params)

"""`dicom`: one DICOM series folder per subject, with a mask file per subject.

Layout::

    root/<subject>/...           the DICOM files of one series (any names, any sub-folders)
    root/masks/<subject>.nii.gz  the label volume on the series' grid (.nii.gz, .nii, .mha or .nrrd)

The series is assembled by :func:`mskbench.data.dicom.read_dicom_series`
(slices ordered by position, never by file name) and canonicalised like
the mask, so both meet on the same RAS+ grid; acquisition parameters and
demographics come from the DICOM header.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mskbench.data.dicom import dicom_files, read_dicom_series
from mskbench.data.labels import check_unlisted_policy, label_map_from_names
from mskbench.data.metadata import demographics_from_record
from mskbench.data.readers import read_volume
from mskbench.data.subjects import build_subject
from mskbench.errors import DataError
from mskbench.params import Param
from mskbench.types import Subject
from mskbench_builtins.datasets.base import (
    UNLISTED_LABELS_PARAM,
    FileDataset,
    check_root,
    root_param,
    split_params,
    with_unlisted_labels,
)

MASK_SUFFIXES = (".nii.gz", ".nii", ".mha", ".nrrd")


class DicomFolders(FileDataset):
    """DICOM series folders plus mask files."""

    def __init__(
        self,
        root: str,
        label_names: dict[str, str],
        masks_dir: str = "masks",
        tissues: dict[str, str] | None = None,
        anatomy: str | None = None,
        unlisted_labels: str = "error",
        **split: Any,
    ) -> None:
        super().__init__(**split)
        self.unlisted_labels = check_unlisted_policy(unlisted_labels)  # mask values the label map does not list: error or background
        self.root = check_root(root, "the folder with one DICOM series folder per subject and masks/")
        self.masks_dir = masks_dir
        self.anatomy = anatomy
        if not label_names:
            raise DataError("label_names: give the mask's label ids and names, e.g. {\"1\" = \"femur\"}")
        try:
            names = {int(k): v for k, v in label_names.items()}
        except ValueError:
            raise DataError("label_names: keys must be label ids, e.g. {\"1\" = \"femur\"}") from None
        self.label_map = label_map_from_names(names, tissues)

    def _mask_path(self, subject_id: str) -> Path:
        found = [self.root / self.masks_dir / f"{subject_id}{suffix}" for suffix in MASK_SUFFIXES]
        found = [path for path in found if path.is_file()]
        if len(found) > 1:
            raise DataError(f"subject {subject_id} has two mask files, {found[0]} and {found[1]}; keep one")
        if found:
            return found[0]
        raise DataError(
            f"{self.root / self.masks_dir}: no mask for subject {subject_id}; add {subject_id}.nii.gz (or .mha/.nrrd)"
        )

    def _scan(self) -> dict[str, str | None]:
        import pydicom

        strata: dict[str, str | None] = {}
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and p.name != self.masks_dir):
            groups = dicom_files(folder)
            first = next(iter(groups.values()))[0]
            header = pydicom.dcmread(str(first), stop_before_pixels=True)
            strata[folder.name] = demographics_from_record({"PatientSex": header.get("PatientSex")}).sex
        return strata

    def _read(self, subject_id: str) -> Subject:
        series = read_dicom_series(self.root / subject_id)
        mask_path = self._mask_path(subject_id)
        mask = read_volume(mask_path)
        mask = with_unlisted_labels(mask, self.label_map, self.unlisted_labels, mask_path)
        return build_subject(
            subject_id,
            series.volume,
            mask,
            self.label_map,
            acquisition=series.acquisition,
            demographics=series.demographics,
            source_files=(*series.files, str(mask_path)),
        )

    def __repr__(self) -> str:
        return f"DicomFolders({self.root})"


PARAMS = {
    "root": root_param("one DICOM series folder per subject and a masks/ folder"),
    "label_names": Param("dict", help="Mask label id -> structure name, e.g. {\"1\" = \"femur\"}."),
    "masks_dir": Param("str", default="masks", help="Folder (under root) of the mask files."),
    "tissues": Param("dict", default={}, help="Label name -> tissue class, overriding the guess from the name."),
    "unlisted_labels": UNLISTED_LABELS_PARAM,
    "anatomy": Param("str", default="", help="Anatomy label for biomarker defaults."),
    **split_params("through_plane"),
}


def make_dicom(**params: Any) -> DicomFolders:
    params["anatomy"] = params.get("anatomy") or None
    return DicomFolders(**params)

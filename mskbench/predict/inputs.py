"""The studies `mskbench predict` reads: image files, DICOM series folders, or a dataset's subjects.

Each becomes a :class:`Study`: the image on the RAS+ grid every reader
produces, plus what is needed to write a mask back on the input's own grid
(the NIfTI file whose header is reused, or the DICOM series whose instances
a DICOM SEG references). No labels are read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mskbench.data.dicom import DicomSeries, dicom_files, read_dicom_series
from mskbench.data.readers import NIFTI_SUFFIXES, Volume, image_stem, read_volume
from mskbench.errors import DataError, UserError
from mskbench.types import Acquisition, Demographics


@dataclass(frozen=True)
class Study:
    """One input: ``volume`` is RAS+; ``nifti`` is the file whose header the mask reuses (None: build one
    from the volume's affine); ``dicom`` is the series a DICOM SEG references."""

    id: str
    source: str
    volume: Volume
    nifti: Path | None = None
    dicom: DicomSeries | None = None
    acquisition: Acquisition = Acquisition()
    demographics: Demographics = Demographics()
    anatomy: str | None = None


def _series_folder(folder: Path, series_uid: str | None) -> Study:
    if series_uid is None:
        groups = dicom_files(folder)
        if len(groups) > 1:
            listed = "; ".join(f"{uid or '<no uid>'} ({len(files)} files)" for uid, files in sorted(groups.items()))
            raise DataError(f"{folder}: holds {len(groups)} DICOM series ({listed}); choose one with --series UID")
    series = read_dicom_series(folder, series_uid)
    return Study(folder.name, str(folder), series.volume, dicom=series, acquisition=series.acquisition,
                 demographics=series.demographics)


def _study(path: Path, series_uid: str | None) -> Study:
    if not path.exists():
        raise DataError(f"{path}: not found; check the --input path")
    if path.is_dir():
        return _series_folder(path, series_uid)
    volume = read_volume(path)
    nifti = path if path.name.lower().endswith(NIFTI_SUFFIXES) else None
    return Study(image_stem(path), str(path), volume, nifti=nifti)


def file_studies(paths: Sequence[Path], series_uid: str | None) -> list[Study]:
    """Every ``--input``, read and checked before any model runs; two inputs with one output name are refused."""
    studies = [_study(Path(p), series_uid) for p in paths]
    seen: dict[str, str] = {}
    for study in studies:
        if study.id in seen:
            raise UserError(
                f"--input {study.source}: its outputs would be named '{study.id}' like those of {seen[study.id]}; "
                "rename one input or predict them into separate --out folders"
            )
        seen[study.id] = study.source
    return studies


def dataset_studies(planned: object, limit: int | None) -> Iterator[Study]:
    """A suite dataset's subjects (its split) as studies, one at a time; their labels are ignored."""
    from mskbench.runner import subject_ids

    for subject_id in subject_ids(planned, limit):  # type: ignore[arg-type]
        subject = planned.dataset.load(subject_id)  # type: ignore[attr-defined]
        source = subject.source_files[0] if subject.source_files else subject_id
        volume = Volume(subject.volume, tuple(subject.spacing), subject.affine, source, subject.stored_orientation)
        yield Study(subject_id, source, volume, acquisition=subject.acquisition, demographics=subject.demographics,
                    anatomy=subject.anatomy)

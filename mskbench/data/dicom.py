"""DICOM series discovery, slice ordering and geometry (pydicom).

pydicom reads single files; assembling them into a volume is left to the
caller. That assembly (group by SeriesInstanceUID, order by position along the
slice normal, spacing from the position step, affine from the orientation
cosines) is small and exactly specified by the DICOM standard (PS3.3
C.7.6.2.1.1), so it is written here instead of pulling in a converter such as
dcm2niix, and every step can raise a precise :class:`DataError`.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.data.metadata import acquisition_from_record, demographics_from_record
from mskbench.data.readers import Volume, canonical_volume
from mskbench.errors import DataError
from mskbench.types import Acquisition, Demographics

log = logging.getLogger(__name__)

_HEADER_FIELDS = (
    "EchoTime",
    "RepetitionTime",
    "FlipAngle",
    "MagneticFieldStrength",
    "Manufacturer",
    "MRAcquisitionType",
    "SliceThickness",
    "PixelSpacing",
    "SequenceName",
    "SeriesDescription",
    "PatientSex",
    "PatientAge",
    "PatientWeight",
)
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_POSITION_TOLERANCE = 0.01  # relative deviation of a slice step from the median


@dataclass(frozen=True)
class DicomSeries:
    """One DICOM series assembled into a canonical volume, with its header metadata."""

    volume: Volume
    acquisition: Acquisition
    demographics: Demographics
    series_uid: str
    files: tuple[str, ...]


@contextmanager
def _pydicom_quiet() -> Iterator[list[str]]:
    """Collect pydicom's warnings (it both warns and logs each one) instead of printing them.

    A truncated file shows up only as such a warning ("End of file reached
    before delimiter"), so the messages are returned for the caller to judge.
    """
    messages: list[str] = []

    class _Collect(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            messages.append(record.getMessage())
            return False

    pydicom_log = logging.getLogger("pydicom")
    collect = _Collect()
    pydicom_log.addFilter(collect)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
        messages.extend(str(w.message) for w in caught if str(w.message) not in messages)
    finally:
        pydicom_log.removeFilter(collect)


def _dcmread(path: Path, headers_only: bool) -> Any:
    """The dataset of one file; None when the file is not DICOM at all (no 'DICM' marker)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    with _pydicom_quiet() as problems:
        try:
            header = pydicom.dcmread(str(path), stop_before_pixels=headers_only)
        except InvalidDicomError:
            return None
        except Exception as exc:  # pydicom raises many types for broken files
            raise DataError(f"{path}: cannot read DICOM header ({_one_line(exc)}); re-export or remove the file") from None
    ended_early = [re.sub(r"\s*found in file .*$", "", m) for m in problems if "end of file" in m.lower()]
    if ended_early:
        raise DataError(
            f"{path}: truncated DICOM file: the data ends early ({ended_early[0]}); re-export the series or remove the file"
        )
    if not headers_only and "Rows" in header and not any(k in header for k in _PIXEL_KEYWORDS):
        raise DataError(f"{path}: truncated DICOM file: the pixel data is missing; re-export the series or remove the file")
    return header


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _is_image_header(header: Any) -> bool:
    """True for an image file, and for a file cut off before its SOP class was written.

    Non-image objects that share a series folder (structured reports,
    presentation states, key-object notes) name a SOP class without "Image"
    and are skipped; a header that stops before Rows but names an image SOP
    class (or none) is a truncated image.
    """
    if "Rows" in header:
        return True
    from pydicom.uid import UID

    sop_class = header.get("SOPClassUID") or getattr(header, "file_meta", {}).get("MediaStorageSOPClassUID")
    return not sop_class or "Image" in UID(str(sop_class)).name


def _meant_as_dicom(path: Path) -> bool:
    """Could this non-DICOM file be a damaged slice of the series (rather than a README or a thumbnail)?

    DICOM files are named *.dcm / *.ima, or carry no extension, or are named
    by UIDs whose last dot-part is a number; such a file that is empty or
    binary is reported as damaged. Hidden files, other extensions and text
    files are not part of any series.
    """
    name = path.name
    if name.startswith("."):
        return False
    suffix = path.suffix.lower()
    if suffix in (".dcm", ".ima"):
        return True
    if suffix and not suffix[1:].isdigit():
        return False
    with open(path, "rb") as handle:
        start = handle.read(512)
    if not start:
        return True
    try:
        text = start.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return not all(c.isprintable() or c in "\r\n\t" for c in text)


def dicom_files(folder: Path) -> dict[str, list[Path]]:
    """DICOM files under ``folder`` (recursively) grouped by SeriesInstanceUID.

    Files that are not DICOM (README, DICOMDIR, thumbnails, non-image DICOM
    objects) are skipped; a file that looks like a slice but cannot be read
    (cut to a few bytes, header cut short) is an error naming it, so a
    damaged slice never silently leaves a hole in the volume.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; give the folder that holds the DICOM series")
    groups: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name.upper() != "DICOMDIR"):
        header = _dcmread(path, headers_only=True)
        if header is None:
            if _meant_as_dicom(path):
                raise DataError(
                    f"{path}: not a readable DICOM file ({path.stat().st_size} bytes, no DICOM header); "
                    "it is truncated or damaged, re-export the series or remove the file"
                )
            log.debug("skipping non-DICOM file %s", path)
            continue
        if not _is_image_header(header):
            log.debug("skipping non-image DICOM file %s", path)
            continue
        if "Rows" not in header:
            raise DataError(
                f"{path}: truncated DICOM file: the header ends before the image size ({path.stat().st_size} bytes); "
                "re-export the series or remove the file"
            )
        groups[str(header.get("SeriesInstanceUID", "") or "")].append(path)
    if not groups:
        raise DataError(f"{folder}: no DICOM image files found; check the folder holds a DICOM series")
    return dict(groups)


def _float_list(header: Any, keyword: str, count: int, path: Path) -> np.ndarray:
    value = header.get(keyword)
    if value is None or len(value) != count:
        raise DataError(
            f"{path}: missing or malformed {keyword}; the slices cannot be placed in space, "
            "re-export the series with full geometry"
        )
    return np.array([float(v) for v in value], dtype=float)


def _pixels(header: Any, path: Path) -> np.ndarray:
    """Stored values through the modality LUT (RescaleSlope/Intercept), as float32."""
    from pydicom.pixels import apply_modality_lut

    try:
        with _pydicom_quiet():
            pixels = header.pixel_array
    except Exception as exc:
        reason = _one_line(exc)
        if "less than expected" in reason:
            raise DataError(f"{path}: truncated DICOM file: the pixel data ends early ({reason}); re-export it") from None
        raise DataError(f"{path}: pixel data cannot be decoded ({reason}); the file is truncated or corrupt, re-export it") from None
    if pixels.ndim != 2:
        raise DataError(f"{path}: multi-frame or colour DICOM ({pixels.shape}) is not supported; export single-frame slices")
    return np.asarray(apply_modality_lut(pixels, header), dtype=np.float32)


def read_dicom_series(folder: str | Path, series_uid: str | None = None) -> DicomSeries:
    """Read one DICOM series from a folder into a canonical (RAS+) volume.

    With several series in the folder, ``series_uid`` picks one; without it
    that is an error naming the series found. Slices are ordered by
    ImagePositionPatient projected on the normal of ImageOrientationPatient,
    never by file name or InstanceNumber, and the through-plane spacing is
    the position step (SliceThickness is only used for a single slice).
    """
    folder = Path(folder)
    groups = {"": [folder]} if folder.is_file() else dicom_files(folder)
    if series_uid is None:
        if len(groups) > 1:
            found = ", ".join(f"{uid or '<no uid>'} ({len(files)} files)" for uid, files in sorted(groups.items()))
            raise DataError(
                f"{folder}: mixed series in one folder ({found}); put each series in its own folder or choose one with series_uid"
            )
        series_uid = next(iter(groups))
    elif series_uid not in groups:
        raise DataError(f"{folder}: series {series_uid} not found; series present: {', '.join(sorted(groups))}")
    headers = [(path, _dcmread(path, headers_only=False)) for path in groups[series_uid]]
    headers = [(path, header) for path, header in headers if header is not None]
    if not headers:
        raise DataError(f"{folder}: no readable DICOM file; check the files are DICOM")
    return _assemble(folder, series_uid, headers)


def _assemble(folder: Path, series_uid: str, headers: list[tuple[Path, Any]]) -> DicomSeries:
    first_path, first = headers[0]
    orientation = _float_list(first, "ImageOrientationPatient", 6, first_path)
    row_cosine, col_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, col_cosine)
    pixel_spacing = _float_list(first, "PixelSpacing", 2, first_path)  # (between rows, between columns)
    if not np.all(pixel_spacing > 0):
        raise DataError(f"{first_path}: PixelSpacing {tuple(pixel_spacing)} is not positive; fix the header")
    shape = (int(first.Rows), int(first.Columns))
    positions = []
    for path, header in headers:
        if not np.allclose(_float_list(header, "ImageOrientationPatient", 6, path), orientation, atol=1e-4):
            raise DataError(f"{path}: ImageOrientationPatient differs from {first_path}; the folder mixes series, split it")
        if (int(header.Rows), int(header.Columns)) != shape:
            raise DataError(f"{path}: image size differs from {first_path}; the folder mixes series, split it")
        positions.append(_float_list(header, "ImagePositionPatient", 3, path))
    positions_arr = np.array(positions)
    distances = positions_arr @ normal
    order = np.argsort(distances, kind="stable")
    distances = distances[order]
    headers = [headers[i] for i in order]
    positions_arr = positions_arr[order]
    step_vector = _slice_step(folder, first, distances, positions_arr, normal)

    volume = np.stack([_pixels(header, path).T for path, header in headers], axis=-1)  # (column, row, slice)
    affine_lps = np.eye(4)
    affine_lps[:3, 0] = row_cosine * pixel_spacing[1]  # along a row: column index grows
    affine_lps[:3, 1] = col_cosine * pixel_spacing[0]  # down a column: row index grows
    affine_lps[:3, 2] = step_vector
    affine_lps[:3, 3] = positions_arr[0]
    affine_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps
    files = tuple(str(path) for path, _ in headers)
    record = {key: first.get(key) for key in _HEADER_FIELDS}
    for key in ("PatientSex", "PatientAge", "PatientWeight"):
        record[key] = getattr(first, key, None)
    return DicomSeries(
        volume=canonical_volume(volume, affine_ras, str(folder)),
        acquisition=acquisition_from_record(record),
        demographics=demographics_from_record(record),
        series_uid=series_uid,
        files=files,
    )


def _slice_step(folder: Path, header: Any, distances: np.ndarray, positions: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """The vector from one slice to the next, checked for duplicates and gaps."""
    if len(distances) == 1:
        thickness = header.get("SpacingBetweenSlices") or header.get("SliceThickness")
        if not thickness or float(thickness) <= 0:
            raise DataError(f"{folder}: single slice without SliceThickness; the through-plane spacing is unknown, fix the header")
        return normal * float(thickness)
    steps = np.diff(distances)
    median = float(np.median(steps))
    if median <= 1e-6 or np.any(steps <= 1e-6):
        raise DataError(f"{folder}: two slices share one position; the folder holds duplicate files or several series, split it")
    if np.any(np.abs(steps - median) > _POSITION_TOLERANCE * median + 1e-3):
        raise DataError(
            f"{folder}: slice positions are not evenly spaced (steps {steps.min():.3g}..{steps.max():.3g} mm); "
            "a slice is missing or the folder mixes series"
        )
    return (positions[-1] - positions[0]) / (len(positions) - 1)

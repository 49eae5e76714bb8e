"""Read image and label files into canonical (RAS+) arrays with spacing in mm.

One entry point, :func:`read_volume`, used by dataset plugins and by the
file-level CLIs (`metrics compute`, `biomarkers compute`, `data info`). It
reads NIfTI (nibabel), MHA/NRRD (SimpleITK) and DICOM series folders
(pydicom, see :mod:`mskbench.data.dicom`); HDF5 files carry no geometry, so
they go through :func:`read_hdf5` with an affine from the dataset's metadata.
Every reader ends in :func:`canonical_volume`, so all formats agree on axis
order and orientation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.errors import DataError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
SITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
HDF5_SUFFIXES = (".h5", ".hdf5")
DICOM_SUFFIXES = (".dcm", ".ima")


def image_stem(path: str | Path) -> str:
    """A NIfTI/MHA/NRRD file's whole name less exactly one image ending: what names its subject or case.

    ``s1.v2.nii.gz`` is ``s1.v2`` (never ``s1``); a name with no known ending
    keeps its full name, so two files never share a stem by accident.
    """
    name = Path(path).name
    for suffix in NIFTI_SUFFIXES + SITK_SUFFIXES:  # no ending is the tail of another, so order does not matter
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass(frozen=True)
class Volume:
    """A 3D array in RAS+ orientation; ``spacing`` in mm, array-axis order."""

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    path: str
    original_orientation: tuple[str, str, str]

    @property
    def orientation(self) -> tuple[str, str, str]:
        import nibabel as nib

        return tuple(nib.aff2axcodes(self.affine))


def canonical_volume(array: np.ndarray, affine: np.ndarray, path: str) -> Volume:
    """Reorient an (array, RAS affine) pair to the closest canonical RAS+ grid.

    nibabel's ``as_closest_canonical`` does the axis flips and permutations;
    the spacing is the column norms of the resulting affine.
    """
    import nibabel as nib

    array = np.asarray(array)
    if array.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {array.shape}; pass one 3D image per file")
    affine = np.asarray(affine, dtype=float)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise DataError(f"{path}: the image affine is missing or degenerate; fix the header's spacing and orientation")
    original = tuple(nib.aff2axcodes(affine))
    canonical = nib.as_closest_canonical(nib.Nifti1Image(array, affine))
    return _volume(np.asanyarray(canonical.dataobj), canonical.affine, path, original)


def _volume(array: np.ndarray, affine: np.ndarray, path: str, original: tuple[str, ...]) -> Volume:
    if np.iscomplexobj(array):  # every reader ends here: never let a cast drop the imaginary part later
        raise DataError(
            f"{path}: the image holds complex values ({array.dtype}); mskbench reads real-valued images, "
            "save the magnitude (or the real part) as a real image"
        )
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise DataError(f"{path}: missing or invalid voxel spacing {spacing}; fix the header")
    return Volume(np.asarray(array), spacing, np.array(affine, dtype=float), str(path), original)  # type: ignore[arg-type]


@contextmanager
def _nibabel_quiet() -> Iterator[None]:
    """Silence nibabel's header-fix log lines (printed twice, once by its own handler):
    :func:`_check_nifti_header` reports the same problems as one error line."""
    import nibabel.imageglobals

    logger = nibabel.imageglobals.logger
    disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = disabled


def _read_nifti(path: Path) -> Volume:
    import nibabel as nib

    try:
        with _nibabel_quiet():
            image = nib.load(str(path))
            raw = _raw_nifti_header(path, type(image.header))
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise DataError(f"{path}: cannot read as NIfTI ({exc}); check the file is complete") from None
    _check_nifti_header(path, image, raw)
    try:
        with _nibabel_quiet():
            original = tuple(nib.aff2axcodes(image.affine))
            canonical = nib.as_closest_canonical(image)
            array = np.asanyarray(canonical.dataobj)
    except Exception as exc:
        raise DataError(f"{path}: cannot read as NIfTI ({exc}); the voxel data is cut short or damaged, check the file is complete") from None
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {array.shape}; pass one 3D image per file")
    return _volume(array, canonical.affine, str(path), original)


def _raw_nifti_header(path: Path, header_class: type) -> Any:
    """The header as stored, without the fixes nibabel applies (zero pixdim -> 1, negative -> abs)."""
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path)) as handle:
        return header_class.from_fileobj(handle, check=False)


def _check_nifti_header(path: Path, image: Any, raw: Any) -> None:
    """One precise error for a header that cannot describe a 3D real-valued volume in space.

    Checked before any voxel is read: the number of dimensions, the data
    type, the voxel sizes (when they define the geometry, i.e. without an
    sform) and the affine nibabel derives (sform, else qform, else pixdim).
    """
    shape = tuple(int(n) for n in image.shape)
    if len(shape) < 3:
        raise DataError(
            f"{path}: the header declares a {len(shape)}D image (shape {shape}); mskbench reads 3D volumes, "
            "save it as 3D (a single slice has shape (X, Y, 1))"
        )
    if len(shape) > 3 and any(n != 1 for n in shape[3:]):
        raise DataError(
            f"{path}: the header declares a {len(shape)}D image (shape {shape}); pass one 3D volume per file "
            "(split the extra dimensions into separate files)"
        )
    dtype = np.dtype(image.get_data_dtype())
    if dtype.fields is not None:
        raise DataError(f"{path}: the image holds RGB or structured voxels ({dtype}); save one scalar channel")
    sform_code, qform_code = int(raw["sform_code"]), int(raw["qform_code"])
    pixdim = tuple(float(d) for d in raw["pixdim"][1:4])
    if sform_code == 0:  # the voxel sizes define the geometry
        if any(not np.isfinite(d) or d < 0 for d in pixdim):
            raise DataError(f"{path}: invalid voxel spacing, pixdim {pixdim} must be positive; fix pixdim in the header")
        if any(d == 0 for d in pixdim):
            raise DataError(f"{path}: missing voxel spacing, pixdim {pixdim} has a zero; fix pixdim in the header")
    source = "sform" if sform_code > 0 else "qform" if qform_code > 0 else "pixdim"
    affine = np.asarray(image.affine, dtype=float)
    if not np.all(np.isfinite(affine)):
        raise DataError(
            f"{path}: the header's {source} affine contains NaN or infinite values; fix the orientation and spacing in the header"
        )
    columns = np.linalg.norm(affine[:3, :3], axis=0)
    if np.any(columns == 0) or abs(np.linalg.det(affine[:3, :3])) < 1e-6 * float(np.prod(columns)):
        raise DataError(
            f"{path}: the header's {source} affine is singular (two voxel axes coincide or one has zero length); "
            "fix the orientation and spacing in the header"
        )


def _read_sitk(path: Path) -> Volume:
    """MHA/NRRD via SimpleITK; its LPS direction matrix becomes a RAS affine."""
    import SimpleITK as sitk

    with _native_stderr() as printed:
        try:
            image = sitk.ReadImage(str(path))
        except Exception as exc:
            error: Exception | None = exc
        else:
            error = None
    if error is not None:
        raise DataError(f"{path}: cannot read ({_itk_reason(error, printed())}); check the file is complete and its header valid")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(
            f"{path}: {image.GetNumberOfComponentsPerPixel()} values per voxel (a vector or RGB image); export one scalar channel"
        )
    if image.GetDimension() != 3:
        raise DataError(
            f"{path}: the header declares a {image.GetDimension()}D image (size {image.GetSize()}); mskbench reads 3D volumes"
        )
    spacing = np.array(image.GetSpacing())
    if not np.all(spacing > 0):
        raise DataError(f"{path}: missing or invalid voxel spacing {tuple(spacing)}; fix ElementSpacing in the header")
    array = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))  # (z, y, x) -> (x, y, z) to match the affine
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * spacing
    affine[:3, 3] = image.GetOrigin()
    return canonical_volume(array, np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine, str(path))


@contextmanager
def _native_stderr() -> Iterator[Callable[[], str]]:
    """Capture what native code (ITK's MetaIO, NRRD readers) prints on file descriptor 2.

    Those lines would break the one-line error promise; their text goes into
    the error message instead. Yields a function returning the captured text
    (complete once the block has ended).
    """
    import os
    import sys
    import tempfile

    captured: list[str] = []
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no usable descriptor 2: nothing to capture
        yield lambda: ""
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lambda: "".join(captured)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def _itk_reason(exc: Exception, printed: str) -> str:
    """ITK's own explanation, on one line: what its reader printed, else the ITK ERROR line of the exception."""
    detail = " ".join(line.strip() for line in printed.splitlines() if line.strip())
    if not detail:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        itk = [re.sub(r"^ITK ERROR: \w+\(0x[0-9a-fA-F]+\): ", "", line) for line in lines if line.startswith("ITK ERROR")]
        detail = itk[0] if itk else (lines[-1] if lines else type(exc).__name__)
    return detail


def read_hdf5(path: str | Path, key: str, affine: np.ndarray) -> Volume:
    """One 3D dataset of an HDF5 file, placed in space by ``affine`` (voxel -> RAS mm)."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            if key not in handle:
                keys = ", ".join(sorted(handle.keys()))
                raise DataError(f"{path}: no dataset '{key}' (keys: {keys}); check the file is from the expected release")
            array = handle[key][()]
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{path}: cannot read as HDF5 ({exc}); check the file is complete") from None
    return canonical_volume(array, affine, str(path))


def _is_dicom_file(path: Path) -> bool:
    if path.name.lower().endswith(DICOM_SUFFIXES):
        return True
    with open(path, "rb") as handle:
        return handle.read(132)[128:132] == b"DICM"


def read_volume(path: str | Path) -> Volume:
    """Read a NIfTI, MHA, NRRD file or a DICOM series folder/file; raise :class:`DataError` on bad input."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path")
    name = path.name.lower()
    if path.is_dir() or (path.is_file() and not name.endswith(NIFTI_SUFFIXES + SITK_SUFFIXES + HDF5_SUFFIXES) and _is_dicom_file(path)):
        from mskbench.data.dicom import read_dicom_series

        return read_dicom_series(path).volume
    if name.endswith(NIFTI_SUFFIXES):
        return _read_nifti(path)
    if name.endswith(SITK_SUFFIXES):
        return _read_sitk(path)
    if name.endswith(HDF5_SUFFIXES):
        raise DataError(f"{path}: HDF5 files carry no geometry; read them through a dataset plugin such as skmtea")
    raise DataError(f"{path}: unsupported file type; use .nii, .nii.gz, .mha, .nrrd or a DICOM series folder")

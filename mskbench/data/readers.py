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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mskbench.errors import DataError

NIFTI_SUFFIXES = (".nii", ".nii.gz")
SITK_SUFFIXES = (".mha", ".mhd", ".nrrd", ".nhdr")
HDF5_SUFFIXES = (".h5", ".hdf5")
DICOM_SUFFIXES = (".dcm", ".ima")


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
    spacing = tuple(float(s) for s in np.linalg.norm(affine[:3, :3], axis=0))
    if not all(np.isfinite(s) and s > 0 for s in spacing):
        raise DataError(f"{path}: missing or invalid voxel spacing {spacing}; fix the header")
    return Volume(np.asarray(array), spacing, np.array(affine, dtype=float), str(path), original)  # type: ignore[arg-type]


def _read_nifti(path: Path) -> Volume:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        _check_raw_pixdim(path, type(image.header))
        original = tuple(nib.aff2axcodes(image.affine))
        canonical = nib.as_closest_canonical(image)
        array = np.asanyarray(canonical.dataobj)
    except DataError:
        raise
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise DataError(f"{path}: cannot read as NIfTI ({exc}); check the file is complete") from None
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        raise DataError(f"{path}: expected a 3D volume, got shape {array.shape}; pass one 3D image per file")
    zooms = canonical.header.get_zooms()[:3]
    if not all(np.isfinite(z) and z > 0 for z in zooms):
        raise DataError(f"{path}: missing or invalid voxel spacing {tuple(zooms)}; fix pixdim in the header")
    return _volume(array, canonical.affine, str(path), original)


def _check_raw_pixdim(path: Path, header_class: type) -> None:
    """Reject zero voxel sizes that nibabel would silently replace by 1 mm.

    The header is re-read without nibabel's fixes; zero pixdim matters only
    when no sform supplies the geometry instead.
    """
    from nibabel.openers import ImageOpener

    with ImageOpener(str(path)) as handle:
        raw = header_class.from_fileobj(handle, check=False)
    if int(raw["sform_code"]) == 0 and not all(float(d) > 0 for d in raw["pixdim"][1:4]):
        raise DataError(f"{path}: missing voxel spacing (pixdim {tuple(float(d) for d in raw['pixdim'][1:4])}); fix the header")


def _read_sitk(path: Path) -> Volume:
    """MHA/NRRD via SimpleITK; its LPS direction matrix becomes a RAS affine."""
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({exc}); check the file is complete") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise DataError(f"{path}: expected a 3D single-channel image, got {image.GetDimension()}D; export one 3D image")
    spacing = np.array(image.GetSpacing())
    if not np.all(spacing > 0):
        raise DataError(f"{path}: missing or invalid voxel spacing {tuple(spacing)}; fix ElementSpacing in the header")
    array = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))  # (z, y, x) -> (x, y, z) to match the affine
    affine = np.eye(4)
    affine[:3, :3] = np.array(image.GetDirection()).reshape(3, 3) * spacing
    affine[:3, 3] = image.GetOrigin()
    return canonical_volume(array, np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine, str(path))


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

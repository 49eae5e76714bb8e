"""Read image and label files into canonical (RAS+) arrays with spacing in mm.

One entry point, :func:`read_volume`, used by dataset plugins and by the
file-level CLIs (`metrics compute`, `biomarkers compute`, `data info`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mskbench.errors import DataError


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


def _read_nifti(path: Path) -> Volume:
    import nibabel as nib

    try:
        image = nib.load(str(path))
        original = tuple(nib.aff2axcodes(image.affine))
        canonical = nib.as_closest_canonical(image)
        array = np.asanyarray(canonical.dataobj)
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise DataError(f"{path}: cannot read as NIfTI ({exc}); check the file is complete") from None
    spacing = tuple(float(s) for s in canonical.header.get_zooms()[:3])
    return Volume(array, spacing, canonical.affine.copy(), str(path), original)


def _read_sitk(path: Path) -> Volume:
    """MHA/NRRD via SimpleITK, converted from LPS to RAS array order."""
    import nibabel as nib
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except Exception as exc:
        raise DataError(f"{path}: cannot read ({exc}); check the file is complete") from None
    array = sitk.GetArrayFromImage(image)  # (z, y, x)
    array = np.transpose(array, (2, 1, 0))  # (x, y, z) to match the affine below
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing = np.array(image.GetSpacing())
    origin = np.array(image.GetOrigin())
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing
    affine[:3, 3] = origin
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine = lps_to_ras @ affine
    image_ras = nib.Nifti1Image(array, affine)
    original = tuple(nib.aff2axcodes(affine))
    canonical = nib.as_closest_canonical(image_ras)
    spacing_out = tuple(float(s) for s in canonical.header.get_zooms()[:3])
    return Volume(np.asanyarray(canonical.dataobj), spacing_out, canonical.affine.copy(), str(path), original)


def read_volume(path: str | Path) -> Volume:
    """Read a NIfTI, MHA or NRRD file; raise :class:`DataError` on bad input."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path")
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        volume = _read_nifti(path)
    elif name.endswith((".mha", ".mhd", ".nrrd", ".nhdr")):
        volume = _read_sitk(path)
    else:
        raise DataError(f"{path}: unsupported file type; use .nii, .nii.gz, .mha or .nrrd")
    if not all(np.isfinite(s) and s > 0 for s in volume.spacing):
        raise DataError(f"{path}: missing or invalid voxel spacing {volume.spacing}; fix the header")
    return volume

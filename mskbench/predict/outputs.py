"""A predicted label volume written back on its input's exact grid, and the study's QC overlays.

The harness predicts on the RAS+ grid; the mask goes back to the file's own
voxel axes (:func:`mskbench.data.orientation.ras_to_file_axes`, the exact
inverse of the reader's reorientation). For a NIfTI input the input's own
header is reused (affine, qform/sform and their codes, pixdim), with an
integer data type and no intensity scaling; for any other input the header
is built from the volume's affine. Every file goes through a temporary name
and a rename (:func:`mskbench.output_paths.written_atomically`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mskbench.data.orientation import file_affine, ras_to_file_axes
from mskbench.data.preprocess import take_slice
from mskbench.data.subjects import label_dtype
from mskbench.output_paths import written_atomically
from mskbench.predict.inputs import Study

NIFTI_CODE_SCANNER = 1  # qform/sform code "scanner anatomical" for headers built from an affine


def file_axes_labels(labels_ras: np.ndarray, study: Study, max_label: int) -> np.ndarray:
    """The label volume on the input file's voxel axes, in the smallest unsigned type that holds the labels."""
    stored = ras_to_file_axes(labels_ras, study.volume.original_orientation)
    return stored.astype(label_dtype(max_label))


def nifti_image(labels_ras: np.ndarray, study: Study, max_label: int):
    """The mask as a NIfTI image on the input's grid (nibabel)."""
    import nibabel as nib

    array = file_axes_labels(labels_ras, study, max_label)
    if study.nifti is not None:
        source = nib.load(str(study.nifti))
        header = source.header.copy()
        header.set_data_dtype(array.dtype)
        image = nib.Nifti1Image(array, source.affine, header=header)
        image.header.set_slope_inter(1.0, 0.0)  # labels are stored values, never rescaled
        return image
    affine = file_affine(study.volume.affine, labels_ras.shape, study.volume.original_orientation)
    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=NIFTI_CODE_SCANNER)
    image.set_sform(affine, code=NIFTI_CODE_SCANNER)
    return image


def write_nifti(labels_ras: np.ndarray, study: Study, max_label: int, path: Path) -> Path:
    import nibabel as nib

    image = nifti_image(labels_ras, study, max_label)
    with written_atomically(path, "--out") as temporary:
        nib.save(image, str(temporary))
    return path


def _overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A BGR picture: the slice in grey (1st-99th percentile window), each label's outline in its own colour."""
    import cv2

    from mskbench.report.qc import window_uint8

    picture = cv2.cvtColor(window_uint8(image), cv2.COLOR_GRAY2BGR)
    for value in np.unique(labels[labels > 0]):
        hue = int(value) * 47 % 180  # distinct, stable colours per label id
        colour = cv2.cvtColor(np.uint8([[[hue, 255, 255]]]), cv2.COLOR_HSV2BGR)[0, 0].tolist()
        contours, _ = cv2.findContours((labels == value).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(picture, contours, -1, colour, 1)
    return picture


def write_qc(image_ras: np.ndarray, labels_ras: np.ndarray, axis: int, every: int, folder: Path, stem: str,
             written: list[Path]) -> list[Path]:
    """One overlay PNG every ``every`` slices along the slicing axis (RAS+ view: rows are the first remaining
    axis); each file is appended to ``written`` as soon as it exists."""
    import cv2

    start = len(written)
    for k in range(0, labels_ras.shape[axis], every):
        path = folder / f"{stem}_qc_{k:04d}.png"
        with written_atomically(path, "--out") as temporary:
            if not cv2.imwrite(str(temporary), _overlay(take_slice(image_ras, axis, k), take_slice(labels_ras, axis, k))):
                raise OSError(f"cannot write {temporary}")
        written.append(path)
    return written[start:]

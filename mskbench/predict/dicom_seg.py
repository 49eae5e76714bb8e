"""A predicted label volume as a DICOM Segmentation (highdicom) referencing its source series.

Each label is a segment named after it, coded by its tissue class (SNOMED
CT codes where DICOM's code lists have one, a generic "Tissue" otherwise).
Frames are matched to source instances through the geometry: each instance's
ImagePositionPatient is mapped into the volume's voxel grid and must land on
a whole slice index (never trusted to file or instance order). highdicom is
imported only here, so it is needed only when a DICOM SEG is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.data.orientation import file_affine, ras_to_file_axes
from mskbench.errors import DataError, UserError
from mskbench.output_paths import written_atomically
from mskbench.predict.inputs import Study
from mskbench.types import LabelInfo, TissueClass

_POSITION_TOLERANCE = 0.01  # of a voxel: how far an instance may sit from its slice
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def require_highdicom() -> Any:
    """highdicom, or one line saying how to install it."""
    try:
        import highdicom
    except ImportError:
        raise UserError(
            "--format dicom-seg needs the highdicom package, which is not installed; "
            "pip install 'mskbench[dicomseg]' (or use --format nifti)"
        ) from None
    return highdicom


def tissue_codes(tissue: TissueClass) -> tuple[Any, Any]:
    """(segmented property category, type) for a tissue class, as pydicom codes."""
    from pydicom.sr.codedict import codes

    sct = codes.SCT
    by_tissue = {
        TissueClass.BONE: (sct.Tissue, sct.Bone),
        TissueClass.CARTILAGE: (sct.Tissue, sct.Cartilage),
        TissueClass.MUSCLE: (sct.Tissue, sct.Muscle),
        TissueClass.FAT: (sct.Tissue, sct.AdiposeTissue),
        TissueClass.MENISCUS: (sct.AnatomicalStructure, sct.Meniscus),
        TissueClass.NERVE: (sct.AnatomicalStructure, sct.Nerve),
    }
    return by_tissue.get(tissue, (sct.Tissue, sct.Tissue))


def instance_slices(sources: Sequence[Any], affine: np.ndarray, n_slices: int, where: str) -> list[int]:
    """The slice index (third file axis) of each source instance, from its ImagePositionPatient;
    ``affine`` maps the file-axes voxel grid to RAS."""
    voxel_of = np.linalg.inv(_LPS @ affine)
    out = []
    for source in sources:
        position = np.array([float(v) for v in source.ImagePositionPatient] + [1.0])
        i, j, k = (voxel_of @ position)[:3]
        index = int(round(k))
        if max(abs(i), abs(j), abs(k - index)) > _POSITION_TOLERANCE or not 0 <= index < n_slices:
            raise DataError(
                f"{where}: instance {source.SOPInstanceUID} lies off the volume's slice grid "
                f"(voxel {i:.3f}, {j:.3f}, {k:.3f}); the series cannot be referenced by a DICOM SEG"
            )
        out.append(index)
    return out


def source_datasets(files: Sequence[str]) -> tuple[list[Any], list[str]]:
    """The source instances as a SEG must reference them, and which empty identifiers were filled in.

    Anonymisers often blank the identifiers in the data set; the SOP class
    and instance UIDs are then taken from the file meta header (PS3.10 keeps
    them equal), and a blank study or series UID becomes one derived from
    the frame of reference, the same on every run. Only the in-memory copy
    changes; the input files are never written.
    """
    import pydicom
    from pydicom.uid import generate_uid

    datasets = [pydicom.dcmread(f) for f in files]
    filled: set[str] = set()
    for ds in datasets:
        meta = getattr(ds, "file_meta", None)
        for keyword, meta_keyword in (("SOPClassUID", "MediaStorageSOPClassUID"),
                                      ("SOPInstanceUID", "MediaStorageSOPInstanceUID")):
            if not ds.get(keyword) and meta is not None and meta.get(meta_keyword):
                setattr(ds, keyword, meta.get(meta_keyword))
                filled.add(keyword)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):
            if not ds.get(keyword):
                anchor = str(ds.get("FrameOfReferenceUID") or files[0])
                setattr(ds, keyword, generate_uid(entropy_srcs=[anchor, keyword]))
                filled.add(keyword)
        if not ds.get("SOPInstanceUID"):
            raise DataError(f"{ds.filename}: no SOPInstanceUID, so a DICOM SEG cannot reference it; use --format nifti")
    return datasets, sorted(filled)


def write_dicom_seg(
    labels_ras: np.ndarray, study: Study, label_map: Mapping[int, LabelInfo], path: Path, algorithm: str, version: str
) -> dict[str, Any]:
    """Write the SEG; return what the sidecar records: label id -> segment number (1..N in label order), and
    the identifiers filled in on the source instances (:func:`source_datasets`)."""
    hd = require_highdicom()
    from pydicom.sr.codedict import codes

    if study.dicom is None:
        raise UserError(f"--format dicom-seg: {study.source} is not a DICOM series; a DICOM SEG references one "
                        "(use --format nifti for this input)")
    segment_of = {label: number for number, label in enumerate(sorted(label_map), start=1)}
    numbered = np.zeros(labels_ras.shape, dtype=np.uint16 if len(segment_of) > 255 else np.uint8)
    for label, number in segment_of.items():
        numbered[labels_ras == label] = number
    axes = study.volume.original_orientation
    on_file = ras_to_file_axes(numbered, axes)  # (column, row, slice), as the series was read
    sources, filled = source_datasets(study.dicom.files)
    slices = instance_slices(sources, file_affine(study.volume.affine, labels_ras.shape, axes), on_file.shape[2],
                             study.source)
    frames = np.stack([on_file[:, :, k].T for k in slices])  # (instance, row, column)
    identification = hd.AlgorithmIdentificationSequence(
        name=algorithm[:64], version=version[:64], family=codes.cid7162.ArtificialIntelligence
    )
    descriptions = []
    for label, number in segment_of.items():
        category, kind = tissue_codes(label_map[label].tissue)
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=label_map[label].name[:64], segmented_property_category=category,
            segmented_property_type=kind, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=identification,
        ))
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=hd.UID(), series_number=900, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="mskbench", manufacturer_model_name=algorithm[:64], software_versions=version[:64],
        device_serial_number="0", omit_empty_frames=False, series_description=f"mskbench {algorithm}"[:64],
    )
    with written_atomically(path, "--out") as temporary:
        seg.save_as(str(temporary))
    return {"segments": {str(label): number for label, number in segment_of.items()}, "filled_source_identifiers": filled}

"""`mskbench predict`: masks on the input's exact grid, DICOM SEG frames on their instances, one inference path.

External references: nibabel and SimpleITK read the written NIfTI back
(shape, spacing, direction, origin), SimpleITK and pydicom read the source
DICOM series, highdicom reads the SEG back, and `mskbench run` itself
produces the masks the suite path would score.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mskbench.cli.main import main
from mskbench.data.labels import label_map_from_names
from mskbench.data.readers import read_volume
from mskbench.predict.dicom_seg import source_datasets, write_dicom_seg
from mskbench.predict.inputs import file_studies
from mskbench.predict.outputs import write_nifti
from tests.conftest import SHARED_DATA
from tests.test_detector_suite import _detector

MR_LABELS = [(19, "vertebrae"), (20, "intervertebral_discs")]
HU_BONE = 200.0  # a known label volume on the CT: every voxel above this many HU


@pytest.fixture(scope="module")
def mr_detector(tmp_path_factory) -> Path:
    """Random weights at conf 0: boxes somewhere on every slice, which is all a geometry test needs."""
    return _detector(tmp_path_factory.mktemp("detector") / "mr-yolov8n-v1.pt", MR_LABELS)


def _predict(args: list[str]) -> int:
    return main(["predict", "--model", "otsu_box", *args])


def _sitk_geometry(image) -> tuple:
    return image.GetSize(), image.GetSpacing(), image.GetOrigin(), image.GetDirection()


def _assert_same_geometry(written, source) -> None:
    size, spacing, origin, direction = _sitk_geometry(written)
    assert size == source.GetSize()
    np.testing.assert_allclose(spacing, source.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(origin, source.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(direction, source.GetDirection(), atol=1e-6)


def test_mr_nifti_mask_is_on_the_input_grid_with_a_sidecar(real_data, mr_detector, tmp_path):
    import SimpleITK as sitk

    source = real_data / "example_mr_sm.nii.gz"
    out = tmp_path / "out"
    assert _predict(["--detector", str(mr_detector), "--prompter-params", '{"conf": 0.0}', "--input", str(source),
                     "--out", str(out), "--qc-every", "10", "--postprocess", '{"fill_holes": "slice"}']) == 0
    mask, image = nib.load(out / "example_mr_sm.nii.gz"), nib.load(source)
    assert mask.shape == image.shape
    np.testing.assert_array_equal(mask.affine, image.affine)
    assert np.issubdtype(mask.get_data_dtype(), np.integer)
    for key in ("qform_code", "sform_code"):
        assert int(mask.header[key]) == int(image.header[key])
    assert set(np.unique(np.asanyarray(mask.dataobj))) <= {0, 19, 20}
    _assert_same_geometry(sitk.ReadImage(str(out / "example_mr_sm.nii.gz")), sitk.ReadImage(str(source)))

    sidecar = json.loads((out / "example_mr_sm.json").read_text())
    assert sidecar["model"]["plugin"] == "otsu_box" and sidecar["prompter"]["plugin"] == "yolo"
    assert len(sidecar["detector"]["weights_sha256"]) == 64
    assert sidecar["postprocess"]["fill_holes"] == "slice" and sidecar["postprocess"]["active"]
    assert set(sidecar["labels"]) == {"19", "20"} and sidecar["versions"]["nibabel"]
    assert sidecar["outputs"]["qc"] and all((out / name).is_file() for name in sidecar["outputs"]["qc"])
    assert (out / "summary.csv").read_text().startswith("study,")
    assert not list(out.glob(".partial-*"))


def test_a_known_label_volume_reads_back_identically(real_data, tmp_path):
    """The real MR's own segmentation, read to RAS+ and written back: byte-for-byte the same voxels and grid."""
    seg = real_data / "example_seg_mr.nii.gz"
    [study] = file_studies([seg], None)
    labels = read_volume(seg).array
    write_nifti(labels, study, int(labels.max()), tmp_path / "back.nii.gz")
    back, original = nib.load(tmp_path / "back.nii.gz"), nib.load(seg)
    np.testing.assert_array_equal(np.asanyarray(back.dataobj), np.asanyarray(original.dataobj))
    np.testing.assert_array_equal(back.affine, original.affine)


@pytest.fixture(scope="module")
def ct_bone():
    """The CT series as a study, and a known label (HU > 200) on its RAS+ grid."""
    [study] = file_studies([SHARED_DATA / "example_ct_dicom"], None)
    return study, np.where(study.volume.array > HU_BONE, 1, 0).astype(np.int32)


def test_ct_nifti_matches_simpleitk_reading_of_the_series(real_data, ct_bone, tmp_path):
    import SimpleITK as sitk

    study, labels = ct_bone
    write_nifti(labels, study, 1, tmp_path / "ct.nii.gz")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(real_data / "example_ct_dicom")))
    ct = reader.Execute()
    written = sitk.ReadImage(str(tmp_path / "ct.nii.gz"))
    _assert_same_geometry(written, ct)
    expected = (sitk.GetArrayFromImage(ct) > HU_BONE).astype(np.uint8)  # SimpleITK's own voxel order
    np.testing.assert_array_equal(sitk.GetArrayFromImage(written), expected)


def test_dicom_seg_frames_sit_on_their_source_instances(real_data, ct_bone, tmp_path):
    import highdicom as hd
    import SimpleITK as sitk
    from pydicom.pixels import apply_modality_lut

    study, labels = ct_bone
    names = label_map_from_names({1: "bone_mask", 2: "femoral_cartilage"})
    info = write_dicom_seg(labels, study, names, tmp_path / "seg.dcm", "test", "0")
    assert info["segments"] == {"1": 1, "2": 2}
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["bone_mask", "femoral_cartilage"]
    assert seg.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Bone"
    assert seg.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Cartilage"
    sources, _ = source_datasets(study.dicom.files)
    frames = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], combine_segments=True)
    # each frame against its own instance's pixels: no geometry of ours in the reference
    for ds, frame in zip(sources, frames, strict=True):
        np.testing.assert_array_equal(frame, apply_modality_lut(ds.pixel_array, ds) > HU_BONE)
    # and against the NIfTI written from the same labels, instance by instance through SimpleITK's geometry
    write_nifti(labels, study, 1, tmp_path / "ct.nii.gz")
    nifti = sitk.ReadImage(str(tmp_path / "ct.nii.gz"))
    array = sitk.GetArrayFromImage(nifti)  # (slice, row, column)
    for ds, frame in zip(sources, frames, strict=True):
        k = nifti.TransformPhysicalPointToIndex([float(v) for v in ds.ImagePositionPatient])[2]
        np.testing.assert_array_equal(frame, array[k])


def test_cli_writes_dicom_seg_and_nifti_for_a_series(real_data, mr_detector, tmp_path):
    import highdicom as hd

    out = tmp_path / "out"
    assert _predict(["--detector", str(mr_detector), "--prompter-params", '{"conf": 0.0}', "--slice-axis", "axial",
                     "--input", str(real_data / "example_ct_dicom"), "--out", str(out), "--format", "both"]) == 0
    nifti = np.asanyarray(nib.load(out / "example_ct_dicom.nii.gz").dataobj)  # (column, row, slice) as read
    seg = hd.seg.segread(out / "example_ct_dicom_seg.dcm")
    sources, _ = source_datasets(file_studies([real_data / "example_ct_dicom"], None)[0].dicom.files)
    frames = seg.get_pixels_by_source_instance([ds.SOPInstanceUID for ds in sources], combine_segments=True,
                                               relabel=True)
    segments = {int(k): v for k, v in json.loads((out / "example_ct_dicom.json").read_text())["dicom_seg"]["segments"].items()}
    as_segments = np.zeros_like(nifti)
    for label, number in segments.items():
        as_segments[nifti == label] = number
    np.testing.assert_array_equal(frames, np.stack([as_segments[:, :, k].T for k in range(nifti.shape[2])]))
    assert nifti.any(), "random boxes at conf 0 must leave some foreground to compare"


def test_resume_skips_finished_studies_and_a_full_folder_needs_a_flag(real_data, mr_detector, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--detector", str(mr_detector), "--prompter-params", '{"conf": 0.0}',
            "--input", str(real_data / "example_mr_sm.nii.gz"), "--out", str(out)]
    assert _predict(args) == 0
    sidecar = out / "example_mr_sm.json"
    first = sidecar.stat().st_mtime_ns
    capsys.readouterr()
    assert _predict(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _predict([*args, "--resume"]) == 0
    assert sidecar.stat().st_mtime_ns == first
    assert _predict([*args, "--overwrite"]) == 0
    assert sidecar.stat().st_mtime_ns != first


SUITE = """
[suite]
name = "predict_identity"
seed = 3

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = 1, seed = 0, pixel_spacing_min = 1.0, pixel_spacing_max = 1.0, supersample = 1 }}
split = "all"
preprocess = {{ include_empty_slices = true }}

[[models]]
name = "otsu_pp"
plugin = "otsu_box"
postprocess = {{ fill_holes = "slice", largest_components = 1, closing_px = 3 }}

[[prompters]]
name = "det"
plugin = "yolo"
params = {{ weights = "{weights}", conf = 0.0, imgsz = 32 }}

[metrics]
names = ["dice"]

[biomarkers]
enabled = false
"""


@pytest.fixture(scope="module")
def knee_detector(tmp_path_factory) -> Path:
    from mskbench.phantom.generate import label_map

    classes = [(k, v.name) for k, v in sorted(label_map("knee").items())]
    return _detector(tmp_path_factory.mktemp("knee") / "knee-yolov8n-v1.pt", classes)


def test_suite_run_and_predict_give_identical_masks(tmp_path, monkeypatch, knee_detector):
    """`mskbench run` and `mskbench predict --suite` on the same phantom subject: the same label volume."""
    from mskbench.execution import records, unit

    weights = knee_detector
    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE.format(weights=weights)))
    scored: dict[str, np.ndarray] = {}

    def capture(prepared, cell_id, dataset, prediction, *args, **kwargs):
        scored[prepared.subject.id] = records.label_volume(prediction.rounds[-1], prepared.labels.shape)
        return records.cell_records(prepared, cell_id, dataset, prediction, *args, **kwargs)

    monkeypatch.setattr(unit, "cell_records", capture)
    assert main(["run", str(suite), "--db", str(tmp_path / "r.duckdb")]) == 0
    assert main(["predict", "--suite", str(suite), "--model", "otsu_pp", "--out", str(tmp_path / "out")]) == 0
    [(subject_id, expected)] = scored.items()
    written = read_volume(tmp_path / "out" / f"{subject_id}.nii.gz").array
    assert expected.any() and len(np.unique(expected)) > 2
    np.testing.assert_array_equal(written, expected)


def test_a_prompter_that_reads_the_reference_is_refused(real_data, tmp_path, capsys):
    out = tmp_path / "out"
    assert _predict(["--prompter", "gt_box", "--labels", "1=femur", "--input", str(real_data / "example_mr_sm.nii.gz"),
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reference" in err[0] and "none" in err[0] and "yolo" in err[0]
    assert not out.exists()


def test_copying_series_keeps_the_source_untouched(real_data, ct_bone, tmp_path):
    """Filling blank identifiers happens in memory only: the source files are byte-identical afterwards."""
    study, labels = ct_bone
    before = {f: Path(f).read_bytes() for f in study.dicom.files[:3]}
    write_dicom_seg(labels, study, label_map_from_names({1: "bone"}), tmp_path / "seg.dcm", "test", "0")
    assert {f: Path(f).read_bytes() for f in before} == before


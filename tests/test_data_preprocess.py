"""Preprocessing: axis choice, slicing, normalisation, small-object removal, slice selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import remove_small_objects as sk_remove_small_objects

from mskbench.data.preprocess import (
    DEFAULT_MIN_OBJECT_MM2,
    DEFAULT_MIN_OBJECT_MM3,
    PreprocessConfig,
    count_threshold,
    normalize_intensity,
    parse_physical,
    prepare_subject,
    remove_small_objects,
    slice_axis_index,
    take_slice,
)
from mskbench.data.readers import read_volume
from mskbench.errors import DataError
from mskbench.types import LabelInfo, Subject, TissueClass

REAL = str(Path(__file__).resolve().parents[2] / "shared" / "data" / "real")


def _subject(volume, labels, spacing=(0.5, 0.5, 3.0)) -> Subject:
    label_map = {i: LabelInfo(i, f"l{i}", TissueClass.OTHER) for i in range(1, 5)}
    return Subject("s", volume.astype(np.float32), labels, spacing, np.diag([*spacing, 1.0]), label_map)


def test_slice_axis_index():
    assert slice_axis_index((1, 1, 1), "sagittal") == 0
    assert slice_axis_index((1, 1, 1), "coronal") == 1
    assert slice_axis_index((1, 1, 1), "axial") == 2
    assert slice_axis_index((0.4, 3.5, 0.4), "through_plane") == 1
    with pytest.raises(DataError, match="slice axis"):
        slice_axis_index((1, 1, 1), "oblique")  # type: ignore[arg-type]


def test_take_slice_rows_are_first_remaining_axis():
    volume = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    assert take_slice(volume, 0, 1).shape == (3, 4)
    assert take_slice(volume, 1, 2).shape == (2, 4)
    assert take_slice(volume, 2, 3).tolist() == volume[:, :, 3].tolist()
    assert np.shares_memory(take_slice(volume, 1, 0), volume)


def test_normalize_matches_numpy_percentiles_of_nonzero_voxels():
    image = read_volume(f"{REAL}/example_mr_sm.nii.gz").array.astype(np.float32)
    for percentiles in ((0.5, 99.5), (1.0, 99.0)):
        out = normalize_intensity(image, percentiles)
        low, high = np.percentile(image[image != 0], percentiles)
        expected = np.rint((np.clip(image, low, high) - low) / (high - low) * 255).astype(np.uint8)
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert np.abs(out.astype(int) - expected.astype(int)).max() <= 1
        assert out.min() == 0 and out.max() == 255


@pytest.mark.parametrize("bad, message", [(np.full((4, 4, 4), 7.0), "constant"), (np.zeros((4, 4, 4)), "all zeros")])
def test_normalize_rejects_constant_images(bad, message):
    with pytest.raises(DataError, match=message):
        normalize_intensity(bad, (0.5, 99.5))
    nan = np.ones((4, 4, 4))
    nan[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        normalize_intensity(nan, (0.5, 99.5))


def test_small_objects_per_slice_match_skimage():
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 40, 6)) > 0.6).astype(np.uint8)
    labels[rng.random(labels.shape) > 0.8] = 2
    out = remove_small_objects(labels, axis=2, min_pixels=5, min_voxels=0)
    for k in range(labels.shape[2]):
        for value in (1, 2):
            kept = sk_remove_small_objects(labels[:, :, k] == value, max_size=4, connectivity=2)
            np.testing.assert_array_equal(out[:, :, k] == value, kept)


def test_small_objects_per_volume_match_skimage():
    rng = np.random.default_rng(1)
    labels = (rng.random((20, 20, 20)) > 0.7).astype(np.uint8)
    out = remove_small_objects(labels, axis=0, min_pixels=0, min_voxels=30)
    kept = sk_remove_small_objects(labels == 1, max_size=29, connectivity=3)
    np.testing.assert_array_equal(out == 1, kept)


def test_prepare_subject_selects_labelled_slices_and_spacing():
    rng = np.random.default_rng(2)
    volume = rng.normal(100, 10, (30, 30, 12))
    labels = np.zeros(volume.shape, np.uint8)
    labels[5:25, 5:25, 3:9] = 1  # 400 px per slice, 2400 voxels
    labels[0:3, 0:3, 10] = 2  # 9 px: removed
    prepared = prepare_subject(_subject(volume, labels), "through_plane", PreprocessConfig())
    assert prepared.axis == 2
    assert prepared.slice_indices == [3, 4, 5, 6, 7, 8]
    assert prepared.pixel_spacing == (0.5, 0.5)
    assert prepared.image.dtype == np.uint8 and prepared.image.shape == volume.shape
    assert not (prepared.labels == 2).any() and (prepared.labels == 1).sum() == 2400
    everything = prepare_subject(_subject(volume, labels), "coronal", PreprocessConfig(include_empty_slices=True))
    assert everything.axis == 1 and everything.slice_indices == list(range(30))
    assert everything.pixel_spacing == (0.5, 3.0)


def test_prepare_subject_rejects_grid_mismatch_and_bad_config():
    volume = np.random.default_rng(3).normal(size=(8, 8, 8))
    with pytest.raises(DataError, match="label grid"):
        prepare_subject(_subject(volume, np.zeros((8, 8, 7), np.uint8)), "axial", PreprocessConfig())
    with pytest.raises(DataError, match="clip_percentiles"):
        PreprocessConfig(clip_percentiles=(99.0, 1.0))


# --- physical thresholds (issue 19) -------------------------------------------------------------

ANISO = (0.4, 0.7, 2.5)  # mm; slices along axis 2: pixel 0.28 mm², voxel 0.7 mm³


def _blocks() -> tuple[np.ndarray, dict[str, tuple[int, tuple[slice, slice, slice]]]]:
    """A label volume of rectangular blocks with known sizes, at least two voxels apart."""
    blocks = {
        # name: (label, where)        pixels per slice x slices = voxels
        "A": (1, np.s_[2:8, 2:8, 1:6]),  # 36 px x 5 = 180: 10.08 mm² per slice, 126 mm³ -> kept
        "B": (1, np.s_[12:17, 2:9, 1:6]),  # 35 px x 5 = 175: 9.8 mm² < 10 in every slice -> removed in 2D
        "C": (1, np.s_[20:26, 2:8, 1:4]),  # 36 px x 3 = 108: passes 2D, 75.6 mm³ < 100 -> removed in 3D
        "D": (1, np.s_[30:36, 2:8, 1:5]),  # 36 px x 4 = 144: 100.8 mm³ >= 100 -> kept
        "E": (2, np.s_[2:7, 20:25, 7:9]),  # 25 px x 2 = 50: 7 mm² -> label 2 vanishes
        "F": (4, np.s_[20:30, 20:30, 2:8]),  # 100 px x 6 = 600 -> kept
    }
    labels = np.zeros((40, 40, 12), np.uint8)
    for value, where in blocks.values():
        labels[where] = value
    return labels, blocks


def test_thresholds_convert_with_the_subjects_spacing():
    config = PreprocessConfig(min_object_mm2=10, min_object_mm3=100)
    assert config.pixel_threshold(ANISO[:2]) == 36  # ceil(10 / 0.28) = ceil(35.71)
    assert config.voxel_threshold(ANISO) == 143  # ceil(100 / 0.7) = ceil(142.86)
    default = PreprocessConfig()
    assert (default.min_object_mm2, default.min_object_mm3) == (DEFAULT_MIN_OBJECT_MM2, DEFAULT_MIN_OBJECT_MM3) == (25.0, 125.0)
    assert default.pixel_threshold((0.5, 0.5)) == 100 and default.voxel_threshold((0.5, 0.5, 0.5)) == 1000
    assert default.pixel_threshold((3.0, 3.0)) == 3 and default.voxel_threshold((3.0, 3.0, 3.0)) == 5  # 2.78, 4.63
    assert default.pixel_threshold((0.3125, 0.3125)) == 256 and default.voxel_threshold((0.3125, 0.3125, 0.8)) == 1600
    voxel_form = PreprocessConfig(min_object_pixels=100, min_object_voxels=1000)
    assert voxel_form.min_object_mm2 is None and voxel_form.min_object_mm3 is None
    assert voxel_form.pixel_threshold((3.0, 3.0)) == 100 and voxel_form.voxel_threshold((3.0, 3.0, 3.0)) == 1000
    assert voxel_form.threshold_keys == ("min_object_pixels", "min_object_voxels")
    assert default.threshold_keys == ("min_object_mm2", "min_object_mm3")
    # exact products are not lost to floating point: 0.1 mm pixels, 1 mm² = exactly 100 pixels
    assert count_threshold(1.0, 0.1 * 0.1) == 100 and count_threshold(0.0, 0.1) == 0


def test_removed_voxels_match_component_sizes_at_anisotropic_spacing():
    labels, blocks = _blocks()
    # external check of the hand-made sizes: scipy's own labelling, 8-connected per slice and 26-connected in 3D
    for name, (value, where) in blocks.items():
        mask = np.zeros(labels.shape, bool)
        mask[where] = True
        components, count = ndimage.label(labels == value, structure=np.ones((3, 3, 3)))
        sizes = np.bincount(components[mask])
        assert count >= 1 and sizes.max() == mask.sum(), name
        for k in range(where[2].start, where[2].stop):
            in_slice, _ = ndimage.label(labels[:, :, k] == value, structure=np.ones((3, 3)))
            assert np.bincount(in_slice[mask[:, :, k]]).max() == mask[:, :, k].sum(), name
    volume = np.random.default_rng(4).normal(100, 10, labels.shape)
    config = PreprocessConfig(min_object_mm2=10, min_object_mm3="100 mm3")
    prepared = prepare_subject(_subject(volume, labels, spacing=ANISO), "through_plane", config)
    expected = labels.copy()
    for name in ("B", "C", "E"):
        expected[blocks[name][1]] = 0
    np.testing.assert_array_equal(prepared.labels, expected)
    assert (prepared.min_pixels, prepared.min_voxels) == (36, 143)
    counts = prepared.label_voxels
    assert (counts[1].before, counts[1].after) == (180 + 175 + 108 + 144, 180 + 144)
    assert counts[1].outcome == "reduced" and counts[1].lost_fraction == pytest.approx(283 / 607) and counts[1].flagged
    assert (counts[2].before, counts[2].after, counts[2].outcome) == (50, 0, "removed") and counts[2].flagged
    assert (counts[3].before, counts[3].outcome, counts[3].flagged) == (0, "absent", False)
    assert (counts[4].before, counts[4].after, counts[4].outcome, counts[4].flagged) == (600, 600, "kept", False)
    assert prepared.removed_labels == frozenset({2})


def test_default_reproduces_the_voxel_rule_at_the_reference_spacing():
    rng = np.random.default_rng(5)
    labels = (rng.random((60, 60, 40)) > 0.55).astype(np.uint8)
    labels[rng.random(labels.shape) > 0.9] = 2
    volume = rng.normal(100, 10, labels.shape)
    prepared = prepare_subject(_subject(volume, labels, spacing=(0.5, 0.5, 0.5)), "axial", PreprocessConfig())
    np.testing.assert_array_equal(prepared.labels, remove_small_objects(labels, 2, 100, 1000))
    assert (prepared.labels != labels).any()  # the rule did remove something here
    at_3mm = prepare_subject(_subject(volume, labels, spacing=(3.0, 3.0, 3.0)), "axial", PreprocessConfig())
    np.testing.assert_array_equal(at_3mm.labels, remove_small_objects(labels, 2, 3, 5))


@pytest.mark.parametrize(
    "value, kind, mm",
    [(25, "area", 25.0), ("25 mm2", "area", 25.0), ("25mm²", "area", 25.0), ("0.25 cm2", "area", 25.0),
     ("125 mm3", "volume", 125.0), ("125 mm³", "volume", 125.0), ("0.125 ml", "volume", 125.0),
     ("0.125 cm^3", "volume", 125.0), ("1e2", "volume", 100.0), (0, "volume", 0.0)],
)
def test_parse_physical_units(value, kind, mm):
    assert parse_physical(value, kind) == pytest.approx(mm)


@pytest.mark.parametrize(
    "value, kind, message",
    [("25 mm", "volume", "unit 'mm'"), ("25 mm3", "area", "unit 'mm3'"), ("25 furlongs", "area", "unit"),
     ("big", "volume", "not a number"), (-1, "area", ">= 0"), ("-5 mm3", "volume", ">= 0"),
     (float("nan"), "area", "finite"), (True, "area", "expected a number"), ([25], "area", "expected a number")],
)
def test_parse_physical_rejects(value, kind, message):
    with pytest.raises(DataError, match=message):
        parse_physical(value, kind)


def test_config_rejects_both_forms_and_bad_counts():
    with pytest.raises(DataError, match="both set"):
        PreprocessConfig(min_object_mm3=125, min_object_voxels=1000)
    with pytest.raises(DataError, match="min_object_pixels"):
        PreprocessConfig(min_object_pixels=-1)
    with pytest.raises(DataError, match="min_object_mm2"):
        PreprocessConfig(min_object_mm2="25 mm3")


def _real_subject(names: dict[int, str]) -> Subject:
    image = read_volume(f"{REAL}/example_mr_sm.nii.gz")
    labels = read_volume(f"{REAL}/example_seg_mr.nii.gz").array
    label_map = {i: LabelInfo(i, name, TissueClass.OTHER) for i, name in names.items()}
    kept = np.where(np.isin(labels, list(names)), labels, 0)
    return Subject("real", image.array.astype(np.float32), kept, image.spacing, image.affine, label_map)


MSK_SIX = {19: "vertebrae", 20: "intervertebral_discs", 46: "autochthon_left", 47: "autochthon_right",
           48: "iliopsoas_left", 49: "iliopsoas_right"}


@pytest.mark.parametrize("axis", ["axial", "sagittal", "coronal"])
def test_real_mr_keeps_all_six_structures_by_default(axis):
    subject = _real_subject(MSK_SIX)
    prepared = prepare_subject(subject, axis, PreprocessConfig())
    for label_id, counts in prepared.label_voxels.items():
        assert counts.after > 0 and not counts.flagged, (MSK_SIX[label_id], counts)
    assert prepared.removed_labels == frozenset()
    # the source study's voxel rule at 3 mm: four of the six vanish (the bug of issue 19)
    voxel_rule = prepare_subject(subject, "axial", PreprocessConfig(min_object_pixels=100, min_object_voxels=1000))
    assert voxel_rule.removed_labels == frozenset({19, 20, 48, 49})


def test_flagged_means_more_than_ten_percent_lost_or_vanished():
    from mskbench.data.preprocess import LabelVoxels

    assert not LabelVoxels(1, 100, 90).flagged  # exactly 10 %
    assert LabelVoxels(1, 1000, 899).flagged and LabelVoxels(1, 1000, 899).outcome == "reduced"
    assert LabelVoxels(1, 3, 0).flagged and LabelVoxels(1, 3, 0).outcome == "removed"
    assert not LabelVoxels(1, 0, 0).flagged and LabelVoxels(1, 0, 0).lost_fraction == 0.0

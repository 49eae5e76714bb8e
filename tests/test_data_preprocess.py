"""Preprocessing: axis choice, slicing, normalisation, small-object removal, slice selection."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.morphology import remove_small_objects as sk_remove_small_objects

from mskbench.data.preprocess import (
    PreprocessConfig,
    normalize_intensity,
    prepare_subject,
    remove_small_objects,
    slice_axis_index,
    take_slice,
)
from mskbench.data.readers import read_volume
from mskbench.errors import DataError
from mskbench.types import LabelInfo, Subject, TissueClass

REAL = "/work/shared/data/real"


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

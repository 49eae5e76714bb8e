"""The fast preprocessing (issue 15, item 3) gives bit-identical results to the published one.

``reference_normalize`` and ``reference_remove`` below are frozen copies of
``normalize_intensity`` and ``remove_small_objects`` as published before the
speed-up (np.percentile of the non-zero voxels; scipy labelling per label on
its bounding box). They are copied on purpose: that code is the tested,
released behaviour, and the new implementation (sampled percentile windows,
one multi-label cc3d pass per connectivity) must equal it exactly, on the
phantoms, on the real example MR and on edge cases. Do not "fix" them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from mskbench.data import preprocess
from mskbench.data.preprocess import (
    PreprocessConfig,
    label_voxel_counts,
    nonzero_percentiles,
    normalize_intensity,
    prepare_subject,
    remove_small_objects,
    slice_axis_index,
)
from mskbench.data.readers import read_volume
from mskbench.errors import DataError
from mskbench.plugin_manager import get_registry

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


# -- frozen reference (the implementation before issue 15) ------------------------------------
def reference_normalize(volume: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    data = np.asarray(volume)
    nonzero = data[data != 0]
    low, high = np.percentile(nonzero, percentiles)
    out = data.astype(np.float32, copy=True)
    np.clip(out, np.float32(low), np.float32(high), out=out)
    out -= np.float32(low)
    out *= np.float32(255.0 / (high - low))
    return np.rint(out, out=out).astype(np.uint8)


def reference_remove(labels: np.ndarray, axis: int, min_pixels: int, min_voxels: int) -> np.ndarray:
    out = np.array(labels, copy=True)
    if min_pixels <= 0 and min_voxels <= 0:
        return out
    in_plane = np.ones((3, 3, 3), dtype=bool)
    where: list[object] = [slice(None)] * 3
    where[axis] = [0, 2]
    in_plane[tuple(where)] = False
    full = np.ones((3, 3, 3), dtype=bool)
    boxes = ndimage.find_objects(out)
    for value, box in enumerate(boxes, start=1):
        if box is None:
            continue
        region = out[box]
        mask = region == value
        for structure, threshold in ((in_plane, min_pixels), (full, min_voxels)):
            if threshold <= 0:
                continue
            components, count = ndimage.label(mask, structure=structure)
            if count == 0:
                break
            sizes = np.bincount(components.ravel())
            small = sizes < threshold
            small[0] = False
            if small.any():
                drop = small[components]
                region[drop] = 0
                mask &= ~drop
    return out


# -- helpers ----------------------------------------------------------------------------------
def assert_same_removal(labels: np.ndarray, axis: int, min_pixels: int, min_voxels: int) -> None:
    expected = reference_remove(labels, axis, min_pixels, min_voxels)
    got = remove_small_objects(labels, axis, min_pixels, min_voxels)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected, err_msg=f"axis {axis}, thresholds {min_pixels}/{min_voxels}")


def assert_same_subject(subject, slice_axis: str, config: PreprocessConfig) -> None:
    """prepare_subject against the same steps done with the reference functions."""
    prepared = prepare_subject(subject, slice_axis, config)
    axis = slice_axis_index(subject.spacing, slice_axis)
    np.testing.assert_array_equal(prepared.image, reference_normalize(subject.volume, config.clip_percentiles))
    labels = reference_remove(subject.labels, axis, prepared.min_pixels, prepared.min_voxels)
    np.testing.assert_array_equal(prepared.labels, labels)
    assert prepared.label_voxels == label_voxel_counts(subject.labels, labels, subject.label_map)
    other = tuple(a for a in range(3) if a != axis)
    assert prepared.slice_indices == np.flatnonzero(labels.any(axis=other)).tolist()


@pytest.fixture(scope="module")
def phantoms():
    """One subject per anatomy (anisotropic spacing: thick slices, in-plane ranges per anatomy)."""
    out = {}
    for anatomy in ("knee", "spine", "thigh", "hip"):
        dataset = get_registry().create("dataset", "phantom", {"anatomy": anatomy, "subjects": 1, "seed": 3}, where="t")
        out[anatomy] = (dataset.load(dataset.subject_ids(None)[0]), dataset.slice_axis)
    return out


def _real_subject():
    from mskbench.types import LabelInfo, Subject, TissueClass

    image = read_volume(REAL / "example_mr_sm.nii.gz")
    labels = read_volume(REAL / "example_seg_mr.nii.gz").array.astype(np.uint8)
    ids = [int(v) for v in np.unique(labels) if v]
    label_map = {i: LabelInfo(i, f"l{i}", TissueClass.OTHER) for i in ids}
    return Subject("real", image.array.astype(np.float32), labels, image.spacing, image.affine, label_map)


# -- whole subjects ---------------------------------------------------------------------------
CONFIGS = [
    PreprocessConfig(),  # physical defaults
    PreprocessConfig(clip_percentiles=(1.0, 99.0), min_object_pixels=100, min_object_voxels=1000),  # voxel rule
    PreprocessConfig(clip_percentiles=(0.0, 100.0), min_object_mm2=200, min_object_mm3=5000),  # removes a lot
]


@pytest.mark.parametrize("config", CONFIGS, ids=["defaults", "voxel-rule", "large"])
def test_phantom_subjects_equal_the_reference(phantoms, config):
    for subject, slice_axis in phantoms.values():
        for axis in (slice_axis, "axial", "coronal", "sagittal"):
            assert_same_subject(subject, axis, config)


@pytest.mark.skipif(not (REAL / "example_seg_mr.nii.gz").is_file(), reason="../shared/data/real is absent")
@pytest.mark.parametrize("config", CONFIGS, ids=["defaults", "voxel-rule", "large"])
def test_real_example_mr_equals_the_reference(config):
    subject = _real_subject()
    for axis in ("axial", "coronal", "sagittal"):
        assert_same_subject(subject, axis, config)


# -- small-object removal: edge cases ---------------------------------------------------------
def _blobs(shape, seed, values=3, density=0.35, dtype=np.uint8):
    """Random labels: many small and diagonal-only connections, the cases connectivity decides."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(1, values + 1, shape).astype(dtype)
    labels[rng.random(shape) > density] = 0
    return labels


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_random_labels_equal_the_reference(axis):
    for seed, shape in ((0, (12, 15, 17)), (1, (30, 7, 9)), (2, (5, 40, 33))):
        labels = _blobs(shape, seed)
        for min_pixels, min_voxels in ((3, 0), (0, 4), (3, 6), (1, 1), (2, 50), (500, 0)):
            assert_same_removal(labels, axis, min_pixels, min_voxels)


def test_edge_cases_equal_the_reference():
    assert_same_removal(np.zeros((6, 7, 8), np.uint8), 0, 5, 10)  # no labels at all
    border = np.zeros((9, 10, 11), np.uint8)
    border[0, :, :] = 1  # a label filling a face of the volume
    border[-1, -3:, -3:] = 2  # a small label in a corner
    border[4, 0, 0] = 3
    for axis in range(3):
        assert_same_removal(border, axis, 10, 20)
        assert_same_removal(border, axis, 0, 0)  # thresholds of 0: a plain copy
    for shape in ((1, 20, 30), (20, 1, 30), (20, 30, 1)):  # single-slice volumes
        labels = _blobs(shape, 4, density=0.6)
        for axis in range(3):
            assert_same_removal(labels, axis, 3, 5)


def test_dtypes_large_ids_and_views_equal_the_reference():
    for dtype, values in ((np.uint16, 300), (np.int32, 70000), (np.int64, 5)):
        labels = _blobs((10, 12, 14), 5, values=4, dtype=dtype) * (values // 4)
        assert_same_removal(labels, 1, 2, 4)
    base = _blobs((14, 12, 10), 6)
    assert_same_removal(base.transpose(2, 0, 1), 0, 3, 5)  # not C-contiguous
    assert_same_removal(np.asfortranarray(base), 2, 3, 5)
    assert_same_removal(base[::2, 1:, ::-1], 1, 2, 3)


def test_removal_does_not_modify_its_input():
    labels = _blobs((8, 9, 10), 7)
    before = labels.copy()
    remove_small_objects(labels, 0, 50, 50)
    np.testing.assert_array_equal(labels, before)


# -- percentiles ------------------------------------------------------------------------------
PERCENTILES = [(0.5, 99.5), (1.0, 99.0), (0.0, 100.0), (50.0, 50.5), (0.001, 99.999), (30.0, 70.0)]


def test_normalisation_equals_the_reference_on_varied_volumes():
    rng = np.random.default_rng(8)
    volumes = [
        rng.normal(100, 30, (20, 30, 40)).astype(np.float32),  # negative values too
        np.where(rng.random((25, 20, 15)) > 0.7, rng.gamma(2.0, 50.0, (25, 20, 15)), 0).astype(np.float32),
        rng.integers(-5, 4000, (16, 17, 18)),  # integer image with zeros
        np.repeat(rng.integers(1, 6, 40).astype(np.float32), 50).reshape(40, 50, 1),  # many ties
        np.asfortranarray(rng.lognormal(3, 1, (12, 13, 14))),  # float64, not C-contiguous
        np.array([0, 0, 3.5, 0, 7.25], dtype=np.float32).reshape(1, 1, 5),  # two non-zero voxels
    ]
    for volume in volumes:
        for percentiles in PERCENTILES:
            low, high = np.percentile(volume[volume != 0], percentiles)
            if not high > low:  # the published check: constant between the percentiles
                with pytest.raises(DataError, match="constant"):
                    normalize_intensity(volume, percentiles)
                continue
            expected = reference_normalize(volume, percentiles)
            np.testing.assert_array_equal(normalize_intensity(volume, percentiles), expected, err_msg=str(percentiles))


def test_percentiles_equal_numpy_exactly():
    rng = np.random.default_rng(9)
    symmetric = rng.standard_t(3, 200_003).astype(np.float32)
    symmetric[::7] = 0  # zeros inside the value range
    positive = rng.lognormal(3, 1, 150_001).astype(np.float32)
    positive[[5, 500, 5000]] = 0  # a few zeros below every window: they must not shift the ranks
    for values in (symmetric, positive):
        nonzero = values[values != 0]
        for percentiles in PERCENTILES:
            got = nonzero_percentiles(values, nonzero.size, percentiles)
            assert [float(v) for v in got] == [float(v) for v in np.percentile(nonzero, percentiles)], percentiles


def test_a_sample_that_misses_falls_back_to_every_value():
    """The sample only sets the window; a misleading one must still give the exact order statistics."""
    values = np.random.default_rng(10).normal(0, 1, 10_000)
    values[:100] = 0
    nonzero = np.sort(values[values != 0])
    for misleading in (np.full(500, nonzero[-1]), np.full(500, nonzero[0]), np.linspace(5, 6, 500)):
        for first in (0, 49, 4950, nonzero.size - 2):
            got = preprocess._order_statistics(values, nonzero.size, misleading, first, first + 1)
            np.testing.assert_array_equal(got, nonzero[[first, first + 1]])

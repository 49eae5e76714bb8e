"""Phantom subjects: determinism, one grid, truth keys, and acquisition-driven contrast and noise."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
from scipy import ndimage

from mskbench.errors import DataError
from mskbench.phantom.acquisition import VENDOR_GAIN
from mskbench.phantom.generate import (
    SIGNAL_SCALE,
    PhantomOptions,
    blueprint,
    effective_snr,
    generate_subject,
    label_map,
)
from mskbench.phantom.signal import spin_echo, spoiled_gradient_echo
from mskbench.phantom.tissues import TISSUES


@lru_cache(maxsize=None)
def subject(anatomy: str, index: int = 0, seed: int = 0, acquisition: tuple = (), **options):
    """A cached subject; ``acquisition`` is given as (field, value) pairs so it can be cached."""
    return generate_subject(anatomy, seed, index, PhantomOptions(acquisition=dict(acquisition), **options))


def test_same_seed_and_index_give_identical_subjects_and_others_differ():
    a = generate_subject("knee", 7, 1)
    b = generate_subject("knee", 7, 1)
    np.testing.assert_array_equal(a.volume, b.volume)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.truth == b.truth and a.acquisition == b.acquisition and a.demographics == b.demographics
    other_index = generate_subject("knee", 7, 2)
    other_seed = generate_subject("knee", 8, 1)
    assert other_index.truth != a.truth and other_seed.truth != a.truth


def test_noise_settings_change_the_image_but_never_the_anatomy():
    noisy = generate_subject("hip", 0, 3, PhantomOptions(snr=10.0))
    clean = generate_subject("hip", 0, 3, PhantomOptions(noise=False))
    np.testing.assert_array_equal(noisy.labels, clean.labels)
    assert noisy.truth == clean.truth
    assert not np.allclose(noisy.volume, clean.volume)


@pytest.mark.parametrize("anatomy", ["knee", "spine", "thigh", "hip"])
def test_image_labels_and_maps_share_one_ras_grid(anatomy):
    case = subject(anatomy, 1)
    assert case.volume.dtype == np.float32 and case.volume.ndim == 3
    assert case.labels.shape == case.volume.shape
    assert all(m.shape == case.volume.shape and m.dtype == np.float32 for m in case.maps.values())
    np.testing.assert_allclose(np.diag(case.affine)[:3], case.spacing)
    np.testing.assert_allclose(case.affine[:3, :3], np.diag(case.spacing))
    axis = {"knee": 0, "spine": 0, "thigh": 2, "hip": 1}[anatomy]
    assert case.spacing[axis] == case.acquisition.slice_thickness_mm
    in_plane = [s for a, s in enumerate(case.spacing) if a != axis]
    assert in_plane == [case.acquisition.pixel_spacing_mm] * 2
    assert set(np.unique(case.labels)) <= {0, *case.label_map}
    assert set(np.unique(case.labels)) == {0, *case.label_map}, "every structure is imaged"


EXPECTED_NAMES = {
    "knee": ["femur", "tibia", "patella", "femoral_cartilage", "tibial_cartilage", "patellar_cartilage",
             "medial_meniscus", "lateral_meniscus"],
    "spine": ["L1", "L2", "L3", "L4", "L5", "S1", "disc_L1_L2", "disc_L2_L3", "disc_L3_L4", "disc_L4_L5",
              "disc_L5_S1", "psoas", "paraspinal"],
    "thigh": ["femur_cortex", "femur_marrow", "quadriceps", "hamstrings", "adductors", "sartorius", "gracilis",
              "subcutaneous_fat", "neurovascular_bundle"],
    "hip": ["femoral_head", "acetabulum", "hip_cartilage"],
}


@pytest.mark.parametrize("anatomy", ["knee", "spine", "thigh", "hip"])
def test_truth_keys_are_the_biomarker_contract(anatomy):
    case = subject(anatomy, 1)
    names = [info.name for info in case.label_map.values()]
    assert names == EXPECTED_NAMES[anatomy]
    expected = {("tissue_volume", name) for name in names}
    if anatomy == "knee":
        cartilage = ["femoral_cartilage", "tibial_cartilage", "patellar_cartilage"]
        expected |= {("cartilage_thickness", c) for c in cartilage}
        expected |= {(q, c) for q in ("t2", "t1rho") for c in [*cartilage, "overall"]}
    if anatomy == "spine":
        expected |= {("disc_height", n) for n in names if n.startswith("disc")}
    if anatomy == "hip":
        expected |= {("cartilage_thickness_local_3d", "hip_cartilage")}  # the local_3d method's truth
    assert set(case.truth) == expected
    assert all(np.isfinite(v) and v > 0 for v in case.truth.values())


@pytest.mark.parametrize("anatomy", ["knee", "spine", "thigh", "hip"])
def test_voxel_count_volumes_approach_the_analytic_truth(anatomy):
    case = subject(anatomy, 2)
    voxel_cm3 = np.prod(case.spacing) / 1000.0
    counts = np.bincount(case.labels.ravel(), minlength=max(case.label_map) + 1)
    for label, info in case.label_map.items():
        truth = case.truth[("tissue_volume", info.name)]
        # Rasterisation error only: a few slices' worth for thin or small structures.
        assert counts[label] * voxel_cm3 == pytest.approx(truth, rel=0.2), info.name
    big = [i for i in case.label_map if case.truth[("tissue_volume", case.label_map[i].name)] > 20]
    for label in big:
        assert counts[label] * voxel_cm3 == pytest.approx(case.truth[("tissue_volume", case.label_map[label].name)],
                                                          rel=0.05)


def interior(labels: np.ndarray, label: int) -> np.ndarray:
    """Voxels of ``label`` two voxels away from any other region (no partial volume)."""
    return ndimage.binary_erosion(labels == label, iterations=2)


SE_THIGH = {"sequence": "T2_TSE", "tr_ms": 4000.0, "field_strength_t": 3.0, "vendor": "GE"}


@pytest.mark.parametrize("te", [20.0, 100.0])
def test_spin_echo_contrast_follows_the_signal_equation(te):
    case = subject("thigh", 0, noise=False, bias=0.0, acquisition=tuple({**SE_THIGH, "te_ms": te}.items()))
    ids = {info.name: i for i, info in case.label_map.items()}
    fat = case.volume[interior(case.labels, ids["subcutaneous_fat"])]
    muscle = case.volume[interior(case.labels, ids["quadriceps"])]
    assert fat.std() < 1e-3 * fat.mean() and muscle.std() < 1e-3 * muscle.mean()

    def expected(tissue):
        t = TISSUES[tissue]
        return SIGNAL_SCALE * VENDOR_GAIN["GE"] * spin_echo(t.pd, t.t1(3.0), t.t2, te, 4000.0)

    assert muscle.mean() == pytest.approx(expected("muscle"), rel=1e-4)
    assert fat.mean() / muscle.mean() == pytest.approx(expected("fat") / expected("muscle"), rel=1e-4)


def test_longer_echo_time_raises_fat_to_muscle_contrast_by_the_t2_decay():
    ratios = {}
    for te in (20.0, 100.0):
        case = subject("thigh", 0, noise=False, bias=0.0, acquisition=tuple({**SE_THIGH, "te_ms": te}.items()))
        ids = {info.name: i for i, info in case.label_map.items()}
        ratios[te] = (case.volume[interior(case.labels, ids["subcutaneous_fat"])].mean()
                      / case.volume[interior(case.labels, ids["hamstrings"])].mean())
    fat, muscle = TISSUES["fat"], TISSUES["muscle"]
    predicted = np.exp(-80.0 / fat.t2 + 80.0 / muscle.t2)
    assert ratios[100.0] / ratios[20.0] == pytest.approx(predicted, rel=1e-4)
    assert predicted > 2.5


def test_gradient_echo_flip_angle_changes_t1_contrast():
    values = {}
    for flip in (10.0, 30.0):
        acq = {"sequence": "3D_SPGR", "te_ms": 4.0, "tr_ms": 20.0, "flip_angle_deg": flip, "field_strength_t": 1.5}
        case = subject("knee", 2, noise=False, bias=0.0, acquisition=tuple(acq.items()))
        femur = case.volume[interior(case.labels, 1)].mean()
        values[flip] = femur
        t = TISSUES["yellow_marrow"]
        expected = spoiled_gradient_echo(t.pd, t.t1(1.5), t.t2, 4.0, 20.0, flip)
        assert femur == pytest.approx(SIGNAL_SCALE * VENDOR_GAIN[case.acquisition.vendor] * expected, rel=1e-4)
    assert values[30.0] != pytest.approx(values[10.0], rel=0.05)


def test_rician_noise_level_follows_snr_field_strength_and_voxel_size():
    sigmas = {}
    for field in (1.5, 3.0):
        acq = {**SE_THIGH, "te_ms": 60.0, "field_strength_t": field}
        case = subject("thigh", 0, snr=20.0, bias=0.0, acquisition=tuple(acq.items()))
        clean = subject("thigh", 0, noise=False, bias=0.0, acquisition=tuple(acq.items()))
        air = ndimage.binary_erosion(clean.volume == 0, iterations=2)
        # In air the magnitude of complex Gaussian noise is Rayleigh: mean = sigma * sqrt(pi / 2).
        sigma = case.volume[air].mean() / np.sqrt(np.pi / 2)
        reference = clean.volume[clean.labels > 0].mean()
        expected = reference / effective_snr("thigh", case.acquisition, 20.0)
        assert sigma == pytest.approx(expected, rel=0.05)
        sigmas[field] = sigma / reference
    assert sigmas[1.5] == pytest.approx(2 * sigmas[3.0], rel=0.1)


def test_knee_relaxation_maps_hold_the_compartment_values_with_spatial_variation():
    case = subject("knee", 1, noise=False)
    for quantity in ("t2", "t1rho"):
        values = case.maps[quantity]
        for label, info in case.label_map.items():
            if info.name.endswith("cartilage"):
                inside = values[case.labels == label]
                assert inside.std() > 1.0
                assert inside.mean() == pytest.approx(case.truth[(quantity, info.name)], rel=0.03)
        assert np.all(values[case.volume == 0] == 0)
    assert not subject("spine", 1).maps


def test_recorded_acquisition_and_demographics_are_plausible():
    for index in range(6):
        plan = blueprint("knee", 0, index)
        acq, demo = plan.acquisition, plan.demographics
        assert 0.3 <= acq.pixel_spacing_mm <= 0.7
        assert acq.field_strength_t in (1.5, 3.0) and acq.vendor in VENDOR_GAIN
        assert acq.acquisition_type in ("2D", "3D") and acq.te_ms < acq.tr_ms
        assert demo.sex in ("F", "M") and 18 <= demo.age_years <= 80 and 45 <= demo.weight_kg <= 140
    sequences = {blueprint("knee", 0, i).acquisition.sequence for i in range(20)}
    assert len(sequences) >= 3, "subjects are scanned with different protocols"


def test_bad_anatomy_and_acquisition_override_are_user_errors():
    with pytest.raises(DataError, match="unknown phantom anatomy 'elbow'"):
        generate_subject("elbow", 0, 0)
    with pytest.raises(DataError, match="unknown sequence"):
        blueprint("knee", 0, 0, PhantomOptions(acquisition={"sequence": "EPI"}))
    with pytest.raises(DataError, match="not an Acquisition field"):
        blueprint("knee", 0, 0, PhantomOptions(acquisition={"echo_time": 3.0}))
    assert [i.name for i in label_map("hip").values()] == EXPECTED_NAMES["hip"]

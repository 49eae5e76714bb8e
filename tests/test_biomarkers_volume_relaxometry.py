"""Tissue volume and T2/T1rho means against known shapes and values (DESIGN §8)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_biomarkers_shapes import CARTILAGE, subject_for

from mskbench.biomarkers.relaxometry import Relaxometry
from mskbench.biomarkers.volume import TissueVolume
from mskbench.errors import DataError, PluginError
from mskbench.types import LabelInfo, TissueClass

BONE = LabelInfo(3, "femur", TissueClass.BONE)
MENISCUS = LabelInfo(7, "meniscus", TissueClass.MENISCUS)
INFOS = (CARTILAGE, BONE, MENISCUS)


def by_structure(values):
    return {(v.biomarker, v.structure): v for v in values}


def test_volume_of_a_sphere_and_a_box_in_cm3():
    spacing = (0.7, 0.4, 0.55)
    axes = [(np.arange(n) - n / 2 + 0.3) * s for n, s in zip((60, 100, 80), spacing)]
    z, y, x = np.meshgrid(*axes, indexing="ij")
    labels = np.zeros((60, 100, 80), np.uint8)
    labels[np.sqrt(z**2 + y**2 + x**2) <= 12.0] = BONE.id
    labels[:10, :20, :30] = CARTILAGE.id  # 6000 voxels
    values = by_structure(TissueVolume().compute(labels, subject_for(labels, spacing, label_infos=INFOS),
                                                 [CARTILAGE, BONE, MENISCUS], 0))
    voxel_cm3 = 0.7 * 0.4 * 0.55 / 1000
    assert values["tissue_volume", "femoral_cartilage"].value == pytest.approx(6000 * voxel_cm3)
    sphere_cm3 = 4 / 3 * math.pi * 12.0**3 / 1000
    assert abs(values["tissue_volume", "femur"].value - sphere_cm3) / sphere_cm3 < 0.02
    assert math.isnan(values["tissue_volume", "meniscus"].value)
    assert values["tissue_volume", "total"].value == pytest.approx(
        values["tissue_volume", "femoral_cartilage"].value + values["tissue_volume", "femur"].value
    )
    assert values["tissue_volume", "total"].unit == "cm3"


def test_volume_total_is_optional_and_nan_when_nothing_is_present():
    labels = np.zeros((5, 5, 5), np.uint8)
    subject = subject_for(labels, (1.0, 1.0, 1.0), label_infos=INFOS)
    values = TissueVolume(total=True).compute(labels, subject, [BONE], 0)
    assert [v.structure for v in values] == ["femur", "total"] and all(math.isnan(v.value) for v in values)
    assert [v.structure for v in TissueVolume(total=False).compute(labels, subject, [BONE], 0)] == ["femur"]


def relaxometry_case():
    labels = np.zeros((4, 10, 10), np.int16)
    labels[:, :5] = CARTILAGE.id  # 200 voxels
    labels[:, 5:7] = MENISCUS.id  # 80 voxels
    t2 = np.full(labels.shape, 40.0, np.float32)
    t2[:, 5:7] = 20.0
    return labels, t2


def test_relaxometry_voxel_weighted_means_per_compartment_and_overall():
    labels, t2 = relaxometry_case()
    t2[0, 0, :] = 60.0  # 10 of the 200 cartilage voxels
    subject = subject_for(labels, (1.0, 0.5, 0.5), maps={"t2": t2}, label_infos=INFOS)
    values = by_structure(Relaxometry().compute(labels, subject, [CARTILAGE, MENISCUS], 0))
    assert values["t2", "femoral_cartilage"].value == pytest.approx((190 * 40 + 10 * 60) / 200)
    assert values["t2", "meniscus"].value == pytest.approx(20.0)
    assert values["t2", "overall"].value == pytest.approx((190 * 40 + 10 * 60 + 80 * 20) / 280)
    assert values["t2", "overall"].unit == "ms"
    assert not any(v.biomarker == "t1rho" for v in values.values())  # no map, nothing to measure


def test_relaxometry_clips_to_100_and_excludes_zero_negative_and_nan():
    labels, t2 = relaxometry_case()
    t2[0, 0, :5] = 0.0
    t2[0, 1, :5] = np.nan
    t2[0, 2, :5] = -30.0
    t2[0, 3, :5] = 400.0  # clipped to 100
    subject = subject_for(labels, (1.0, 0.5, 0.5), maps={"t1rho": t2}, label_infos=INFOS)
    values = by_structure(Relaxometry().compute(labels, subject, [CARTILAGE], 0))
    assert values["t1rho", "femoral_cartilage"].value == pytest.approx((180 * 40 + 5 * 100) / 185)  # 15 excluded


def test_relaxometry_missing_compartment_or_no_valid_voxel_is_nan():
    labels, t2 = relaxometry_case()
    t2[labels == MENISCUS.id] = 0.0
    subject = subject_for(labels, (1.0, 0.5, 0.5), maps={"t2": t2}, label_infos=INFOS)
    values = by_structure(Relaxometry(maps=["t2"]).compute(labels, subject, [MENISCUS, BONE], 0))
    assert math.isnan(values["t2", "meniscus"].value) and math.isnan(values["t2", "femur"].value)
    assert math.isnan(values["t2", "overall"].value)


def test_relaxometry_map_on_another_grid_is_one_clear_error():
    labels, t2 = relaxometry_case()
    subject = subject_for(labels, (1.0, 0.5, 0.5), maps={"t2": t2[:, :, :8]}, label_infos=INFOS)
    with pytest.raises(DataError, match=r"t2 map has shape \(4, 10, 8\) but the mask has \(4, 10, 10\)"):
        Relaxometry().compute(labels, subject, [CARTILAGE], 0)


def test_relaxometry_rejects_unknown_map_names_with_a_suggestion():
    with pytest.raises(PluginError, match="did you mean 't1rho'"):
        Relaxometry(maps=["t1_rho"])


@pytest.mark.parametrize("spacing", [(0.0, 1.0, 1.0), (float("nan"), 1.0, 1.0), ()])
def test_absent_spacing_is_one_clear_error(spacing):
    labels, _ = relaxometry_case()
    subject = subject_for(labels, (1.0, 1.0, 1.0), label_infos=INFOS)
    subject.spacing = spacing
    with pytest.raises(DataError, match="spacing .* is missing or invalid"):
        TissueVolume().compute(labels, subject, [CARTILAGE], 0)


def test_float_label_volume_is_rejected():
    labels, _ = relaxometry_case()
    subject = subject_for(labels, (1.0, 1.0, 1.0), label_infos=INFOS)
    with pytest.raises(DataError, match="labels must be integers"):
        TissueVolume().compute(labels.astype(np.float32), subject, [CARTILAGE], 0)

"""Selecting labels by name or tissue class, and merging them."""

from __future__ import annotations

import numpy as np
import pytest

from mskbench.data.labels import guess_tissue, label_map_from_names, select_labels
from mskbench.errors import DataError
from mskbench.types import LabelInfo, Subject, TissueClass

LABELS = {
    1: LabelInfo(1, "femur", TissueClass.BONE),
    2: LabelInfo(2, "femoral_cartilage", TissueClass.CARTILAGE),
    3: LabelInfo(3, "tibia", TissueClass.BONE),
    4: LabelInfo(4, "medial_tibial_cartilage", TissueClass.CARTILAGE),
    5: LabelInfo(5, "lateral_tibial_cartilage", TissueClass.CARTILAGE),
    6: LabelInfo(6, "medial_meniscus", TissueClass.MENISCUS),
}


def _subject() -> Subject:
    labels = np.arange(7, dtype=np.uint8).repeat(4).reshape(7, 2, 2)
    return Subject("s", np.ones(labels.shape, np.float32), labels, (1.0, 1.0, 1.0), np.eye(4), dict(LABELS))


def test_include_by_name_and_tissue():
    out = select_labels(_subject(), ["femur", "cartilage"], None)
    assert sorted(out.label_map) == [1, 2, 4, 5]
    assert set(np.unique(out.labels)) == {0, 1, 2, 4, 5}
    assert (out.labels[3] == 0).all() and (out.labels[6] == 0).all()


def test_merge_assigns_new_id_and_tissue():
    out = select_labels(_subject(), None, {"tibial_cartilage": ["medial_tibial_cartilage", "lateral_tibial_cartilage"],
                                           "bones_and_meniscus": ["bone", "medial_meniscus"]})
    new = {info.name: info for info in out.label_map.values()}
    assert new["tibial_cartilage"].id == 7 and new["tibial_cartilage"].tissue == TissueClass.CARTILAGE
    assert new["bones_and_meniscus"].id == 8 and new["bones_and_meniscus"].tissue == TissueClass.OTHER
    assert sorted(out.label_map) == [2, 7, 8]
    assert (out.labels[4] == 7).all() and (out.labels[5] == 7).all()
    assert (out.labels[1] == 8).all() and (out.labels[3] == 8).all() and (out.labels[6] == 8).all()
    assert (out.labels[2] == 2).all()


def test_include_with_merge_replaces_members():
    out = select_labels(_subject(), ["cartilage"], {"tibial_cartilage": ["medial_tibial_cartilage", "lateral_tibial_cartilage"]})
    assert [info.name for info in out.label_map.values()] == ["femoral_cartilage", "tibial_cartilage"]


def test_unknown_name_suggests():
    with pytest.raises(DataError, match="did you mean 'femoral_cartilage'"):
        select_labels(_subject(), ["femoral_cartilag"], None)
    with pytest.raises(DataError, match="unknown label"):
        select_labels(_subject(), None, {"x": ["nothing_like_it"]})


def test_guess_and_explicit_tissues():
    assert guess_tissue("Lateral Tibial Cartilage") == TissueClass.CARTILAGE
    assert guess_tissue("intervertebral_discs") == TissueClass.DISC
    assert guess_tissue("iliopsoas_left") == TissueClass.MUSCLE
    assert guess_tissue("liver") == TissueClass.OTHER
    out = label_map_from_names({1: "liver"}, {"liver": "fat"})
    assert out[1].tissue == TissueClass.FAT
    with pytest.raises(DataError, match="not a tissue class"):
        label_map_from_names({1: "liver"}, {"liver": "organ"})

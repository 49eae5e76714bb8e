"""Label selection, per-anatomy defaults and plugin registration of the biomarkers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mskbench.biomarkers.selection import ANATOMIES, BIOMARKER_PLUGINS, default_biomarkers, select_structures
from mskbench.errors import PluginError
from mskbench.plugin_manager import load_registry
from mskbench.protocols import Biomarker
from mskbench.types import LabelInfo, Subject, TissueClass

KNEE = {
    1: LabelInfo(1, "femur", TissueClass.BONE),
    2: LabelInfo(2, "femoral_cartilage", TissueClass.CARTILAGE),
    3: LabelInfo(3, "tibia", TissueClass.BONE),
    4: LabelInfo(4, "tibial_cartilage", TissueClass.CARTILAGE),
    5: LabelInfo(5, "medial_meniscus", TissueClass.MENISCUS),
}


def names(infos):
    return [info.name for info in infos]


def test_select_by_tissue_by_name_and_their_union_in_id_order():
    assert names(select_structures(KNEE, tissues=["cartilage"])) == ["femoral_cartilage", "tibial_cartilage"]
    assert names(select_structures(KNEE, names=["tibia"])) == ["tibia"]
    assert names(select_structures(KNEE, names=["medial_meniscus"], tissues=["cartilage"])) == [
        "femoral_cartilage", "tibial_cartilage", "medial_meniscus"]
    assert select_structures(KNEE, tissues=["fat"]) == []
    assert len(select_structures(KNEE)) == 5


def test_per_biomarker_default_tissues_when_nothing_is_chosen():
    assert names(select_structures(KNEE, default_for="cartilage_thickness")) == ["femoral_cartilage", "tibial_cartilage"]
    assert names(select_structures(KNEE, names=["tibia"], default_for="cartilage_thickness")) == ["tibia"]
    assert select_structures(KNEE, default_for="disc_height") == []
    assert len(select_structures(KNEE, default_for="someone_elses_plugin")) == 5


def test_unknown_label_or_tissue_suggests_the_nearest():
    with pytest.raises(PluginError, match="'femoral_cartilag' is not in the dataset's label map .did you mean 'femoral_cartilage'"):
        select_structures(KNEE, names=["femoral_cartilag"])
    with pytest.raises(PluginError, match="unknown tissue class 'cartilages' .did you mean 'cartilage'"):
        select_structures(KNEE, tissues=["cartilages"])


def test_anatomy_defaults():
    knee = default_biomarkers("knee")
    assert knee == {
        "cartilage_thickness": {"tissues": ["cartilage"]},
        "relaxometry": {"tissues": ["cartilage"]},
        "tissue_volume": {"tissues": ["bone"]},
    }
    assert set(default_biomarkers("spine")) == {"disc_height", "tissue_volume"}
    assert default_biomarkers("spine")["tissue_volume"] == {"tissues": ["muscle"]}
    assert default_biomarkers("thigh") == {"tissue_volume": {"tissues": ["muscle", "fat", "bone"]}}
    assert set(default_biomarkers("hip")) == {"cartilage_thickness", "tissue_volume"}
    assert set(default_biomarkers(None)) == {"tissue_volume"}
    knee["tissue_volume"]["tissues"].append("fat")  # callers get copies
    assert default_biomarkers("knee")["tissue_volume"] == {"tissues": ["bone"]}
    for anatomy in ANATOMIES:
        assert set(default_biomarkers(anatomy)) <= set(BIOMARKER_PLUGINS)


def test_builtin_plugins_are_registered_and_compute():
    registry = load_registry()
    assert set(BIOMARKER_PLUGINS) <= set(registry.names("biomarker"))
    labels = np.zeros((6, 20, 20), np.int16)
    labels[:, 5:9, 2:18] = 2
    labels[:, 12:16, 4:16] = 4
    t2 = np.full(labels.shape, 35.0, np.float32)
    subject = Subject("s", np.zeros(labels.shape, np.float32), labels, (1.0, 0.5, 0.5), np.diag([1.0, 0.5, 0.5, 1.0]),
                      KNEE, maps={"t2": t2})
    for plugin in BIOMARKER_PLUGINS:
        biomarker = registry.create("biomarker", plugin, {}, f"biomarkers.{plugin}")
        assert isinstance(biomarker, Biomarker)
        structures = select_structures(KNEE, default_for=plugin)
        values = biomarker.compute(labels, subject, structures, 0)
        measured = [v for v in values if not math.isnan(v.value)]
        assert measured or plugin == "disc_height", plugin
    volume = registry.create("biomarker", "tissue_volume", {"total": False}, "biomarkers.tissue_volume")
    assert all(v.structure != "total" for v in volume.compute(labels, subject, [KNEE[2]], 0))
    with pytest.raises(PluginError, match="connectivity"):
        registry.create("biomarker", "disc_height", {"connectivity": 4}, "biomarkers.disc_height")

"""The weight-free interactive 2D and 3D baselines: declarations, behaviour on hand-made images,
and a volume model's bad output named in one line."""

from __future__ import annotations

import numpy as np
import pytest

from mskbench.errors import PluginError
from mskbench.model_kinds import check_volume_output
from mskbench.protocols import InteractiveSegmenter, InteractiveVolumeModel, Segmenter, VolumeInput, VolumeModel
from mskbench.segmenters.random_walker import RandomWalkerClicks
from mskbench.segmenters.region_growing_3d import RegionGrowing3D
from mskbench.types import Prompt
from mskbench_builtins.models import baselines


def image_with_two_blobs() -> np.ndarray:
    """60x80: background 40, a bright rectangle (rows 10..29, cols 10..34) and a bright disc at (45, 60)."""
    image = np.full((60, 80), 40, np.uint8)
    image[10:30, 10:35] = 200
    rows, cols = np.ogrid[:60, :80]
    image[(rows - 45) ** 2 + (cols - 60) ** 2 <= 36] = 200
    return image


def test_factories_declare_what_the_classes_are():
    for factory, cls, protocols in ((baselines._random_walker_clicks, RandomWalkerClicks, (Segmenter, InteractiveSegmenter)),
                                    (baselines._region_growing_3d, RegionGrowing3D, (VolumeModel, InteractiveVolumeModel))):
        assert factory.supported_prompts == cls.supported_prompts and factory.feedback == cls.feedback
        assert factory.interactive and all(isinstance(factory(), p) for p in protocols)
    assert baselines._region_growing_3d.kind == "volume"


def test_random_walker_box_then_a_positive_click_adds_the_missed_blob():
    model = RandomWalkerClicks()
    [embedding] = model.encode([image_with_two_blobs()])
    box = Prompt(kind="box", label=1, prompter="p", seed=0, box=(5.0, 5.0, 40.0, 35.0))
    first = model.refine(embedding, box, None).mask
    assert first[10:30, 10:35].all() and first.sum() == 20 * 25
    clicked = Prompt(kind="box+point", label=1, prompter="p", seed=0, box=box.box, points=((60.0, 45.0),), point_labels=(1,))
    second = model.refine(embedding, clicked, first).mask
    assert second[10:30, 10:35].all() and second[45, 60] and second[42:49, 57:64].sum() >= 30
    assert not second[0:5].any()


def test_random_walker_without_a_foreground_seed_is_empty():
    model = RandomWalkerClicks()
    [embedding] = model.encode([image_with_two_blobs()])
    negative = Prompt(kind="point", label=1, prompter="p", seed=0, points=((20.0, 20.0),), point_labels=(0,))
    assert not model.refine(embedding, negative, None).mask.any()


def test_region_growing_from_a_box3d_and_a_click_outside_it():
    volume = np.full((5, 60, 80), 40, np.uint8)
    volume[1:4] = image_with_two_blobs()
    inputs = VolumeInput(volume, (3.0, 0.8, 0.8), 0, (1,))
    box3d = Prompt(kind="box3d", label=1, prompter="p", seed=0, box=(5.0, 5.0, 40.0, 35.0), slice_index=2, extent=(1, 3))
    labels = RegionGrowing3D().predict(inputs, [box3d])
    assert labels.dtype == np.int32 and (labels[1:4, 10:30, 10:35] == 1).all() and (labels == 1).sum() == 3 * 20 * 25
    click = Prompt(kind="point", label=1, prompter="p", seed=0, points=((60.0, 45.0),), point_labels=(1,), slice_index=2)
    refined = RegionGrowing3D().refine(inputs, [box3d, click], None).mask
    assert refined[1:4, 10:30, 10:35].all() and refined[2, 42:49, 57:64].sum() >= 30


def test_volume_output_of_the_wrong_shape_or_dtype_is_one_line_naming_the_model():
    with pytest.raises(PluginError, match=r"model 'vol' returned a label volume of shape \(4, 5\); expected \(4, 5, 6\)"):
        check_volume_output(np.zeros((4, 5), np.int32), (4, 5, 6), "vol")
    with pytest.raises(PluginError, match="model 'vol' returned a label volume of dtype float32; expected integer"):
        check_volume_output(np.zeros((4, 5, 6), np.float32), (4, 5, 6), "vol")


def test_region_growing_predict_uses_all_prompts_of_a_label_together():
    """A label's prompts make one grow (as refine's round 0): a negative point carves the box's region."""
    volume = np.full((5, 60, 80), 40, np.uint8)
    volume[1:4] = image_with_two_blobs()
    inputs = VolumeInput(volume, (3.0, 0.8, 0.8), 0, (1,))
    box3d = Prompt(kind="box3d", label=1, prompter="p", seed=0, box=(5.0, 5.0, 40.0, 35.0), slice_index=2, extent=(1, 3))
    negative = Prompt(kind="point", label=1, prompter="p", seed=0, points=((20.0, 20.0),), point_labels=(0,), slice_index=1)
    labels = RegionGrowing3D(point_radius=1).predict(inputs, [box3d, negative])
    np.testing.assert_array_equal(labels == 1, RegionGrowing3D(point_radius=1).refine(inputs, [box3d, negative], None).mask)
    # its 3x3x3 cube reaches slices 0..2; slice 0 lies outside the box
    assert not labels[0:3, 19:22, 19:22].any() and (labels == 1).sum() == 3 * 20 * 25 - 2 * 9

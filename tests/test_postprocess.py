"""Post-processing operations on hand-made masks (expected results drawn by hand), their fixed order, and the
runner scoring the post-processed masks (a speck beside a perfect prediction: Dice 1 exactly once removed)."""

from __future__ import annotations

import numpy as np
import pytest

from mskbench.errors import SuiteError
from mskbench.execution.unit import Unit, UnitContext, run_unit
from mskbench.metrics.overlap import OverlapMetrics
from mskbench.model_kinds import ModelKind
from mskbench.params import validate_params
from mskbench.plan import Cell
from mskbench.postprocess import POSTPROCESS_SCHEMA, Postprocess
from mskbench.prompting.oracle import NonePrompter

SPACING = (2.0, 0.5, 0.5)  # axis 0 is the slicing axis; a voxel is 0.5 mm³


def settings(**given) -> Postprocess:
    return Postprocess.from_table(validate_params(POSTPROCESS_SCHEMA, given, "pp", error=SuiteError), "pp")


def run(pp: Postprocess, mask: np.ndarray, name: str = "femur") -> np.ndarray:
    return pp.apply({1: mask}, {1: name}, 0, SPACING)[1]


def volume(*slices: str) -> np.ndarray:
    """Slices drawn as text: '#' is foreground, rows separated by '/'."""
    return np.stack([np.array([[c == "#" for c in row] for row in s.split("/")]) for s in slices])


def test_the_default_does_nothing():
    mask = volume("#..#/..#./....")
    assert not Postprocess().active
    np.testing.assert_array_equal(run(Postprocess(), mask), mask)


def test_closing_bridges_a_one_pixel_gap_within_a_slice_but_not_across_slices():
    gap = volume("......./.##.##./.##.##./.......")
    closed = run(settings(closing_px=3), gap)
    np.testing.assert_array_equal(closed, volume("......./.#####./.#####./......."))
    across = np.stack([gap[0] | True, np.zeros_like(gap[0]), gap[0] | True])[:, :3, :3] & False
    across[0, 1, 1] = across[2, 1, 1] = True  # a gap along the slicing axis stays open
    np.testing.assert_array_equal(run(settings(closing_px=3), across), across)


def test_a_per_label_kernel_overrides_the_default():
    gap = volume("........./.##...##./.##...##./.........")
    pp = settings(closing_px=3, closing_px_by_label={"femur": 5})
    np.testing.assert_array_equal(run(pp, gap, "femur"), volume("........./.#######./.#######./........."))
    np.testing.assert_array_equal(run(pp, gap, "tibia"), gap)  # 3 px does not bridge a 3 px gap


def test_fill_holes_by_slice_and_in_volume():
    ring = volume("...../.###./.#.#./.###./.....")
    filled = volume("...../.###./.###./.###./.....")
    np.testing.assert_array_equal(run(settings(fill_holes="slice"), ring), filled)
    # one slice: its hole touches the background above and below in 3D, so only the slice rule fills it
    np.testing.assert_array_equal(run(settings(fill_holes="volume"), ring), ring)
    cube = np.zeros((5, 5, 5), bool)
    cube[1:4, 1:4, 1:4] = True
    hollow = cube.copy()
    hollow[2, 2, 2] = False
    np.testing.assert_array_equal(run(settings(fill_holes="volume"), hollow), cube)


def test_blur_removes_an_isolated_voxel_and_keeps_a_block_interior():
    mask = np.zeros((1, 15, 15), bool)
    mask[0, 2, 2] = True  # a lone voxel: blurred to 1 / (2π σ²) = 0.16 < 0.5
    mask[0, 5:14, 5:14] = True
    out = run(settings(blur_sigma_px=1.0), mask)
    assert not out[0, 2, 2] and out[0, 9, 9] and out[0, 5:14, 5:14].sum() < 81  # corners rounded
    assert not out[0, :, :4].any()


def test_blur_does_not_reach_across_slices():
    mask = np.zeros((3, 9, 9), bool)
    mask[1, 2:7, 2:7] = True
    out = run(settings(blur_sigma_px=1.0), mask)
    assert not out[0].any() and not out[2].any() and out[1, 4, 4]


def test_min_object_volume_in_mm3():
    mask = np.zeros((2, 10, 12), bool)
    mask[0, 0, 0:9] = True  # 9 voxels = 4.5 mm³: below 5 mm³
    mask[1, 5, 0:10] = True  # 10 voxels = 5.0 mm³: kept
    out = run(settings(min_object_mm3=5.0), mask)
    assert not out[0].any() and out[1].sum() == 10


def test_largest_components_are_26_connected():
    mask = np.zeros((3, 8, 8), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = mask[2, 2, 2] = True  # one diagonal component of 3
    mask[0, 6:8, 6:8] = True  # 4 voxels
    mask[2, 6, 0] = True
    largest = np.zeros_like(mask)
    largest[0, 6:8, 6:8] = True
    np.testing.assert_array_equal(run(settings(largest_components=1), mask), largest)
    two = run(settings(largest_components=2), mask)
    assert two.sum() == 7 and not two[2, 6, 0]


def test_operations_run_in_the_documented_order():
    """Closing first: two 4-voxel pieces (2 mm³ each) bridged into one 9-voxel component survive a 3 mm³ floor."""
    mask = volume(".........../.####.####./...........")
    out = run(settings(closing_px=3, min_object_mm3=3.0), mask)
    assert out.sum() == 9
    assert not run(settings(min_object_mm3=3.0), mask).any()


class SpeckedReference:
    """A volume model predicting the reference exactly plus one far-away voxel of label 1."""

    supported_prompts = frozenset()

    def __init__(self, reference: np.ndarray):
        self.reference = reference

    def predict(self, volume, prompts):
        out = self.reference.copy()
        out[-1, -1, -1] = 1
        return out

    def describe(self):
        return {}


def test_the_runner_scores_post_processed_masks():
    from test_execution_unit import PREPARED

    assert PREPARED.labels[-1, -1, -1] == 0
    cell = Cell("d", "m", "none", 0)
    context = UnitContext({"none": NonePrompter()}, [OverlapMetrics()], None)
    initial = {cell.cell_id: {k: [] for k in PREPARED.slice_indices}}

    def dice(pp: Postprocess) -> dict[int, float]:
        unit = Unit("d", PREPARED, "m", ModelKind("volume"), 1, (cell,), initial, postprocess=pp)
        records = run_unit(unit, context, SpeckedReference(PREPARED.labels))[0]
        return {r["label"]: r["value"] for r in records.tables["subject_metrics"] if r["metric"] == "dice"}

    raw = dice(Postprocess())
    assert raw[2] == 1.0 and raw[1] < 1.0
    assert dice(settings(largest_components=1)) == {1: 1.0, 2: 1.0}


@pytest.mark.parametrize("given, message", [
    ({"closing_px": 4}, "pp.closing_px: 4 is not an odd number"),
    ({"closing_px_by_label": {"femur": 2}}, "pp.closing_px_by_label.femur: 2 is not an odd number"),
    ({"closing_px_by_label": {"femur": "7"}}, "pp.closing_px_by_label.femur: '7' is not an odd number"),
])
def test_kernel_sizes_must_be_odd(given, message):
    with pytest.raises(SuiteError, match=message):
        settings(**given)

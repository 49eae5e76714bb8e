"""Agreement with MONAI where the conventions coincide, and each place they differ.

MONAI (its CPU path) uses the same boundary (erosion with a face-connected
structure, outside the image as background) and exact Euclidean distances
with spacing, so HD, HD95, symmetric ASSD and NSD agree on hits to float32
precision. The tests below the agreement tests pin down, one by one, where
MONAI's defaults or empty-case handling differ from the mskbench policy.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
monai_metrics = pytest.importorskip("monai.metrics")

from mskbench.metrics.engine import score_unit  # noqa: E402
from mskbench.metrics.overlap import OverlapMetrics  # noqa: E402
from mskbench.metrics.surface import SurfaceMetrics  # noqa: E402

TAU = 1.0
OURS = [OverlapMetrics(), SurfaceMetrics(nsd_tolerance_mm=TAU)]


def one_hot(mask: np.ndarray):
    """[1, 2, *spatial] background/foreground tensor, MONAI's input layout."""
    return torch.from_numpy(np.stack([~mask, mask])[None].astype(np.float32))


def monai(name: str, reference: np.ndarray, prediction: np.ndarray, spacing, **kwargs) -> float:
    y, y_pred = one_hot(reference), one_hot(prediction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "hd95":
            out = monai_metrics.compute_hausdorff_distance(y_pred, y, percentile=95, spacing=spacing, **kwargs)
        elif name == "hd":
            out = monai_metrics.compute_hausdorff_distance(y_pred, y, spacing=spacing, **kwargs)
        elif name == "assd":
            out = monai_metrics.compute_average_surface_distance(y_pred, y, spacing=spacing, **kwargs)
        elif name == "nsd":
            out = monai_metrics.compute_surface_dice(y_pred, y, class_thresholds=[TAU], spacing=spacing, **kwargs)
        elif name == "dice":
            out = monai_metrics.compute_dice(y_pred, y, include_background=False, **kwargs)
        else:
            out = monai_metrics.compute_iou(y_pred, y, include_background=False, **kwargs)
    return float(out.reshape(-1)[0])


def ours(reference, prediction, spacing):
    state, values = score_unit(reference, prediction, spacing, OURS)
    return state, values


def blobs(shape, rng, count=3):
    """A few random overlapping boxes: irregular shapes with concavities."""
    mask = np.zeros(shape, dtype=bool)
    for _ in range(count):
        lo = [rng.integers(0, n - 2) for n in shape]
        hi = [rng.integers(l + 1, min(n, l + n // 2) + 1) for l, n in zip(lo, shape)]
        mask[tuple(slice(a, b) for a, b in zip(lo, hi))] = True
    return mask


CASES = [((48, 40), (0.45, 0.8)), ((64, 64), (1.0, 1.0)), ((20, 24, 12), (0.7, 0.5, 2.2)), ((16, 16, 16), (1.0, 1.2, 0.9))]


@pytest.mark.parametrize(("shape", "spacing"), CASES)
@pytest.mark.parametrize("seed", range(4))
def test_hits_agree_with_monai(shape, spacing, seed):
    rng = np.random.default_rng(seed)
    reference, prediction = blobs(shape, rng), blobs(shape, rng)
    state, values = ours(reference, prediction, spacing)
    assert state == "hit"
    for name in ("hd95", "hd", "nsd", "dice", "iou"):
        expected = monai(name, reference, prediction, spacing)
        assert values[name].value == pytest.approx(expected, rel=1e-5, abs=1e-5), name
    symmetric = monai("assd", reference, prediction, spacing, symmetric=True)
    assert values["assd"].value == pytest.approx(symmetric, rel=1e-5)


def test_masd_is_the_mean_of_monais_two_directed_means():
    """MONAI has no MASD; its directed ASSD (symmetric=False) in both directions gives it."""
    rng = np.random.default_rng(7)
    reference, prediction = blobs((40, 40), rng), blobs((40, 40), rng)
    spacing = (0.6, 0.9)
    pred_to_ref = monai("assd", reference, prediction, spacing, symmetric=False)
    ref_to_pred = monai("assd", prediction, reference, spacing, symmetric=False)
    _, values = ours(reference, prediction, spacing)
    assert values["masd"].value == pytest.approx((pred_to_ref + ref_to_pred) / 2, rel=1e-5)
    assert values["assd"].value != pytest.approx(pred_to_ref, rel=1e-3)  # MONAI's default is directed


@pytest.fixture
def square():
    mask = np.zeros((12, 12), dtype=bool)
    mask[3:7, 4:9] = True
    return mask


def test_miss_monai_gives_nan_hd95_and_inf_hd_where_mskbench_substitutes_the_diagonal(square):
    empty = np.zeros_like(square)
    spacing = (0.5, 0.5)
    state, values = ours(square, empty, spacing)
    assert state == "miss"
    assert np.isnan(monai("hd95", square, empty, spacing))  # dropped by nan-mean aggregation
    assert np.isinf(monai("hd", square, empty, spacing))
    assert np.isinf(monai("assd", square, empty, spacing, symmetric=True))
    diagonal = np.hypot(12 * 0.5, 12 * 0.5)
    for name in ("hd95", "hd", "assd", "masd"):
        assert values[name].value == pytest.approx(diagonal) and values[name].substituted
    # NSD and Dice coincide: 0 in both, and not a substitution
    assert monai("nsd", square, empty, spacing) == values["nsd"].value == 0.0
    assert monai("dice", square, empty, spacing) == values["dice"].value == 0.0
    assert not values["nsd"].substituted and not values["dice"].substituted


def test_false_positive_monai_dice_is_nan_by_default_where_mskbench_gives_zero(square):
    empty = np.zeros_like(square)
    state, values = ours(empty, square, (1.0, 1.0))
    assert state == "false_positive"
    assert np.isnan(monai("dice", empty, square, (1.0, 1.0)))  # ignore_empty=True looks at the reference only
    assert np.isnan(monai("iou", empty, square, (1.0, 1.0)))
    assert monai("dice", empty, square, (1.0, 1.0), ignore_empty=False) == values["dice"].value == 0.0
    assert values["hd95"].substituted and values["hd95"].value == pytest.approx(np.hypot(12, 12))


def test_both_empty_monai_ignore_empty_false_gives_dice_one_where_mskbench_gives_nan():
    empty = np.zeros((8, 8), dtype=bool)
    state, values = ours(empty, empty, (1.0, 1.0))
    assert state == "both_empty"
    assert monai("dice", empty, empty, (1.0, 1.0), ignore_empty=False) == 1.0
    assert np.isnan(monai("dice", empty, empty, (1.0, 1.0)))
    assert np.isnan(monai("nsd", empty, empty, (1.0, 1.0)))
    assert all(np.isnan(v.value) and not v.substituted for v in values.values())


def test_monai_subvoxel_nsd_is_a_different_definition():
    """use_subvoxels=True weights DeepMind-style surfels by area; mskbench counts boundary voxels."""
    rng = np.random.default_rng(3)
    spacing = (0.7, 0.5, 1.6)
    reference, prediction = blobs((18, 18, 10), rng), blobs((18, 18, 10), rng)
    _, values = ours(reference, prediction, spacing)
    counted = monai("nsd", reference, prediction, spacing)
    weighted = monai("nsd", reference, prediction, spacing, use_subvoxels=True)
    assert values["nsd"].value == pytest.approx(counted, rel=1e-5)
    assert abs(weighted - counted) > 1e-3

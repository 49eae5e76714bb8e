"""Dataset-level preprocessing the runner applies to every subject (DESIGN §2).

Intensity normalisation to uint8 (what the 2D foundation models take),
small-object removal on the reference labels (annotation specks are not
structures a prompt could target), and the choice of slices to evaluate.
Everything works on whole volumes at once so a subject costs a few
vectorised passes, not a Python loop over slices.

Small objects are measured in physical units by default (mm² within a
slice, mm³ in the volume), so the same rule means the same anatomy at any
resolution. The source study's rule was written in voxels (100 pixels,
1000 voxels) for its sub-millimetre knee data; the defaults are those voxel
counts at a 0.5 mm isotropic reference voxel (25 mm², 125 mm³). The voxel
form (``min_object_pixels`` / ``min_object_voxels``) stays available to
reproduce a voxel rule exactly. What the removal did to every reference
label is returned with the prepared subject (:class:`LabelVoxels`), so
nothing is deleted silently.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import cc3d
import numpy as np

from mskbench.errors import DataError
from mskbench.types import SliceAxis, Subject

_NAMED_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}  # RAS+: x = R, y = A, z = S

#: The source study's small-object rule, in voxels (per slice, per volume).
SOURCE_MIN_OBJECT_PIXELS = 100
SOURCE_MIN_OBJECT_VOXELS = 1000
#: The voxel those counts are taken to be calibrated for: 0.5 mm isotropic, the middle of the
#: 0.3-0.7 mm in-plane range of 3D knee protocols (DESS, qDESS, SPGR) the study's knee data come from.
#: 0.5 mm is exact in binary floating point, so at this spacing the mm defaults remove exactly
#: what the voxel rule removes.
REFERENCE_SPACING_MM = 0.5
DEFAULT_MIN_OBJECT_MM2 = SOURCE_MIN_OBJECT_PIXELS * REFERENCE_SPACING_MM**2  # 25 mm²
DEFAULT_MIN_OBJECT_MM3 = SOURCE_MIN_OBJECT_VOXELS * REFERENCE_SPACING_MM**3  # 125 mm³
#: A label losing more than this fraction of its reference voxels to preprocessing is reported.
WARN_LOST_FRACTION = 0.10

# unit -> factor to mm² / mm³; keys are matched after lower-casing and removing spaces
_AREA_UNITS = {"mm2": 1.0, "mm²": 1.0, "mm^2": 1.0, "cm2": 100.0, "cm²": 100.0, "cm^2": 100.0}
_VOLUME_UNITS = {
    "mm3": 1.0, "mm³": 1.0, "mm^3": 1.0, "µl": 1.0, "ul": 1.0, "μl": 1.0,
    "cm3": 1000.0, "cm³": 1000.0, "cm^3": 1000.0, "ml": 1000.0,
}
_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")


def parse_physical(value: object, kind: str) -> float:
    """A threshold in mm² (``kind='area'``) or mm³ (``kind='volume'``) from a number or a string with a unit.

    Numbers are taken in mm² / mm³; strings may carry a unit: ``"25 mm2"``,
    ``"0.25 cm²"``, ``"125 mm3"``, ``"0.125 ml"``. Raises DataError (one line)
    for a unit that does not parse or does not match ``kind``, and for
    negative, NaN or infinite values.
    """
    units = _AREA_UNITS if kind == "area" else _VOLUME_UNITS
    default_unit = "mm²" if kind == "area" else "mm³"
    example = '25 or "25 mm2"' if kind == "area" else '125 or "125 mm3"'
    if isinstance(value, bool):
        raise DataError(f"expected a number of {default_unit} or a string like {example}, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if match is None:
            raise DataError(f"{value!r} is not a number with a unit; write e.g. {example}")
        number = float(match.group(1))
        unit = match.group(2).replace(" ", "").lower()
        if unit:
            if unit not in units:
                known = ", ".join(sorted({u for u in units if u.isascii()}))
                raise DataError(f"{value!r}: unit '{match.group(2)}' is not a{'n area' if kind == 'area' else ' volume'} unit ({known}); write e.g. {example}")
            number *= units[unit]
    else:
        raise DataError(f"expected a number of {default_unit} or a string like {example}, got {value!r}")
    if not math.isfinite(number) or number < 0:
        raise DataError(f"{value!r}: must be a finite number >= 0 (0 disables the removal)")
    return number


def count_threshold(physical: float, unit_size: float) -> int:
    """The smallest whole number of pixels/voxels of size ``unit_size`` whose total reaches ``physical``.

    A component of n units is removed when n × unit_size < physical, i.e.
    when n < this count. A relative tolerance of 1e-9 absorbs floating-point
    error in the spacing product, so 100 × 0.25 mm² is exactly 100 pixels.
    """
    if physical <= 0:
        return 0
    if unit_size <= 0 or not math.isfinite(unit_size):
        raise DataError(f"voxel size {unit_size!r} mm: cannot convert a physical threshold; check the spacing")
    return max(1, math.ceil(physical / unit_size * (1.0 - 1e-9)))


@dataclass(frozen=True)
class PreprocessConfig:
    """Preprocessing settings, recorded in the run manifest via :meth:`describe`.

    The small-object thresholds come in two forms per dimension, of which at
    most one may be given: physical (``min_object_mm2`` per slice,
    ``min_object_mm3`` per volume; the defaults, scaled by each subject's
    spacing) or voxel counts (``min_object_pixels``, ``min_object_voxels``;
    for reproducing a voxel rule exactly). When neither is given, the
    physical default applies. 0 disables a removal.
    """

    clip_percentiles: tuple[float, float] = (0.5, 99.5)  # of non-zero voxels; (1, 99) selectable
    min_object_mm2: float | None = None  # per slice, per label; default DEFAULT_MIN_OBJECT_MM2
    min_object_mm3: float | None = None  # per volume, per label; default DEFAULT_MIN_OBJECT_MM3
    min_object_pixels: int | None = None  # voxel form of min_object_mm2 (exact reproduction)
    min_object_voxels: int | None = None  # voxel form of min_object_mm3 (exact reproduction)
    include_empty_slices: bool = False

    def __post_init__(self) -> None:
        low, high = self.clip_percentiles
        if not 0.0 <= low < high <= 100.0:
            raise DataError(
                f"clip_percentiles {self.clip_percentiles}: need 0 <= low < high <= 100, e.g. (0.5, 99.5) or (1, 99)"
            )
        for physical, voxels, kind, default in (
            ("min_object_mm2", "min_object_pixels", "area", DEFAULT_MIN_OBJECT_MM2),
            ("min_object_mm3", "min_object_voxels", "volume", DEFAULT_MIN_OBJECT_MM3),
        ):
            mm, count = getattr(self, physical), getattr(self, voxels)
            if mm is not None and count is not None:
                raise DataError(
                    f"{physical} and {voxels} are both set; keep one: {physical} (physical size, scales with "
                    f"the spacing) or {voxels} (a voxel count, to reproduce a voxel rule exactly)"
                )
            if count is not None and (not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0):
                raise DataError(f"{voxels} = {count!r}: must be a whole number >= 0 (0 disables the removal)")
            if mm is not None:
                try:
                    object.__setattr__(self, physical, parse_physical(mm, kind))
                except DataError as exc:
                    raise DataError(f"{physical}: {exc}") from None
            elif count is None:
                object.__setattr__(self, physical, default)

    def pixel_threshold(self, pixel_spacing: Sequence[float]) -> int:
        """Per-slice threshold in pixels for a slice with this (row, col) spacing in mm."""
        if self.min_object_pixels is not None:
            return int(self.min_object_pixels)
        return count_threshold(float(self.min_object_mm2 or 0.0), float(np.prod(pixel_spacing)))

    def voxel_threshold(self, spacing: Sequence[float]) -> int:
        """Per-volume threshold in voxels for a volume with this spacing in mm."""
        if self.min_object_voxels is not None:
            return int(self.min_object_voxels)
        return count_threshold(float(self.min_object_mm3 or 0.0), float(np.prod(spacing)))

    @property
    def threshold_keys(self) -> tuple[str, str]:
        """The names of the two threshold settings in effect (what a user would change)."""
        return (
            "min_object_pixels" if self.min_object_pixels is not None else "min_object_mm2",
            "min_object_voxels" if self.min_object_voxels is not None else "min_object_mm3",
        )

    def describe(self) -> dict[str, object]:
        """JSON-friendly settings for the manifest."""
        out = asdict(self)
        out["clip_percentiles"] = list(self.clip_percentiles)
        return out


@dataclass(frozen=True)
class LabelVoxels:
    """What preprocessing did to one reference label of one subject."""

    label: int
    before: int  # reference voxels as loaded (after the suite's label selection)
    after: int  # reference voxels after small-object removal

    @property
    def lost_fraction(self) -> float:
        return (self.before - self.after) / self.before if self.before else 0.0

    @property
    def outcome(self) -> str:
        """absent (not in the data), removed (vanished by preprocessing), reduced, or kept."""
        if self.before == 0:
            return "absent"
        if self.after == 0:
            return "removed"
        return "reduced" if self.after < self.before else "kept"

    @property
    def flagged(self) -> bool:
        """Lost more than WARN_LOST_FRACTION of its voxels, or vanished."""
        return self.before > 0 and (self.after == 0 or self.lost_fraction > WARN_LOST_FRACTION)


@dataclass
class PreparedSubject:
    """A subject ready for slicing: uint8 image, cleaned labels, slices to evaluate."""

    subject: Subject  # as loaded
    axis: int  # array axis sliced along
    image: np.ndarray  # uint8 volume, same grid (clip + scale to 0..255)
    labels: np.ndarray  # reference labels after small-object removal, same grid
    slice_indices: list[int]  # slices to evaluate (with any label, or all if include_empty_slices)
    pixel_spacing: tuple[float, float]  # (row, col) spacing of a 2D slice in mm
    label_voxels: dict[int, LabelVoxels] = field(default_factory=dict)  # per label of the label map
    min_pixels: int = 0  # per-slice threshold applied, in pixels
    min_voxels: int = 0  # per-volume threshold applied, in voxels

    @property
    def removed_labels(self) -> frozenset[int]:
        """Labels present in the loaded reference that preprocessing removed entirely."""
        return frozenset(label for label, counts in self.label_voxels.items() if counts.outcome == "removed")


def slice_axis_index(spacing: Sequence[float], axis: SliceAxis) -> int:
    """Array axis for a named slicing direction of a RAS+ volume.

    ``through_plane`` is the axis with the largest spacing (the acquired
    slice direction of a 2D protocol); ties go to the first such axis.
    """
    if axis in _NAMED_AXES:
        return _NAMED_AXES[axis]
    if axis == "through_plane":
        if len(spacing) != 3:
            raise DataError(f"spacing {tuple(spacing)}: need three values to find the through-plane axis")
        return int(np.argmax(np.asarray(spacing, dtype=float)))
    raise DataError(f"slice axis {axis!r}: use one of axial, sagittal, coronal, through_plane")


def take_slice(volume: np.ndarray, axis: int, index: int) -> np.ndarray:
    """The 2D slice ``index`` along ``axis`` (a view); rows = first remaining axis."""
    where: list[object] = [slice(None)] * volume.ndim
    where[axis] = index
    return volume[tuple(where)]


def normalize_intensity(volume: np.ndarray, percentiles: tuple[float, float], where: str = "volume") -> np.ndarray:
    """Clip to percentiles of the non-zero voxels and scale linearly to uint8 0..255.

    Non-zero voxels only, because the air or zero-padding around an MR image
    would otherwise pull the low percentile to zero and waste grey levels.
    """
    data = np.asarray(volume)
    if not np.isfinite(data).all():
        raise DataError(f"{where}: image contains NaN or infinite values; fix or mask them before running")
    values = data.ravel()
    count = np.count_nonzero(values)
    if count == 0:
        raise DataError(f"{where}: image is all zeros; check the file holds image data")
    low, high = nonzero_percentiles(values, count, percentiles)
    if not high > low:
        raise DataError(
            f"{where}: intensities are constant ({low:g}) between the {percentiles} percentiles; "
            "check the image, or choose wider clip_percentiles"
        )
    out = data.astype(np.float32, copy=True)
    np.clip(out, np.float32(low), np.float32(high), out=out)  # float32 bounds keep it in float32
    out -= np.float32(low)
    out *= np.float32(255.0 / (high - low))
    return np.rint(out, out=out).astype(np.uint8)


#: Voxels drawn (with a fixed seed) to bound where each percentile lies; see nonzero_percentiles.
_PERCENTILE_SAMPLE = 65536


def nonzero_percentiles(values: np.ndarray, count: int, percentiles: Sequence[float]) -> list[float]:
    """``np.percentile(values[values != 0], percentiles)``, bit for bit, without sorting the whole volume.

    ``values`` is 1D, finite, with ``count`` non-zero entries. A seeded
    random sample of the non-zero values bounds each percentile's
    neighbouring order statistics to a narrow value window; only that window
    is copied and partitioned (np.percentile partitions every voxel, most of
    a subject's preprocessing time). A window that misses its ranks (an
    unlucky sample) falls back to all non-zero values, so the sample sets
    the speed, never the result. ``np.quantile`` of the two neighbours at the
    fractional position is numpy's own interpolation, hence identical values.
    """
    virtual = (count - 1) * np.true_divide(percentiles, 100)  # np.percentile's 'linear' method
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, count - 1)
    sample = values[np.random.default_rng(0).integers(0, values.size, _PERCENTILE_SAMPLE)]
    sample = np.sort(sample[sample != 0])
    out = []
    for low_rank, high_rank, position in zip(below, above, virtual - below):
        pair = _order_statistics(values, count, sample, int(low_rank), int(high_rank))
        out.append(np.quantile(pair, position))
    return out


def _order_statistics(values: np.ndarray, count: int, sample: np.ndarray, first: int, last: int) -> np.ndarray:
    """The non-zero values of ranks ``first`` and ``last`` (ascending), from a sample-bounded window."""
    fraction = first / max(count - 1, 1)
    centre = fraction * (sample.size - 1)
    margin = 5.0 * math.sqrt(sample.size * fraction * (1.0 - fraction)) + 2.0  # ~5 binomial sigmas
    lower = int(math.floor(centre - margin))
    upper = int(math.ceil(centre + margin))
    low_value = sample[lower] if lower >= 0 else -np.inf
    high_value = sample[upper] if upper < sample.size else np.inf
    skipped = np.count_nonzero(values < low_value) - (values.size - count if low_value > 0 else 0)
    window = values[(values >= low_value) & (values <= high_value)]
    window = window[window != 0]
    if not (skipped <= first and last < skipped + window.size):
        skipped, window = 0, values[values != 0]
    ranks = [first - skipped, last - skipped]
    return np.partition(window, ranks)[ranks]


def remove_small_objects(labels: np.ndarray, axis: int, min_pixels: int, min_voxels: int) -> np.ndarray:
    """Drop connected components of each label smaller than the thresholds.

    2D components within each slice along ``axis`` (8-connected) below
    ``min_pixels`` go first, then 3D components (26-connected) below
    ``min_voxels``; in that order the result meets both thresholds. Full
    connectivity keeps thin, diagonally touching shells (cartilage) whole.
    Removed voxels become background (0). ``labels`` holds non-negative
    integers, as :func:`~mskbench.data.subjects.build_subject` makes them.

    All labels are labelled in one multi-label pass (cc3d): a component
    never spans two values and removing one label's voxels cannot change
    another's components, so this equals the per-label rule. The slices are
    stacked, each followed by a row of background, into one 2D image, so a
    single 2D pass finds every slice's components without connecting
    neighbouring slices; that extra row at the end of each slice's rows is
    also inert in the 3D pass.
    """
    out = np.array(labels, copy=True)
    box = _nonzero_box(out)
    if box is None or (min_pixels <= 0 and min_voxels <= 0):
        return out
    region = out[box]  # a view: the work below touches only the labelled box
    stacked = np.moveaxis(region, axis, 0)
    slices, rows, cols = stacked.shape
    work = np.zeros((slices, rows + 1, cols), dtype=stacked.dtype)
    work[:, :rows] = stacked
    if min_pixels > 0:
        _drop_small_components(work.reshape(slices * (rows + 1), cols), 8, min_pixels)
    if min_voxels > 0:
        _drop_small_components(work, 26, min_voxels)
    stacked[...] = work[:, :rows]
    return out


def _nonzero_box(volume: np.ndarray) -> tuple[slice, ...] | None:
    """The bounding box of the non-zero voxels of a 3D array, or None when there are none."""
    box = []
    for axis in range(volume.ndim):
        hits = np.flatnonzero(volume.any(axis=tuple(a for a in range(volume.ndim) if a != axis)))
        if hits.size == 0:
            return None
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)


def _drop_small_components(volume: np.ndarray, connectivity: int, threshold: int) -> None:
    """Set to 0, in place, every component of a non-zero value with fewer than ``threshold`` voxels."""
    components = cc3d.connected_components(volume, connectivity=connectivity)
    small = np.bincount(components.ravel()) < threshold
    small[0] = False
    if small.any():
        volume[small[components]] = 0


def prepare_subject(subject: Subject, slice_axis: SliceAxis, config: PreprocessConfig) -> PreparedSubject:
    """Normalise, clean and choose slices for one subject; raise DataError on bad input."""
    where = f"subject {subject.id}"
    if subject.volume.ndim != 3:
        raise DataError(f"{where}: image has shape {subject.volume.shape}; a 3D volume is needed")
    if subject.labels.shape != subject.volume.shape:
        raise DataError(
            f"{where}: label grid {subject.labels.shape} differs from image grid {subject.volume.shape}; "
            "resample the labels onto the image"
        )
    axis = slice_axis_index(subject.spacing, slice_axis)
    image = normalize_intensity(subject.volume, config.clip_percentiles, where)
    rows, cols = (float(subject.spacing[a]) for a in range(3) if a != axis)
    try:
        min_pixels = config.pixel_threshold((rows, cols))
        min_voxels = config.voxel_threshold(subject.spacing)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None
    labels = remove_small_objects(subject.labels, axis, min_pixels, min_voxels)
    if config.include_empty_slices:
        slice_indices = list(range(labels.shape[axis]))
    else:
        other = tuple(a for a in range(3) if a != axis)
        slice_indices = np.flatnonzero(labels.any(axis=other)).tolist()
    counts = label_voxel_counts(subject.labels, labels, subject.label_map)
    return PreparedSubject(subject, axis, image, labels, slice_indices, (rows, cols), counts, min_pixels, min_voxels)


def label_voxel_counts(before: np.ndarray, after: np.ndarray, label_ids: Mapping[int, object] | Sequence[int]) -> dict[int, LabelVoxels]:
    """Reference voxels per label before and after preprocessing (one bincount each)."""
    ids = sorted(int(i) for i in label_ids)
    if not ids:
        return {}
    size = max(ids) + 1

    def count(volume: np.ndarray) -> np.ndarray:
        flat = np.asarray(volume).ravel()
        flat = flat[(flat > 0) & (flat < size)].astype(np.int64)
        return np.bincount(flat, minlength=size)

    first, second = count(before), count(after)
    return {i: LabelVoxels(i, int(first[i]), int(second[i])) for i in ids}

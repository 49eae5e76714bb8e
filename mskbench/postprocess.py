"""Post-processing of predicted masks: one step shared by suites (benchmarked) and prediction.

A suite's model entry may carry a ``postprocess`` table; the runner then
scores the post-processed masks, so the effect of each operation on Dice and
on the biomarkers is measured like any other model change (name the entry
differently from the raw model to compare both). The operations are the
AutoMedLabel pipeline's (morphological closing with a per-label kernel, hole
filling, Gaussian blur and re-threshold, small-object removal, keeping the
largest components) and always run in that order, per label:

1. ``closing_px`` / ``closing_px_by_label``: binary closing with a k × k
   square in each slice (k odd pixels; 0 disables), as slice-wise tools do;
2. ``fill_holes``: ``"slice"`` fills holes within each slice, ``"volume"``
   fills cavities enclosed in 3D, ``"off"``;
3. ``blur_sigma_px``: in-plane Gaussian blur of the mask (σ in pixels, none
   across slices) and re-threshold at 0.5;
4. ``min_object_mm3``: drop 3D components (26-connected, as the reference
   cleaning in :mod:`mskbench.data.preprocess`) smaller than this volume;
5. ``largest_components``: keep the k largest 3D components (0 keeps all).

Labels are independent: a voxel claimed by two labels after closing keeps
both masks, as the per-label masks before were (scoring is per label).
Interactive rounds place their clicks on the model's raw output; only the
scored masks are post-processed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from mskbench.data.preprocess import count_threshold
from mskbench.errors import SuiteError
from mskbench.params import Param, ParamsSchema

FILL_HOLES = ("off", "slice", "volume")

POSTPROCESS_SCHEMA: ParamsSchema = {
    "closing_px": Param("int", 0, minimum=0, maximum=63, help="closing kernel (odd pixels, each slice); 0 disables"),
    "closing_px_by_label": Param("dict", {}, help="per-label closing kernel, e.g. { femur = 15 }"),
    "fill_holes": Param("str", "off", choices=FILL_HOLES),
    "blur_sigma_px": Param("float", 0.0, minimum=0.0, maximum=20.0, help="in-plane Gaussian σ, then > 0.5"),
    "min_object_mm3": Param("float", 0.0, minimum=0.0, help="drop 3D components below this volume"),
    "largest_components": Param("int", 0, minimum=0, help="keep the k largest 3D components; 0 keeps all"),
}

_FULL = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class Postprocess:
    """Validated post-processing settings (see the module docstring); the default does nothing."""

    closing_px: int = 0
    closing_px_by_label: Mapping[str, int] = field(default_factory=dict)
    fill_holes: str = "off"
    blur_sigma_px: float = 0.0
    min_object_mm3: float = 0.0
    largest_components: int = 0

    @classmethod
    def from_table(cls, values: Mapping[str, Any], where: str) -> Postprocess:
        """From a table already checked against :data:`POSTPROCESS_SCHEMA`; kernel sizes must be odd."""
        by_label = dict(values["closing_px_by_label"])
        for name, size in [("closing_px", values["closing_px"]), *by_label.items()]:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0 or (size and size % 2 == 0):
                raise SuiteError(f"{where}.{name if name == 'closing_px' else 'closing_px_by_label.' + name}: "
                                 f"{size!r} is not an odd number of pixels (or 0 to disable); e.g. 7 or 15")
        return cls(values["closing_px"], by_label, values["fill_holes"], float(values["blur_sigma_px"]),
                   float(values["min_object_mm3"]), values["largest_components"])

    @property
    def active(self) -> bool:
        return self != Postprocess()

    def apply(self, masks: Mapping[int, np.ndarray], names: Mapping[int, str], axis: int,
              spacing: tuple[float, float, float]) -> dict[int, np.ndarray]:
        """Each label's bool volume post-processed; ``names`` maps label ids to the names in ``closing_px_by_label``."""
        return {label: self._one(mask, names[label], axis, spacing) for label, mask in masks.items()}

    def _one(self, mask: np.ndarray, name: str, axis: int, spacing: tuple[float, float, float]) -> np.ndarray:
        out = np.asarray(mask, dtype=bool)
        if not out.any():
            return out
        kernel = self.closing_px_by_label.get(name, self.closing_px)
        if kernel > 1:
            out = _closing(out, kernel, axis)
        if self.fill_holes == "slice":
            out = ndimage.binary_fill_holes(out, structure=_in_plane_cross(axis))
        elif self.fill_holes == "volume":
            out = ndimage.binary_fill_holes(out)
        if self.blur_sigma_px > 0:
            sigma = [self.blur_sigma_px] * 3
            sigma[axis] = 0.0
            out = ndimage.gaussian_filter(out.astype(np.float32), sigma=sigma) > 0.5
        min_voxels = count_threshold(self.min_object_mm3, float(np.prod(spacing)))
        if min_voxels > 1 or self.largest_components > 0:
            out = _filter_components(out, min_voxels, self.largest_components)
        return out


def _closing(mask: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Closing with a size × size square in each slice, on a plane padded by the kernel's radius:
    scipy's closing erodes from the array edge otherwise, eating objects that touch the field of view."""
    pad = [(size // 2, size // 2)] * 3
    pad[axis] = (0, 0)
    shape = [size, size, size]
    shape[axis] = 1
    closed = ndimage.binary_closing(np.pad(mask, pad), structure=np.ones(shape, dtype=bool))
    return closed[tuple(slice(before, before + n) for (before, _), n in zip(pad, mask.shape))]


def _in_plane_cross(axis: int) -> np.ndarray:
    """4-connected background within a slice, nothing across slices: holes are filled slice by slice."""
    structure = ndimage.generate_binary_structure(3, 1)
    where: list[Any] = [slice(None)] * 3
    where[axis] = [0, 2]
    structure[tuple(where)] = False
    return structure


def _filter_components(mask: np.ndarray, min_voxels: int, keep: int) -> np.ndarray:
    """Components of at least ``min_voxels``, then the ``keep`` largest (ties: the first found in scan order)."""
    components, count = ndimage.label(mask, structure=_FULL)
    if count == 0:
        return mask
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    kept = sizes >= max(min_voxels, 1)
    if keep > 0:
        order = np.argsort(-sizes[1:], kind="stable") + 1
        kept[order[keep:]] = False
    kept[0] = False
    return kept[components]

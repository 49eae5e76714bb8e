"""Biomarkers of a user's own mask file (and quantitative map), outside any suite.

Backs `mskbench biomarkers compute`: reads the files through the same reader
the datasets use (so spacing and orientation come from the header exactly as
in a run), builds a :class:`Subject` around them and calls the same plugin
classes the runner calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mskbench.biomarkers.geometry import SLICE_AXIS_CHOICES, resolve_slice_axis
from mskbench.errors import DataError, UserError
from mskbench.params import suggest
from mskbench.protocols import Biomarker, BiomarkerValue
from mskbench.types import LabelInfo, Subject, TissueClass

BIOMARKER_NAMES = ("cartilage_thickness", "tissue_volume", "disc_height", "t2", "t1rho")
MAP_BIOMARKERS = ("t2", "t1rho")
_AFFINE_TOLERANCE_MM = 1e-3


def make_biomarker(name: str, method: str | None = None) -> Biomarker:
    """The plugin object that computes biomarker ``name``; ``method`` only for cartilage thickness."""
    if method is not None and name != "cartilage_thickness" and name in BIOMARKER_NAMES:
        raise UserError(f"--method is only used by cartilage_thickness; drop it for {name}")
    if name == "cartilage_thickness":
        from mskbench.biomarkers.thickness import MEDIAL_AXIS_2D, METHODS, CartilageThickness

        method = method or MEDIAL_AXIS_2D
        if method not in METHODS:
            raise UserError(
                f"--method: unknown thickness method {method!r}{suggest(method, METHODS)}; "
                f"use one of {', '.join(METHODS)}"
            )
        return CartilageThickness(method=method)
    if name == "tissue_volume":
        from mskbench.biomarkers.volume import TissueVolume

        return TissueVolume()
    if name == "disc_height":
        from mskbench.biomarkers.disc_height import DiscHeight

        return DiscHeight()
    if name in MAP_BIOMARKERS:
        from mskbench.biomarkers.relaxometry import Relaxometry

        return Relaxometry(maps=[name])
    raise UserError(
        f"--biomarker: unknown biomarker {name!r}{suggest(name, BIOMARKER_NAMES)}; "
        f"use one of {', '.join(BIOMARKER_NAMES)}"
    )


def integer_labels(array: np.ndarray, path: str) -> np.ndarray:
    """The mask as integers; a float file is accepted only when every value is whole."""
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        return np.asarray(array)
    values = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(values)) or not np.array_equal(values, np.round(values)):
        raise DataError(f"{path}: mask has non-integer values; pass a label file, not an image")
    return values.astype(np.int32)


def _read_map(path: str | Path, mask_shape: tuple[int, ...], mask_affine: np.ndarray) -> np.ndarray:
    from mskbench.data.readers import read_volume

    volume = read_volume(path)
    if volume.array.shape != mask_shape:
        raise DataError(
            f"{path}: map shape {volume.array.shape} differs from the mask's {mask_shape}; "
            "resample the map onto the mask grid"
        )
    if not np.allclose(volume.affine, mask_affine, atol=_AFFINE_TOLERANCE_MM):
        raise DataError(f"{path}: map and mask are on different grids (affines differ); resample the map")
    return np.asarray(volume.array)


def compute_from_files(
    mask_path: str | Path,
    biomarker: str,
    *,
    map_path: str | Path | None = None,
    label_ids: Sequence[int] | None = None,
    slice_axis: str = "auto",
    method: str | None = None,
) -> list[BiomarkerValue]:
    """Compute one biomarker on a mask file; labels are named ``label_<id>``.

    ``label_ids`` defaults to every non-zero label in the mask; a requested id
    absent from the mask gets a NaN value (missing), never zero.
    """
    from mskbench.data.readers import read_volume

    plugin = make_biomarker(biomarker, method)
    if slice_axis not in SLICE_AXIS_CHOICES:
        raise UserError(
            f"--slice-axis: unknown axis {slice_axis!r}{suggest(slice_axis, SLICE_AXIS_CHOICES)}; "
            f"use one of {', '.join(SLICE_AXIS_CHOICES)}"
        )
    if biomarker in MAP_BIOMARKERS and map_path is None:
        raise UserError(f"--biomarker {biomarker} needs the {biomarker} map: add --map FILE")
    if biomarker not in MAP_BIOMARKERS and map_path is not None:
        raise UserError(f"--map is only used by {' and '.join(MAP_BIOMARKERS)}; drop it or change --biomarker")
    mask = read_volume(mask_path)
    labels = integer_labels(mask.array, str(mask_path))
    maps = {biomarker: _read_map(map_path, labels.shape, mask.affine)} if map_path is not None else {}
    ids = sorted(int(i) for i in np.unique(labels) if i > 0) if label_ids is None else list(label_ids)
    label_map = {i: LabelInfo(i, f"label_{i}", TissueClass.OTHER) for i in ids}
    subject = Subject(
        id=Path(mask_path).name,
        volume=np.broadcast_to(np.float32(0), labels.shape),
        labels=labels,
        spacing=mask.spacing,
        affine=mask.affine,
        label_map=label_map,
        maps=maps,
    )
    axis = resolve_slice_axis(slice_axis, mask.affine, mask.spacing)
    return plugin.compute(labels, subject, list(label_map.values()), axis)

"""A phantom scene: regions painted in order, each a shape with a tissue and a label.

Later regions overwrite earlier ones. Unlabelled context (skin, fat, fluid)
comes first; labelled structures come last and are pairwise disjoint by
construction, so each one's analytic volume is the volume of its label (the
tests check this by integrating :meth:`Scene.locate` numerically).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mskbench.phantom.shapes import Shape
from mskbench.phantom.tissues import TISSUES

PROPERTIES = ("pd", "t1", "t2", "t1rho")
OUTSIDE = -1

FieldFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class Region:
    """One painted region. ``overrides`` replaces tissue properties (``t2``, ``t1rho``,
    ``pd``) by a constant or by a function of the points, for spatially varying maps."""

    shape: Shape
    tissue: str
    label: int = 0
    overrides: dict[str, float | FieldFn] = field(default_factory=dict)

    def __post_init__(self):
        if self.tissue not in TISSUES:
            raise ValueError(f"unknown tissue {self.tissue!r}")


@dataclass
class Scene:
    regions: list[Region]

    def __post_init__(self):
        self._labels = np.array([r.label for r in self.regions] + [0], dtype=np.int16)

    def locate(self, points: np.ndarray) -> np.ndarray:
        """Index of the last region containing each point (OUTSIDE = -1 for none)."""
        found = np.full(len(points), OUTSIDE, dtype=np.int16)
        columns = [np.ascontiguousarray(points[:, a]) for a in range(3)]
        for index, region in enumerate(self.regions):
            lo, hi = region.shape.lo, region.shape.hi
            near = (columns[0] >= lo[0]) & (columns[0] <= hi[0])
            for a in (1, 2):
                near &= (columns[a] >= lo[a]) & (columns[a] <= hi[a])
            candidates = np.flatnonzero(near)
            if candidates.size:
                hit = candidates[region.shape.contains(points[candidates])]
                found[hit] = index
        return found

    def labels_of(self, located: np.ndarray) -> np.ndarray:
        """Label id of each located point (0 outside labelled regions)."""
        return self._labels[located]

    def properties(
        self, located: np.ndarray, field_t: float, points_of: Callable[[np.ndarray], np.ndarray]
    ) -> dict[str, np.ndarray]:
        """PD, T1 (at ``field_t``), T2 and T1rho of each located point.

        Constant properties come from a per-region lookup table (index -1,
        outside every region, picks the trailing air entry); spatially varying
        overrides are evaluated on ``points_of(members)`` for their region only.
        """
        tables = {name: np.empty(len(self.regions) + 1) for name in PROPERTIES}
        varying = []
        air = TISSUES["air"]
        for index, region in enumerate([*self.regions, None]):
            tissue = TISSUES[region.tissue] if region else air
            values = {"pd": tissue.pd, "t1": tissue.t1(field_t), "t2": tissue.t2, "t1rho": tissue.t1rho}
            if region:
                values.update(region.overrides)
            for name in PROPERTIES:
                value = values[name]
                if callable(value):
                    varying.append((index, name, value))
                    value = np.nan
                tables[name][index] = value
        out = {name: table[located] for name, table in tables.items()}
        for index, name, fn in varying:
            members = np.flatnonzero(located == index)
            if members.size:
                out[name][members] = fn(points_of(members))
        return out

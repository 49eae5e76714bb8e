"""What an anatomy builder returns: the scene, its structures and their analytic truth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mskbench.phantom.arc_tube import ArcTube, Relaxation
from mskbench.phantom.scene import Scene
from mskbench.phantom.shapes import Shape
from mskbench.types import LabelInfo

MM3_PER_CM3 = 1000.0
# Truth key of the local_3d cartilage thickness (the 2D method's truth is "cartilage_thickness").
LOCAL_3D_THICKNESS = "cartilage_thickness_local_3d"
SLICE_AXES = {"sagittal": 0, "coronal": 1, "axial": 2}


@dataclass(frozen=True)
class BuildContext:
    """Per-subject inputs of a builder besides its random generator.

    ``scale`` multiplies every length (body size); ``slice_thickness`` and
    ``pixel_spacing`` let a builder put the ends of its structures, and the
    faces of its field of view that cut structures, on voxel boundaries.
    """

    scale: float
    sex: str
    weight_kg: float
    cartilage_thickness: tuple[float, float]
    slice_thickness: float
    pixel_spacing: float


@dataclass
class Structure:
    """A labelled structure: its shape (as painted) and analytic volume in mm³."""

    info: LabelInfo
    shape: Shape
    volume_mm3: float


@dataclass
class Shell:
    """One cartilage compartment: its shells and, for the knee, its relaxation maps."""

    tubes: list[ArcTube]
    relaxation: dict[str, Relaxation] = field(default_factory=dict)

    def thickness_truth(self, slice_positions: np.ndarray) -> float:
        """DESIGN §8 thickness on the continuous shape, at the acquired slice planes.

        Each slice's medial axis is an arc with constant thickness t(s), so the
        mean over all medial-axis points of all slices is the arc-length-weighted
        mean of t over the slices that cut the shell.
        """
        weighted = total = 0.0
        for tube in self.tubes:
            for s in slice_positions[(slice_positions >= tube.s0) & (slice_positions <= tube.s1)]:
                length = tube.medial_length(float(s))
                weighted += tube.thickness(float(s)) * length
                total += length
        return weighted / total if total else float("nan")

    def mean_relaxation(self, name: str) -> float:
        """Volume mean of a relaxation map over the continuous compartment."""
        integral = sum(t.relaxation_integral(self.relaxation[name]) for t in self.tubes)
        return integral / sum(t.volume() for t in self.tubes)


@dataclass
class Anatomy:
    """A built phantom anatomy for one subject."""

    name: str
    slice_axis: str
    scene: Scene
    structures: list[Structure]
    fov_lo: np.ndarray
    fov_hi: np.ndarray
    shells: dict[str, Shell] = field(default_factory=dict)
    disc_heights: dict[str, float] = field(default_factory=dict)
    maps: tuple[str, ...] = ()
    local_thickness: dict[str, float] = field(default_factory=dict)

    @property
    def axis(self) -> int:
        return SLICE_AXES[self.slice_axis]

    def truth(self, slice_positions: Sequence[float]) -> dict[tuple[str, str], float]:
        """Analytic truth keyed by (biomarker, structure); thickness at the given slice planes."""
        positions = np.asarray(slice_positions, float)
        out: dict[tuple[str, str], float] = {}
        for s in self.structures:
            out[("tissue_volume", s.info.name)] = s.volume_mm3 / MM3_PER_CM3
        for name, height in self.disc_heights.items():
            out[("disc_height", name)] = height
        for name, thickness in self.local_thickness.items():
            out[(LOCAL_3D_THICKNESS, name)] = thickness
        for name, shell in self.shells.items():
            out[("cartilage_thickness", name)] = shell.thickness_truth(positions)
        for quantity in self.maps:
            integral = volume = 0.0
            for name, shell in self.shells.items():
                out[(quantity, name)] = shell.mean_relaxation(quantity)
                integral += sum(t.relaxation_integral(shell.relaxation[quantity]) for t in shell.tubes)
                volume += sum(t.volume() for t in shell.tubes)
            out[(quantity, "overall")] = integral / volume
        return out

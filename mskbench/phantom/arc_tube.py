"""Cartilage shells: a 2D tube around a circular arc, extruded along the slicing axis.

In every slice (constant ``s`` along ``axis``) the shell is the set of points
within ``t(s)/2`` of a circular arc of radius ``R(s)``: an annular sector with
two half-disc caps. That shape's medial axis is exactly the arc (the caps
end it without spurs) and the distance to the boundary along it is exactly
``t/2``, so DESIGN §8's per-slice thickness (2 x EDT on the medial axis) has
the analytic value ``t(s)`` in each slice. The bone the shell covers is the
disc of radius ``base_radius`` on the same centre; the arc radius is
``base_radius + side * t/2`` (``side`` +1 for a convex bone surface such as a
condyle, -1 for a concave one such as the tibial plateau), so the shell touches
the bone without overlapping it.

The thickness varies linearly along the axis, ``t(s) = t_mid + t_slope*(s - s_mid)``,
so every per-slice area and moment is a polynomial of degree <= 3 in ``s`` and
its integral is exact with :func:`mskbench.phantom.analytic.integrate_cubic`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mskbench.phantom.analytic import integrate_cubic
from mskbench.phantom.shapes import Shape, plane_axes


@dataclass
class Relaxation:
    """A quantitative map inside a shell: value = base + depth_slope * d + arc_amp * cos(2 pi a / span).

    ``d`` is the distance from the medial arc towards the articular surface
    (mm, in [-t/2, t/2]) and ``a`` the angle from the arc's middle, clamped to
    the arc's ends in the caps. The deep-to-superficial rise mimics the
    laminar T2 profile of hyaline cartilage.
    """

    base: float
    depth_slope: float
    arc_amp: float


@dataclass
class ArcTube(Shape):
    axis: int
    centre: tuple[float, float]
    base_radius: float
    side: int
    phi0: float
    phi1: float
    s0: float
    s1: float
    t_mid: float
    t_slope: float = 0.0
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        if self.phi1 <= self.phi0 or self.phi1 - self.phi0 >= 2 * math.pi:
            raise ValueError("arc angles must satisfy phi0 < phi1 < phi0 + 2 pi")
        t_max = max(self.thickness(self.s0), self.thickness(self.s1))
        if t_max / 2 >= self.base_radius:
            raise ValueError("shell thicker than its bone radius")
        angles = np.linspace(self.phi0, self.phi1, 4097)
        r_lo, r_hi = self.radius(self.s0), self.radius(self.s1)
        pts = [np.stack([self.centre[0] + r * np.cos(angles), self.centre[1] + r * np.sin(angles)], 1)
               for r in (r_lo, r_hi)]
        pts = np.concatenate(pts)
        pad = t_max / 2 + 1e-3
        lo = np.empty(3)
        hi = np.empty(3)
        u, v = plane_axes(self.axis)
        lo[self.axis], hi[self.axis] = self.s0, self.s1
        lo[[u, v]], hi[[u, v]] = pts.min(0) - pad, pts.max(0) + pad
        self.lo, self.hi = lo, hi

    # ---- geometry as functions of the axial coordinate s --------------------
    @property
    def span(self) -> float:
        return self.phi1 - self.phi0

    @property
    def s_mid(self) -> float:
        return 0.5 * (self.s0 + self.s1)

    def thickness(self, s):
        return self.t_mid + self.t_slope * (s - self.s_mid)

    def radius(self, s):
        """Radius of the medial arc in the slice at ``s``."""
        return self.base_radius + self.side * self.thickness(s) / 2

    def medial_length(self, s: float) -> float:
        """Length of the medial arc (the section's medial axis) in the slice at ``s``."""
        return self.radius(s) * self.span

    def area(self, s: float) -> float:
        """Area of the section at ``s``: annular sector plus two half-disc caps."""
        t = self.thickness(s)
        return self.radius(s) * self.span * t + math.pi * t * t / 4

    def volume(self) -> float:
        return integrate_cubic(self.area, self.s0, self.s1)

    def relaxation_integral(self, relax: Relaxation) -> float:
        """Integral of the map over the shell's volume, in closed form per slice.

        Per slice: the depth term integrates to span*t^3/12 over the sector and
        to zero over each cap (the caps are symmetric about the arc's tangent);
        the cosine term integrates to zero over the sector (one full period) and
        to -1 times the caps' area pi*t^2/4.
        """

        def per_slice(s: float) -> float:
            t = self.thickness(s)
            depth = self.side * self.span * t**3 / 12.0
            return relax.base * self.area(s) + relax.depth_slope * depth - relax.arc_amp * math.pi * t * t / 4

        return integrate_cubic(per_slice, self.s0, self.s1)

    # ---- point-wise evaluation ---------------------------------------------
    def _local(self, p):
        """(s, radial offset from the medial arc, distance to the arc, clamped arc angle)."""
        u, v = plane_axes(self.axis)
        s = p[:, self.axis]
        du, dv = p[:, u] - self.centre[0], p[:, v] - self.centre[1]
        mid = 0.5 * (self.phi0 + self.phi1)
        angle = np.mod(np.arctan2(dv, du) - mid + math.pi, 2 * math.pi) - math.pi
        half = self.span / 2
        clamped = np.clip(angle, -half, half)
        radius = self.radius(s)
        r = np.hypot(du, dv)
        # Offset along the (end) radial direction; equals r - R inside the sector.
        cos_a, sin_a = np.cos(angle - clamped), np.sin(angle - clamped)
        offset = r * cos_a - radius
        tangential = r * sin_a
        distance = np.where(angle == clamped, np.abs(r - radius), np.hypot(offset, tangential))
        return s, offset, distance, clamped

    def contains(self, p):
        s, _, distance, _ = self._local(p)
        return (s >= self.s0) & (s <= self.s1) & (distance <= self.thickness(s) / 2)

    def relaxation(self, p, relax: Relaxation) -> np.ndarray:
        """Map value at points assumed inside the shell."""
        _, offset, _, clamped = self._local(p)
        return (relax.base + relax.depth_slope * self.side * offset
                + relax.arc_amp * np.cos(2 * math.pi * clamped / self.span))

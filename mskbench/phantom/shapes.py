"""Implicit 3D shapes in world millimetres (RAS+: x L->R, y P->A, z I->S).

Each shape answers ``contains(points)`` for an (N, 3) array and carries a
conservative axis-aligned bounding box (``lo``, ``hi``) so the scene can skip
points far away. Extruded shapes take an ``axis`` (0, 1 or 2) along which
they are extruded; their 2D section lives in the other two axes in increasing
order (axis 0 -> (y, z), axis 1 -> (x, z), axis 2 -> (x, y)).

Analytic volumes live with the anatomy builders (:mod:`mskbench.phantom.analytic`),
because a structure's volume depends on how its pieces are combined.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def plane_axes(axis: int) -> tuple[int, int]:
    """The two in-plane axes of an extrusion along ``axis``, in increasing order."""
    return {0: (1, 2), 1: (0, 2), 2: (0, 1)}[axis]


def _bounds(axis: int, s0: float, s1: float, lo2, hi2) -> tuple[np.ndarray, np.ndarray]:
    u, v = plane_axes(axis)
    lo, hi = np.empty(3), np.empty(3)
    lo[axis], hi[axis] = s0, s1
    lo[u], lo[v] = lo2
    hi[u], hi[v] = hi2
    return lo, hi


def _on_axis(values: np.ndarray, axis: int) -> np.ndarray:
    """A 1D array shaped to broadcast along ``axis`` of a 3D grid."""
    shape = [1, 1, 1]
    shape[axis] = len(values)
    return values.reshape(shape)


def _in_plane(values: np.ndarray, axis: int) -> np.ndarray:
    """A 2D (u, v) array shaped to broadcast across the grid's extrusion ``axis``."""
    return np.expand_dims(values, axis)


class Shape:
    """Base of all shapes: a bounding box and a point-membership test."""

    lo: np.ndarray
    hi: np.ndarray

    def contains(self, p: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def contains_grid(self, axes: list[np.ndarray]) -> np.ndarray:
        """Membership on the grid spanned by three 1D coordinate arrays.

        Returns a boolean array broadcastable to the grid's shape. Extruded
        shapes override it to work on one 2D section, which is what makes
        rasterising a subject cheap.
        """
        mesh = np.meshgrid(*axes, indexing="ij")
        points = np.stack([m.ravel() for m in mesh], axis=1)
        return self.contains(points).reshape(mesh[0].shape)


def _section_grid(axis: int, axes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(s as a broadcast 1D array, u and v as 2D in-plane arrays) for an extrusion along ``axis``."""
    u, v = plane_axes(axis)
    uu, vv = np.meshgrid(axes[u], axes[v], indexing="ij")
    return _on_axis(axes[axis], axis), uu, vv


@dataclass
class Box(Shape):
    """Axis-aligned box [lo, hi]."""

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self):
        self.lo, self.hi = np.asarray(self.lo, float), np.asarray(self.hi, float)

    def contains(self, p):
        return np.all((p >= self.lo) & (p <= self.hi), axis=1)

    def contains_grid(self, axes):
        inside = [_on_axis((c >= self.lo[a]) & (c <= self.hi[a]), a) for a, c in enumerate(axes)]
        return inside[0] & inside[1] & inside[2]


@dataclass
class Prism(Shape):
    """A convex polygon (counter-clockwise, in-plane coordinates) extruded along ``axis``."""

    axis: int
    vertices: np.ndarray
    s0: float
    s1: float
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        self.vertices = np.asarray(self.vertices, float)
        self.lo, self.hi = _bounds(self.axis, self.s0, self.s1, self.vertices.min(0), self.vertices.max(0))

    def contains(self, p):
        u, v = plane_axes(self.axis)
        s = p[:, self.axis]
        inside = (s >= self.s0) & (s <= self.s1)
        return inside & self._section(p[:, u], p[:, v])

    def _section(self, pu, pv):
        inside = np.ones(np.shape(pu), bool)
        verts = self.vertices
        for a, b in zip(verts, np.roll(verts, -1, axis=0), strict=True):
            inside &= (b[0] - a[0]) * (pv - a[1]) - (b[1] - a[1]) * (pu - a[0]) >= 0
        return inside

    def contains_grid(self, axes):
        s, uu, vv = _section_grid(self.axis, axes)
        return ((s >= self.s0) & (s <= self.s1)) & _in_plane(self._section(uu, vv), self.axis)


@dataclass
class EllipticCylinder(Shape):
    """An ellipse (semi-axes along the two in-plane axes) extruded along ``axis``.

    ``taper`` scales the ellipse linearly along the axis: the scale is
    ``1 + taper * (s - s_mid) / (s1 - s0)``, so 0 is a plain cylinder.
    """

    axis: int
    centre: tuple[float, float]
    semi: tuple[float, float]
    s0: float
    s1: float
    taper: float = 0.0
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        top = 1.0 + abs(self.taper) / 2.0
        c, a = np.asarray(self.centre, float), np.asarray(self.semi, float) * top
        self.lo, self.hi = _bounds(self.axis, self.s0, self.s1, c - a, c + a)

    def scale(self, s):
        return 1.0 + self.taper * (s - 0.5 * (self.s0 + self.s1)) / (self.s1 - self.s0)

    def contains(self, p):
        u, v = plane_axes(self.axis)
        s = p[:, self.axis]
        du = (p[:, u] - self.centre[0]) / self.semi[0]
        dv = (p[:, v] - self.centre[1]) / self.semi[1]
        limit = self.scale(s) ** 2 if self.taper else 1.0
        return (s >= self.s0) & (s <= self.s1) & (du * du + dv * dv <= limit)

    def contains_grid(self, axes):
        s, uu, vv = _section_grid(self.axis, axes)
        du, dv = (uu - self.centre[0]) / self.semi[0], (vv - self.centre[1]) / self.semi[1]
        radius2 = _in_plane(du * du + dv * dv, self.axis)
        limit = self.scale(s) ** 2 if self.taper else 1.0
        return ((s >= self.s0) & (s <= self.s1)) & (radius2 <= limit)


@dataclass
class PolarSector(Shape):
    """The part of ``ellipse`` (centred) between polar angles theta0..theta1 (rad,
    counter-clockwise from the first in-plane axis) and outside radius ``r_inner``."""

    ellipse: EllipticCylinder
    theta0: float
    theta1: float
    r_inner: float
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        self.lo, self.hi = self.ellipse.lo, self.ellipse.hi

    def contains(self, p):
        u, v = plane_axes(self.ellipse.axis)
        du, dv = p[:, u] - self.ellipse.centre[0], p[:, v] - self.ellipse.centre[1]
        angle = np.mod(np.arctan2(dv, du) - self.theta0, 2.0 * np.pi)
        in_angle = angle <= self.theta1 - self.theta0
        return in_angle & (du * du + dv * dv >= self.r_inner**2) & self.ellipse.contains(p)

    def contains_grid(self, axes):
        _, uu, vv = _section_grid(self.ellipse.axis, axes)
        du, dv = uu - self.ellipse.centre[0], vv - self.ellipse.centre[1]
        angle = np.mod(np.arctan2(dv, du) - self.theta0, 2.0 * np.pi)
        section = (angle <= self.theta1 - self.theta0) & (du * du + dv * dv >= self.r_inner**2)
        return _in_plane(section, self.ellipse.axis) & self.ellipse.contains_grid(axes)


@dataclass
class Sphere(Shape):
    centre: np.ndarray
    radius: float
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        self.centre = np.asarray(self.centre, float)
        self.lo, self.hi = self.centre - self.radius, self.centre + self.radius

    def contains(self, p):
        d = p - self.centre
        return np.einsum("ij,ij->i", d, d) <= self.radius**2


@dataclass
class ShellCap(Shape):
    """Spherical shell r_inner <= r <= r_outer within ``half_angle`` (rad) of ``direction``."""

    centre: np.ndarray
    r_inner: float
    r_outer: float
    direction: np.ndarray
    half_angle: float
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        self.centre = np.asarray(self.centre, float)
        self.direction = np.asarray(self.direction, float) / np.linalg.norm(self.direction)
        self.lo, self.hi = self.centre - self.r_outer, self.centre + self.r_outer

    def contains(self, p):
        d = p - self.centre
        r2 = np.einsum("ij,ij->i", d, d)
        along = d @ self.direction
        in_cone = along >= np.cos(self.half_angle) * np.sqrt(r2)
        return in_cone & (r2 >= self.r_inner**2) & (r2 <= self.r_outer**2)


@dataclass
class CylinderSegment(Shape):
    """Circular cylinder of ``radius`` from ``start`` along unit ``direction`` for ``length``."""

    start: np.ndarray
    direction: np.ndarray
    radius: float
    length: float
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        self.start = np.asarray(self.start, float)
        self.direction = np.asarray(self.direction, float) / np.linalg.norm(self.direction)
        end = self.start + self.length * self.direction
        pad = self.radius * np.sqrt(np.clip(1.0 - self.direction**2, 0.0, 1.0))
        self.lo = np.minimum(self.start, end) - pad
        self.hi = np.maximum(self.start, end) + pad

    def contains(self, p):
        d = p - self.start
        along = d @ self.direction
        radial2 = np.einsum("ij,ij->i", d, d) - along * along
        return (along >= 0) & (along <= self.length) & (radial2 <= self.radius**2)


@dataclass
class TiltedSlab(Shape):
    """An elliptic cylinder whose axis ``(0, sin tilt, cos tilt)`` leans in the y-z plane.

    Its cross-section perpendicular to the axis is an ellipse with semi-axes
    ``semi_x`` (L-R) and ``semi_n`` (in the y-z plane); its height along the
    axis is ``height``. Every sagittal (constant-x) section is therefore an
    exact rectangle of height ``height``: the vertebral bodies and discs.
    """

    centre: np.ndarray
    tilt: float
    height: float
    semi_x: float
    semi_n: float
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        self.centre = np.asarray(self.centre, float)
        corners = self.corners_yz()
        self.lo = np.array([self.centre[0] - self.semi_x, *corners.min(0)])
        self.hi = np.array([self.centre[0] + self.semi_x, *corners.max(0)])

    @property
    def axis_yz(self) -> np.ndarray:
        return np.array([np.sin(self.tilt), np.cos(self.tilt)])

    @property
    def normal_yz(self) -> np.ndarray:
        return np.array([np.cos(self.tilt), -np.sin(self.tilt)])

    def corners_yz(self) -> np.ndarray:
        """The four corners of the mid-sagittal rectangle, counter-clockwise, in (y, z)."""
        c, a, n = self.centre[1:], self.axis_yz * self.height / 2, self.normal_yz * self.semi_n
        return np.array([c - a - n, c - a + n, c + a + n, c + a - n])

    def contains(self, p):
        dx = p[:, 0] - self.centre[0]
        dy, dz = p[:, 1] - self.centre[1], p[:, 2] - self.centre[2]
        along = dy * self.axis_yz[0] + dz * self.axis_yz[1]
        across = dy * self.normal_yz[0] + dz * self.normal_yz[1]
        ellipse = (dx / self.semi_x) ** 2 + (across / self.semi_n) ** 2 <= 1.0
        return ellipse & (np.abs(along) <= self.height / 2)


@dataclass
class Union(Shape):
    parts: tuple[Shape, ...]
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        self.lo = np.min([s.lo for s in self.parts], axis=0)
        self.hi = np.max([s.hi for s in self.parts], axis=0)

    def contains(self, p):
        inside = np.zeros(len(p), bool)
        for part in self.parts:
            inside |= part.contains(p)
        return inside

    def contains_grid(self, axes):
        inside = self.parts[0].contains_grid(axes)
        for part in self.parts[1:]:
            inside = inside | part.contains_grid(axes)
        return inside


@dataclass
class Difference(Shape):
    """Points of ``keep`` that are not in ``remove``."""

    keep: Shape
    remove: Shape
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)

    def __post_init__(self):
        self.lo, self.hi = self.keep.lo, self.keep.hi

    def contains(self, p):
        return self.keep.contains(p) & ~self.remove.contains(p)

    def contains_grid(self, axes):
        return self.keep.contains_grid(axes) & ~self.remove.contains_grid(axes)

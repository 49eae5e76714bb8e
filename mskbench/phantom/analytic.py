"""Closed-form areas, volumes and integrals of the phantom's primitive shapes.

The phantom's truth must come from the continuous geometry, never from a
rasterised mask, so every labelled structure is built from pieces whose area or
volume has a formula here. Written by hand because these are one-line textbook
formulas (circular segments, spherical caps, ellipse sectors) that no
maintained library exposes as such.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def circle_upper_strip_area(radius: float, half_width: float) -> float:
    """Area of the upper half-disc inside the vertical strip |u| < half_width.

    Used where a rectangle standing on a disc's centre line overlaps the disc
    (the femoral shaft over a condyle).
    """
    w = min(half_width, radius)
    return w * math.sqrt(radius * radius - w * w) + radius * radius * math.asin(w / radius)


def circular_segment_area(radius: float, depth: float) -> float:
    """Area of the circular segment of a given depth (sagitta) cut off a disc."""
    if depth <= 0:
        return 0.0
    h = radius - depth
    return radius * radius * math.acos(h / radius) - h * math.sqrt(max(radius * radius - h * h, 0.0))


def circular_segment_half_chord(radius: float, depth: float) -> float:
    """Half the chord length of a circular segment of the given depth."""
    return math.sqrt(max(2.0 * radius * depth - depth * depth, 0.0))


def polygon_area(vertices) -> float:
    """Area of a simple polygon given as (N, 2) vertices in order (shoelace formula)."""
    u = [float(v[0]) for v in vertices]
    w = [float(v[1]) for v in vertices]
    return 0.5 * abs(sum(u[i - 1] * w[i] - u[i] * w[i - 1] for i in range(len(u))))


def shell_cap_volume(r_inner: float, r_outer: float, half_angle: float) -> float:
    """Volume of a spherical shell restricted to a cone of half-angle ``half_angle`` (rad)."""
    return 2.0 * math.pi / 3.0 * (r_outer**3 - r_inner**3) * (1.0 - math.cos(half_angle))


def sphere_volume(radius: float) -> float:
    return 4.0 / 3.0 * math.pi * radius**3


def sphere_cylinder_overlap(r_sphere: float, r_cylinder: float) -> float:
    """Volume of a half-infinite cylinder, starting at the sphere centre, inside the sphere.

    Integral of 2*pi*rho*sqrt(R^2 - rho^2) over rho in [0, r]: the femoral neck
    leaving the femoral head's centre.
    """
    return 2.0 * math.pi / 3.0 * (r_sphere**3 - (r_sphere**2 - r_cylinder**2) ** 1.5)


def ellipse_parametric_angle(a: float, b: float, theta: float) -> float:
    """Parametric angle t of the ellipse point at polar angle ``theta``, continuous in theta."""
    t = math.atan2(a * math.sin(theta), b * math.cos(theta))
    return t + 2.0 * math.pi * round((theta - t) / (2.0 * math.pi))


def ellipse_sector_area(a: float, b: float, theta0: float, theta1: float) -> float:
    """Area of the sector of the centred ellipse (semi-axes a along u, b along v)
    between polar angles theta0 < theta1 (rad)."""
    return 0.5 * a * b * (ellipse_parametric_angle(a, b, theta1) - ellipse_parametric_angle(a, b, theta0))


def integrate_cubic(f: Callable[[float], float], s0: float, s1: float) -> float:
    """Integral of f over [s0, s1] by Simpson's rule.

    Exact (not an approximation) for polynomials up to degree three, which is
    what every per-slice area or moment of the phantom is along its extrusion
    axis (thickness and scale vary linearly there).
    """
    return (s1 - s0) / 6.0 * (f(s0) + 4.0 * f(0.5 * (s0 + s1)) + f(s1))

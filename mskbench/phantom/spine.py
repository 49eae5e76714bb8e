"""Sagittal lumbar spine: S1 and L5..L1 bodies, five discs, psoas and paraspinal muscle.

Bodies and discs are :class:`~mskbench.phantom.shapes.TiltedSlab` s stacked
from S1 upwards along a lordotic curve: the tilt of their cranio-caudal axis
goes linearly from the sacral slope at S1 (leaning anteriorly) to a
posterior lean at L1, so the column is convex anteriorly with its apex near
L3. Every sagittal section of a slab is an exact rectangle
whose side along the slab axis is the slab height, and the tilt stays below
45 degrees, so DESIGN §8's disc height (max over sagittal slices of the
minimum-area rectangle's side nearest cranio-caudal) is exactly the disc's
height ``h`` (6-13 mm, per level).

Slabs are placed one after the other with the smallest gap that keeps their
mid-sagittal rectangles apart (a separating-axis test); the narrower
off-midline sections are subsets of those, so all slabs are disjoint. The
psoas (two tapered elliptic cylinders lateral to the bodies) and the
paraspinal block (posterior, behind a spinal canal) are separated from the
column by construction.
"""

from __future__ import annotations

import math

import numpy as np

from mskbench.phantom.anatomy import Anatomy, BuildContext, Structure
from mskbench.phantom.scene import Region, Scene
from mskbench.phantom.shapes import Box, EllipticCylinder, TiltedSlab, Union
from mskbench.types import LabelInfo, TissueClass

VERTEBRAE = ("L1", "L2", "L3", "L4", "L5", "S1")
DISCS = ("disc_L1_L2", "disc_L2_L3", "disc_L3_L4", "disc_L4_L5", "disc_L5_S1")
LABELS = (
    *(LabelInfo(i + 1, name, TissueClass.BONE) for i, name in enumerate(VERTEBRAE)),
    *(LabelInfo(i + 7, name, TissueClass.DISC) for i, name in enumerate(DISCS)),
    LabelInfo(12, "psoas", TissueClass.MUSCLE),
    LabelInfo(13, "paraspinal", TissueClass.MUSCLE),
)
SLICE_AXIS = "sagittal"
_INFO = {info.name: info for info in LABELS}
#: Typical disc height (mm) per level before per-subject variation.
_DISC_HEIGHT = {"disc_L1_L2": 8.0, "disc_L2_L3": 9.0, "disc_L3_L4": 10.0, "disc_L4_L5": 11.0, "disc_L5_S1": 10.0}


def _separated(a: np.ndarray, b: np.ndarray, margin: float) -> bool:
    """Separating-axis test for two convex polygons (corner arrays), with a clearance margin."""
    for poly in (a, b):
        for p, q in zip(poly, np.roll(poly, -1, axis=0), strict=True):
            normal = np.array([q[1] - p[1], p[0] - q[0]])
            normal /= np.linalg.norm(normal)
            pa, pb = a @ normal, b @ normal
            if pa.max() + margin <= pb.min() or pb.max() + margin <= pa.min():
                return True
    return False


def _stack(rng: np.random.Generator, k: float):
    """Bodies and discs from S1 upwards: (name, height, tilt) in order."""
    order = ["S1"]
    for upper, disc in zip(("L5", "L4", "L3", "L2", "L1"), reversed(DISCS), strict=True):
        order += [disc, upper]
    sacral = math.radians(rng.uniform(30.0, 40.0))  # sacral slope
    top = math.radians(rng.uniform(-22.0, -12.0))  # L1 leans back: lordosis L1-S1 of 42-62 degrees
    items = []
    for i, name in enumerate(order):
        tilt = sacral + (top - sacral) * i / (len(order) - 1)
        if name.startswith("disc"):
            height = float(np.clip(_DISC_HEIGHT[name] * k + rng.normal(0.0, 1.2), 6.0, 13.0))
        else:
            height = (28.0 if name == "S1" else 26.0) * k * rng.uniform(0.94, 1.06)
        items.append((name, height, tilt))
    return items


def build(rng: np.random.Generator, ctx: BuildContext) -> Anatomy:
    k = ctx.scale
    semi_x = 23.0 * k * rng.uniform(0.94, 1.06)
    semi_n = 17.0 * k * rng.uniform(0.94, 1.06)
    slabs: dict[str, TiltedSlab] = {}
    previous: TiltedSlab | None = None
    for name, height, tilt in _stack(rng, k):
        width = semi_x * (0.97 if name.startswith("disc") else 1.0)
        if previous is None:
            slab = TiltedSlab(np.zeros(3), tilt, height, width, semi_n)
        else:
            direction = previous.axis_yz + np.array([math.sin(tilt), math.cos(tilt)])
            direction /= np.linalg.norm(direction)
            gap = 0.3
            while True:
                step = previous.height / 2 + height / 2 + gap
                centre = np.array([0.0, *(previous.centre[1:] + step * direction)])
                slab = TiltedSlab(centre, tilt, height, width, semi_n)
                if all(_separated(slab.corners_yz(), s.corners_yz(), 0.3) for s in slabs.values()):
                    break
                gap += 0.2
        slabs[name] = slab
        previous = slab

    corners = np.concatenate([s.corners_yz() for s in slabs.values()])
    y_post, y_mid = corners[:, 0].min(), float(np.mean([s.centre[1] for s in slabs.values()]))
    z_bottom, z_top = slabs["S1"].centre[2], slabs["L1"].centre[2]
    ps_a, ps_b = 12.0 * k * rng.uniform(0.9, 1.1), 14.0 * k * rng.uniform(0.9, 1.1)
    ps_taper = -rng.uniform(0.3, 0.5)  # the psoas thickens caudally
    ps_x = semi_x + 3.0 + ps_a * (1 + abs(ps_taper) / 2)
    z_psoas = (slabs["L5"].centre[2], z_top)
    psoas = [EllipticCylinder(2, (sign * ps_x, y_mid), (ps_a, ps_b), *z_psoas, taper=ps_taper) for sign in (-1, 1)]
    psoas_volume = 2 * math.pi * ps_a * ps_b * (z_psoas[1] - z_psoas[0]) * (1 + ps_taper**2 / 12)
    pa_a, pa_b = 38.0 * k * rng.uniform(0.9, 1.1), 18.0 * k * rng.uniform(0.9, 1.1)
    canal = 16.0 * k
    pa_y = min(y_post - canal, min(p.lo[1] for p in psoas) - 2.0) - pa_b
    paraspinal = EllipticCylinder(2, (0.0, pa_y), (pa_a, pa_b), z_bottom, z_top + 10.0)

    structures = [
        Structure(_INFO[name], slab, math.pi * slab.semi_x * slab.semi_n * slab.height)
        for name, slab in slabs.items()
    ]
    structures.sort(key=lambda s: s.info.id)
    structures.append(Structure(_INFO["psoas"], Union(tuple(psoas)), psoas_volume))
    structures.append(Structure(_INFO["paraspinal"], paraspinal,
                                math.pi * pa_a * pa_b * (paraspinal.s1 - paraspinal.s0)))
    lo = np.min([s.shape.lo for s in structures], axis=0) - np.array([6.0, 12.0, 6.0])
    hi = np.max([s.shape.hi for s in structures], axis=0) + np.array([6.0, 30.0, 6.0])
    disc_t2 = {name: rng.uniform(60.0, 120.0) * (0.85 if name in DISCS[-2:] else 1.0) for name in DISCS}

    centre_y, half = 0.5 * (lo[1] + hi[1]), 0.5 * (hi - lo)
    regions = [
        Region(EllipticCylinder(2, (0.0, centre_y), (half[0] * 2.0, half[1] * 1.05), lo[2], hi[2]), "fat"),
        Region(EllipticCylinder(2, (0.0, centre_y), (half[0] * 1.8, half[1] * 0.92), lo[2], hi[2]), "muscle"),
        Region(Box([-9.0 * k, y_post - canal, lo[2]], [9.0 * k, y_post - 1.0, hi[2]]), "fluid"),
    ]
    for s in structures:
        if s.info.tissue is TissueClass.DISC:
            regions.append(Region(s.shape, "disc", s.info.id, {"t2": disc_t2[s.info.name]}))
        else:
            tissue = "red_marrow" if s.info.tissue is TissueClass.BONE else "muscle"
            regions.append(Region(s.shape, tissue, s.info.id))
    return Anatomy("spine", SLICE_AXIS, Scene(regions), structures, lo, hi,
                   disc_heights={name: slabs[name].height for name in DISCS})

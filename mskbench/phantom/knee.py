"""Sagittal knee: femur, tibia, patella, three cartilage shells, two menisci.

Layout (mm, origin at the femoral condyles' centre; y anterior, z superior):
this is a right knee, so the medial condyle occupies x < -notch (towards the
body's midline) and the lateral one x > notch. Each condyle is a cylinder
along x (a disc in every sagittal slice) under a
rectangular shaft; the femoral cartilage wraps it from posterior-superior to
anterior. Each tibial compartment has a concave dish (a disc cut from the
tibial block) lined by the tibial cartilage, sized so the femoral cartilage
clears it by a joint gap. Menisci are wedges (triangular prisms) on the
plateau rim in front of and behind each condyle; the patella, with its
cartilage on the posterior face, sits anterior to the shaft.

The tibial plateau has a posterior slope of 5-10 degrees (per subject), as
real plateaus do: the plateau (dishes, tibial cartilage, menisci and the top
face of the tibial block) is the level design rotated about the condyles'
axis, which keeps every clearance to the round condyles and every area, so
the truth stays closed-form. A level plateau would lie along the pixel rows,
where a 2D medial-axis thickness reads up to a whole pixel thick.

Every structure starts and ends on a slab boundary along x (the slicing
axis): the notch, the condyles' and the patella's half-widths are whole
numbers of slice thicknesses and the field of view is a whole number of
slices on the same lattice. A slice's label is sampled at its centre, so a
structure ending part-way through a 3-4 mm slab would gain or lose up to
half a slab at each end (a fifth of a meniscus); real structures end
smoothly, a prism's square end would not.

Every labelled piece is disjoint from every other by construction, so the
analytic volumes below are the volumes of the labels.
"""

from __future__ import annotations

import math

import numpy as np

from mskbench.phantom.analytic import (
    circle_upper_strip_area,
    circular_segment_area,
    circular_segment_half_chord,
    polygon_area,
)
from mskbench.phantom.anatomy import Anatomy, BuildContext, Shell, Structure
from mskbench.phantom.arc_tube import ArcTube, Relaxation
from mskbench.phantom.scene import Region, Scene
from mskbench.phantom.shapes import Box, Difference, EllipticCylinder, Prism, Union
from mskbench.types import LabelInfo, TissueClass

LABELS = (
    LabelInfo(1, "femur", TissueClass.BONE),
    LabelInfo(2, "tibia", TissueClass.BONE),
    LabelInfo(3, "patella", TissueClass.BONE),
    LabelInfo(4, "femoral_cartilage", TissueClass.CARTILAGE),
    LabelInfo(5, "tibial_cartilage", TissueClass.CARTILAGE),
    LabelInfo(6, "patellar_cartilage", TissueClass.CARTILAGE),
    LabelInfo(7, "medial_meniscus", TissueClass.MENISCUS),
    LabelInfo(8, "lateral_meniscus", TissueClass.MENISCUS),
)
SLICE_AXIS = "sagittal"
MAPS = ("t2", "t1rho")
_ID = {info.name: info.id for info in LABELS}
_INFO = {info.name: info for info in LABELS}


def _on_slab(x: float, step: float, minimum: float) -> float:
    """The slab boundary (a multiple of the slice thickness ``step``) nearest ``x``, at least ``minimum``."""
    return max(minimum, step * round(x / step))


def _rotate(points, angle: float) -> np.ndarray:
    """(y, z) points rotated counter-clockwise by ``angle`` about the condyles' axis (the origin)."""
    c, s = math.cos(angle), math.sin(angle)
    p = np.asarray(points, float)
    return np.stack([c * p[..., 0] - s * p[..., 1], s * p[..., 0] + c * p[..., 1]], axis=-1)


def _thickness(rng: np.random.Generator, mid: float, length: float, bounds: tuple[float, float]):
    """A (t_mid, slope) pair: thickness varies by up to +-8 % across the shell, within bounds."""
    lo, hi = bounds
    room = min(mid - lo, hi - mid, 0.08 * mid)
    delta = rng.uniform(-room, room)
    return mid, 2 * delta / length


def _relaxation(rng: np.random.Generator, t2_base: float) -> dict[str, Relaxation]:
    t2 = Relaxation(t2_base, rng.uniform(2.0, 5.0), rng.uniform(1.5, 4.0))
    ratio = rng.uniform(1.1, 1.35)
    t1rho = Relaxation(t2_base * ratio, t2.depth_slope * ratio, t2.arc_amp * ratio)
    return {"t2": t2, "t1rho": t1rho}


def _distance_to_triangle(point: np.ndarray, vertices: np.ndarray) -> float:
    """Distance from a 2D point to a triangle's edges (the point is known to lie outside)."""
    best = math.inf
    for a, b in zip(vertices, np.roll(vertices, -1, axis=0), strict=True):
        ab = b - a
        k = np.clip(np.dot(point - a, ab) / np.dot(ab, ab), 0.0, 1.0)
        best = min(best, float(np.linalg.norm(point - (a + k * ab))))
    return best


def _meniscus_wedges(y_in: float, width: float, z_lo: float, height: float, clear_radius: float, z_max: float):
    """Anterior and posterior wedge sections, lowered until they clear the femoral disc."""
    while True:
        front = np.array([[y_in, z_lo], [y_in + width, z_lo], [y_in + width, z_lo + height]])
        back = np.array([[-y_in - width, z_lo], [-y_in, z_lo], [-y_in - width, z_lo + height]])
        clear = min(_distance_to_triangle(np.zeros(2), w) for w in (front, back))
        if clear >= clear_radius and z_lo + height <= z_max:
            return front, back
        height *= 0.9
        if height < 1.0:
            raise ValueError("knee phantom: no room for the menisci")


def build(rng: np.random.Generator, ctx: BuildContext) -> Anatomy:
    k = ctx.scale
    slab = ctx.slice_thickness
    notch = _on_slab(8.0 * k * rng.uniform(0.9, 1.1), slab, slab)
    width = _on_slab(notch + 26.0 * k * rng.uniform(0.92, 1.08), slab, notch + slab) - notch
    ranges = {"medial": (-(notch + width), -notch), "lateral": (notch, notch + width)}  # a right knee
    radius = {"medial": 22.0 * k * rng.uniform(0.93, 1.07), "lateral": 20.0 * k * rng.uniform(0.93, 1.07)}
    x_lo, x_hi = -(notch + width), notch + width
    shaft_w = 0.55 * min(radius.values())
    gap = rng.uniform(0.3, 1.0)
    slope = math.radians(rng.uniform(5.0, 10.0))  # posterior tibial slope

    t_fem = rng.uniform(*ctx.cartilage_thickness)
    t_tib = rng.uniform(*ctx.cartilage_thickness)
    t_pat = rng.uniform(*ctx.cartilage_thickness)
    relax = {
        "femoral_cartilage": _relaxation(rng, rng.uniform(34.0, 42.0)),
        "tibial_cartilage": _relaxation(rng, rng.uniform(30.0, 40.0)),
        "patellar_cartilage": _relaxation(rng, rng.uniform(33.0, 45.0)),
    }

    fem_tubes, tib_tubes, condyles, dishes = [], [], [], []
    femur_volume = tibia_cut = 0.0
    meniscus = {}
    deepest, plans = {}, {}
    phi_post = math.radians(-200.0 + rng.uniform(-5, 5))
    phi_ant = math.radians(25.0 + rng.uniform(-5, 5))
    for side, (s0, s1) in ranges.items():
        r = radius[side]
        tf = _thickness(rng, float(np.clip(t_fem * rng.uniform(0.9, 1.1), *ctx.cartilage_thickness)), width,
                        ctx.cartilage_thickness)
        tt = _thickness(rng, float(np.clip(t_tib * rng.uniform(0.9, 1.1), *ctx.cartilage_thickness)), width,
                        ctx.cartilage_thickness)
        fem = ArcTube(0, (0.0, 0.0), r, +1, phi_post, phi_ant, s0, s1, *tf)
        fem_tubes.append(fem)
        condyles.append(EllipticCylinder(0, (0.0, 0.0), (r, r), s0, s1))
        femur_volume += width * (math.pi * r * r - circle_upper_strip_area(r, shaft_w))
        tf_max = max(fem.thickness(s0), fem.thickness(s1))
        tt_max = tt[0] + abs(tt[1]) * width / 2
        rho = rng.uniform(70.0, 110.0) * k
        outer = r + tf_max
        centre_z = rho - tt_max - outer - gap  # tibial dish circle centre, above the condyle
        deepest[side] = centre_z - rho
        plans[side] = (s0, s1, r, outer, rho, centre_z, tt)

    # The plateau is designed level (top face z = z_top, dish centres above the condyles'
    # axis) and then rotated by the posterior slope about that axis.
    z_top = max(deepest.values()) + rng.uniform(1.5, 3.0)
    for side, (s0, s1, r, outer, rho, centre_z, tt) in plans.items():
        depth = z_top - deepest[side]
        half_chord = circular_segment_half_chord(rho, depth)
        tibia_cut += width * circular_segment_area(rho, depth)
        reach = min(0.75 * r, 0.85 * half_chord) - tt[0]
        alpha = math.asin(reach / (rho - tt[0] / 2))
        centre = tuple(_rotate((0.0, centre_z), slope))
        tib_tubes.append(ArcTube(0, centre, rho, -1, -math.pi / 2 - alpha + slope, -math.pi / 2 + alpha + slope,
                                 s0, s1, *tt))
        dishes.append(EllipticCylinder(0, centre, (rho, rho), s0, s1))
        wedges = _meniscus_wedges(half_chord + 0.5, 9.0 * k * rng.uniform(0.9, 1.1), z_top + 0.2,
                                  7.0 * k * rng.uniform(0.85, 1.15), outer + gap, -1.0)
        meniscus[side] = [Prism(0, _rotate(w, slope), s0, s1) for w in wedges]

    pat_half = _on_slab(18.0 * k * rng.uniform(0.9, 1.1), slab, slab)
    t_pat_mid, t_pat_slope = _thickness(rng, t_pat, 2 * pat_half, ctx.cartilage_thickness)
    pat_r = 11.0 * k * rng.uniform(0.9, 1.1)
    t_pat_max = t_pat_mid + abs(t_pat_slope) * pat_half
    pat_y = shaft_w + rng.uniform(2.0, 4.0) + t_pat_max + pat_r
    femoral_reach = max(p[3] for p in plans.values()) + gap + 2.0
    pat_z = math.sqrt(max((femoral_reach + pat_r + t_pat_max) ** 2 - pat_y**2, 0.0)) + rng.uniform(1.0, 4.0)
    pat_arc = math.radians(55.0 + rng.uniform(-5, 5))
    patellar_tube = ArcTube(0, (pat_y, pat_z), pat_r, +1, math.pi - pat_arc, math.pi + pat_arc,
                            -pat_half, pat_half, t_pat_mid, t_pat_slope)
    patella = EllipticCylinder(0, (pat_y, pat_z), (pat_r, pat_r), -pat_half, pat_half)

    # The shaft and the tibial block run out of the field of view, as in a real knee scan;
    # the field of view is a whole number of pixels high, so its faces are voxel faces.
    fov_top = pat_z + pat_r + t_pat_max + 4.0
    fov_bottom = fov_top - ctx.pixel_spacing * math.ceil((fov_top - z_top + 22.0 * k) / ctx.pixel_spacing)
    shaft = Box([x_lo, -shaft_w, 0.0], [x_hi, shaft_w, fov_top])
    femur_volume += (x_hi - x_lo) * 2 * shaft_w * fov_top
    rim = max(max(abs(p.lo[1]), abs(p.hi[1])) for wedges in meniscus.values() for p in wedges)
    tibia_y = max(1.25 * max(radius.values()), rim + 2.0)
    # Sloped top face: the line z = z_top rotated by the slope, cut at y = +-tibia_y.
    (top_y, top_z), rise = _rotate((0.0, z_top), slope), math.tan(slope)
    section = [(-tibia_y, fov_bottom), (tibia_y, fov_bottom), (tibia_y, top_z + (tibia_y - top_y) * rise),
               (-tibia_y, top_z - (tibia_y + top_y) * rise)]
    tibia_block = Prism(0, section, x_lo, x_hi)
    tibia_volume = (x_hi - x_lo) * polygon_area(section) - tibia_cut

    structures = [
        Structure(_INFO["femur"], Union((shaft, *condyles)), femur_volume),
        Structure(_INFO["tibia"], Difference(tibia_block, Union(tuple(dishes))), tibia_volume),
        Structure(_INFO["patella"], patella, math.pi * pat_r**2 * 2 * pat_half),
        Structure(_INFO["femoral_cartilage"], Union(tuple(fem_tubes)), sum(t.volume() for t in fem_tubes)),
        Structure(_INFO["tibial_cartilage"], Union(tuple(tib_tubes)), sum(t.volume() for t in tib_tubes)),
        Structure(_INFO["patellar_cartilage"], patellar_tube, patellar_tube.volume()),
    ]
    for side, name in (("medial", "medial_meniscus"), ("lateral", "lateral_meniscus")):
        s0, s1 = ranges[side]
        area = sum(polygon_area(p.vertices) for p in meniscus[side])
        structures.append(Structure(_INFO[name], Union(tuple(meniscus[side])), area * (s1 - s0)))

    shells = {
        "femoral_cartilage": Shell(fem_tubes, relax["femoral_cartilage"]),
        "tibial_cartilage": Shell(tib_tubes, relax["tibial_cartilage"]),
        "patellar_cartilage": Shell([patellar_tube], relax["patellar_cartilage"]),
    }
    lo = np.min([s.shape.lo for s in structures], axis=0) - np.array([5.0, 8.0, 0.0])
    hi = np.max([s.shape.hi for s in structures], axis=0) + np.array([5.0, 8.0, 0.0])
    lo[0], hi[0] = slab * math.floor(lo[0] / slab), slab * math.ceil(hi[0] / slab)  # whole slabs on the lattice
    regions = _context(lo, hi, shaft_w, z_top, pat_y, pat_z, pat_r, pat_half, x_lo, x_hi, radius)
    for s in structures:
        if s.info.name in shells:
            continue
        tissue = {"meniscus": "meniscus"}.get(s.info.tissue.value, "yellow_marrow")
        regions.append(Region(s.shape, tissue, s.info.id))
    for name, shell in shells.items():
        for tube in shell.tubes:
            overrides = {q: (lambda p, t=tube, r=shell.relaxation[q]: t.relaxation(p, r)) for q in MAPS}
            regions.append(Region(tube, "cartilage", _ID[name], overrides))
    return Anatomy("knee", SLICE_AXIS, Scene(regions), structures, lo, hi, shells=shells, maps=MAPS)


def _context(lo, hi, shaft_w, z_top, pat_y, pat_z, pat_r, pat_half, x_lo, x_hi, radius) -> list[Region]:
    """Unlabelled surroundings: subcutaneous fat, muscle, joint fluid, fat pad, patellar tendon."""
    centre_y = 0.5 * (lo[1] + hi[1])
    half = 0.5 * (hi - lo)
    r_max = max(radius.values())
    return [
        Region(EllipticCylinder(2, (0.0, centre_y), (half[0] * 1.6, half[1] * 0.98), lo[2], hi[2]), "fat"),
        Region(EllipticCylinder(2, (0.0, centre_y), (half[0] * 1.5, half[1] * 0.86), lo[2], hi[2]), "muscle"),
        Region(Box([x_lo, -r_max - 2.0, z_top - 1.0], [x_hi, r_max + 2.0, -0.4 * r_max]), "fluid"),
        Region(Box([-pat_half, 0.6 * r_max, z_top], [pat_half, pat_y + pat_r, pat_z - pat_r]), "fat"),
        Region(Box([-0.6 * pat_half, pat_y + 0.3 * pat_r, z_top - 10.0], [0.6 * pat_half, pat_y + pat_r, pat_z]),
               "tendon"),
    ]

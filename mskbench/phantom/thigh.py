"""Axial mid-thigh (a right thigh): femur cortex and marrow, five muscle groups,
subcutaneous fat ring, neurovascular bundle.

The thigh is a pair of concentric ellipses (skin, and the muscle fascia inside
the subcutaneous fat) around the femur, tapering linearly along z (thicker
proximally) and spanning the whole stack. Muscle groups are polar sectors of
the fascia ellipse around the femur centre, outside a thin periosteal ring,
separated by fat septa; the neurovascular bundle is a small tube inside the
widest (posteromedial) septum. Each sector's area is an ellipse sector minus a
disc sector, both closed-form, and the taper makes it quadratic in z.
"""

from __future__ import annotations

import math

import numpy as np

from mskbench.phantom.analytic import ellipse_sector_area
from mskbench.phantom.anatomy import Anatomy, BuildContext, Structure
from mskbench.phantom.scene import Region, Scene
from mskbench.phantom.shapes import Difference, EllipticCylinder, PolarSector
from mskbench.types import LabelInfo, TissueClass

LABELS = (
    LabelInfo(1, "femur_cortex", TissueClass.BONE),
    LabelInfo(2, "femur_marrow", TissueClass.BONE),
    LabelInfo(3, "quadriceps", TissueClass.MUSCLE),
    LabelInfo(4, "hamstrings", TissueClass.MUSCLE),
    LabelInfo(5, "adductors", TissueClass.MUSCLE),
    LabelInfo(6, "sartorius", TissueClass.MUSCLE),
    LabelInfo(7, "gracilis", TissueClass.MUSCLE),
    LabelInfo(8, "subcutaneous_fat", TissueClass.FAT),
    LabelInfo(9, "neurovascular_bundle", TissueClass.NERVE),
)
SLICE_AXIS = "axial"
_INFO = {info.name: info for info in LABELS}
#: Muscle sectors (degrees counter-clockwise from +x = lateral; +y = anterior; 180 = medial),
#: in angular order; the septum before "hamstrings" holds the neurovascular bundle.
_SECTORS = (("quadriceps", 15, 160), ("sartorius", 165, 190), ("gracilis", 195, 215),
            ("adductors", 220, 262), ("hamstrings", 284, 370))
_NV_GAP = ("adductors", "hamstrings")


def build(rng: np.random.Generator, ctx: BuildContext) -> Anatomy:
    k = ctx.scale
    n_slices = int(np.clip(round(180.0 * k / ctx.slice_thickness), 20, 40))
    length = n_slices * ctx.slice_thickness
    z0, z1 = -length / 2, length / 2
    taper = rng.uniform(0.05, 0.12)
    squeeze = 1.0 - taper / 2  # the narrowest section's scale
    fat_scale = (1.6 if ctx.sex == "F" else 1.0) * (ctx.weight_kg / 77.0) ** 1.5
    fat = float(np.clip(7.0 * fat_scale * rng.uniform(0.8, 1.2), 3.0, 30.0))
    skin_a = 62.0 * k * (ctx.weight_kg / 77.0) ** 0.4 * rng.uniform(0.95, 1.05) + fat
    skin_b = skin_a * rng.uniform(0.88, 0.96)
    fascia_a, fascia_b = skin_a - fat, skin_b - fat
    skin = EllipticCylinder(2, (0.0, 0.0), (skin_a, skin_b), z0, z1, taper)
    fascia = EllipticCylinder(2, (0.0, 0.0), (fascia_a, fascia_b), z0, z1, taper)
    r_cortex = 13.0 * k * rng.uniform(0.92, 1.08)
    r_marrow = r_cortex - rng.uniform(4.0, 6.5)
    r_inner = r_cortex + 1.5
    taper_mean = 1.0 + taper**2 / 12.0  # mean of scale^2 along z

    jitter = {name: (math.radians(a + rng.uniform(-2, 2)), math.radians(b + rng.uniform(-2, 2)))
              for name, a, b in _SECTORS}
    structures = [
        Structure(_INFO["femur_cortex"],
                  Difference(EllipticCylinder(2, (0.0, 0.0), (r_cortex, r_cortex), z0, z1),
                             EllipticCylinder(2, (0.0, 0.0), (r_marrow, r_marrow), z0, z1)),
                  math.pi * (r_cortex**2 - r_marrow**2) * length),
        Structure(_INFO["femur_marrow"], EllipticCylinder(2, (0.0, 0.0), (r_marrow, r_marrow), z0, z1),
                  math.pi * r_marrow**2 * length),
    ]
    for name, (a, b) in jitter.items():
        area = ellipse_sector_area(fascia_a, fascia_b, a, b) * taper_mean - 0.5 * r_inner**2 * (b - a)
        structures.append(Structure(_INFO[name], PolarSector(fascia, a, b, r_inner), area * length))
    structures.append(Structure(_INFO["subcutaneous_fat"], Difference(skin, fascia),
                                math.pi * (skin_a * skin_b - fascia_a * fascia_b) * taper_mean * length))

    gap_start, gap_end = jitter[_NV_GAP[0]][1], jitter[_NV_GAP[1]][0]
    half_gap = (gap_end - gap_start) / 2 - math.radians(1.5)
    direction = gap_start + (gap_end - gap_start) / 2
    # The fascia's polar radius at that angle, at the narrowest section.
    reach = squeeze * fascia_a * fascia_b / math.hypot(fascia_b * math.cos(direction), fascia_a * math.sin(direction))
    r_nv = min(4.5 * k, 0.3 * reach * math.sin(half_gap))
    distance = 0.5 * (max(r_nv / math.sin(half_gap), r_inner + r_nv) + reach - r_nv)
    nv_centre = (distance * math.cos(direction), distance * math.sin(direction))
    structures.append(Structure(_INFO["neurovascular_bundle"],
                                EllipticCylinder(2, nv_centre, (r_nv, r_nv), z0, z1), math.pi * r_nv**2 * length))

    regions = [Region(skin, "fat")]
    for s in structures:
        tissue = {"femur_cortex": "cortical_bone", "femur_marrow": "yellow_marrow", "subcutaneous_fat": "fat",
                  "neurovascular_bundle": "nerve"}.get(s.info.name, "muscle")
        regions.append(Region(s.shape, tissue, s.info.id))
    lo = np.array([-skin_a * (1 + taper / 2) - 8.0, -skin_b * (1 + taper / 2) - 8.0, z0])
    hi = np.array([skin_a * (1 + taper / 2) + 8.0, skin_b * (1 + taper / 2) + 8.0, z1])
    return Anatomy("thigh", SLICE_AXIS, Scene(regions), structures, lo, hi)

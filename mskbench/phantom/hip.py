"""Coronal hip (a right hip): femoral head and neck, head cartilage, acetabulum.

The femoral head is a sphere with the neck (a cylinder from the head centre,
pointing inferolaterally) fused to it; the head cartilage is a spherical
shell cap on the head around the acetabular axis (superomedial), and the
acetabulum a thicker bony shell cap outside it, beyond a thin joint space of
fluid. The neck points away from the acetabular axis by far more than the
caps' half-angles plus the neck's angular radius, so the labels are disjoint.

Cartilage thickness truth is not given here: a sphere cut by off-centre
coronal planes has an in-plane thickness that grows away from the centre, and
the cap's rim is not rounded, so DESIGN §8's per-slice value has no tidy
closed form. Its 3D thickness is the shell's, ``t_cart`` (truth of the
``local_3d`` method: the cap curves through every coronal slice); only the
square rim's corners, under 1 % of the volume, hold smaller inscribed spheres.
Volumes are exact.
"""

from __future__ import annotations

import math

import numpy as np

from mskbench.phantom.analytic import shell_cap_volume, sphere_cylinder_overlap, sphere_volume
from mskbench.phantom.anatomy import Anatomy, BuildContext, Structure
from mskbench.phantom.scene import Region, Scene
from mskbench.phantom.shapes import Box, CylinderSegment, ShellCap, Sphere, Union
from mskbench.types import LabelInfo, TissueClass

LABELS = (
    LabelInfo(1, "femoral_head", TissueClass.BONE),
    LabelInfo(2, "acetabulum", TissueClass.BONE),
    LabelInfo(3, "hip_cartilage", TissueClass.CARTILAGE),
)
SLICE_AXIS = "coronal"
_INFO = {info.name: info for info in LABELS}


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def build(rng: np.random.Generator, ctx: BuildContext) -> Anatomy:
    k = ctx.scale
    centre = np.zeros(3)
    r_head = 24.0 * k * rng.uniform(0.92, 1.08)
    t_cart = rng.uniform(*ctx.cartilage_thickness)
    joint = rng.uniform(1.5, 2.5)
    t_acet = rng.uniform(7.0, 10.0)
    inclination = math.radians(rng.uniform(35.0, 45.0))
    anteversion = math.radians(rng.uniform(10.0, 20.0))
    # Medial is -x for a right hip; the acetabular axis points into the pelvis.
    cup_axis = _unit([-math.sin(inclination), -math.sin(anteversion) * math.sin(inclination), math.cos(inclination)])
    neck_tilt = math.radians(rng.uniform(45.0, 55.0))
    neck_axis = _unit([math.sin(neck_tilt), math.sin(math.radians(rng.uniform(8.0, 15.0))), -math.cos(neck_tilt)])
    r_neck = 0.62 * r_head
    neck_length = 45.0 * k * rng.uniform(0.95, 1.05)
    cart_angle = math.radians(rng.uniform(60.0, 72.0))
    acet_angle = math.radians(rng.uniform(75.0, 85.0))

    head = Union((Sphere(centre, r_head), CylinderSegment(centre, neck_axis, r_neck, neck_length)))
    head_volume = (sphere_volume(r_head) + math.pi * r_neck**2 * neck_length
                   - sphere_cylinder_overlap(r_head, r_neck))
    cartilage = ShellCap(centre, r_head, r_head + t_cart, cup_axis, cart_angle)
    r_acet = r_head + t_cart + joint
    acetabulum = ShellCap(centre, r_acet, r_acet + t_acet, cup_axis, acet_angle)
    structures = [
        Structure(_INFO["femoral_head"], head, head_volume),
        Structure(_INFO["acetabulum"], acetabulum, shell_cap_volume(r_acet, r_acet + t_acet, acet_angle)),
        Structure(_INFO["hip_cartilage"], cartilage, shell_cap_volume(r_head, r_head + t_cart, cart_angle)),
    ]
    lo = np.min([s.shape.lo for s in structures], axis=0) - 8.0
    hi = np.max([s.shape.hi for s in structures], axis=0) + 8.0
    regions = [
        Region(Box(lo - 1.0, hi + 1.0), "muscle"),
        Region(Box([lo[0] - 1.0, lo[1] - 1.0, hi[2] - 10.0], hi + 1.0), "fat"),
        Region(ShellCap(centre, r_head, r_acet, cup_axis, acet_angle), "fluid"),
        Region(head, "yellow_marrow", _INFO["femoral_head"].id),
        Region(acetabulum, "red_marrow", _INFO["acetabulum"].id),
        Region(cartilage, "cartilage", _INFO["hip_cartilage"].id),
    ]
    return Anatomy("hip", SLICE_AXIS, Scene(regions), structures, lo, hi, local_thickness={"hip_cartilage": t_cart})

"""Simple shapes with known geometry, rasterised by pixel-centre inclusion.

Used by the biomarker tests as references that owe nothing to the code under
test; the tests here check the rasterisation itself against analytic areas.
"""

from __future__ import annotations

import numpy as np

from mskbench.types import LabelInfo, Subject, TissueClass

CARTILAGE = LabelInfo(1, "femoral_cartilage", TissueClass.CARTILAGE)
DISC = LabelInfo(2, "disc", TissueClass.DISC)


def plane_coordinates(shape, spacing, phase=(0.23, 0.41)):
    """(y, x) mm coordinates of pixel centres, origin near the middle, sub-pixel phase applied."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    y = (rows - shape[0] / 2 + phase[0]) * spacing[0]
    x = (cols - shape[1] / 2 + phase[1]) * spacing[1]
    return y, x


def band(thickness, angle_deg, spacing, shape, length=None):
    """A straight band of ``thickness`` mm through the centre, its axis at ``angle_deg`` to the columns."""
    y, x = plane_coordinates(shape, spacing)
    theta = np.deg2rad(angle_deg)
    normal = -np.sin(theta) * x + np.cos(theta) * y
    along = np.cos(theta) * x + np.sin(theta) * y
    mask = np.abs(normal) <= thickness / 2
    if length is not None:
        mask &= np.abs(along) <= length / 2
    return mask


def annulus(radius, thickness, spacing, shape, centre=(0.0, 0.0)):
    """A ring (2D section of a shell) of mid-radius ``radius`` mm."""
    y, x = plane_coordinates(shape, spacing)
    distance = np.hypot(y - centre[0], x - centre[1])
    return np.abs(distance - radius) <= thickness / 2


def rectangle(height, width, angle_deg, spacing, shape):
    """A rectangle, ``height`` along the rows (y) before rotating by ``angle_deg``."""
    y, x = plane_coordinates(shape, spacing)
    theta = np.deg2rad(angle_deg)
    u = np.cos(theta) * x + np.sin(theta) * y
    v = -np.sin(theta) * x + np.cos(theta) * y
    return (np.abs(u) <= width / 2) & (np.abs(v) <= height / 2)


def volume_coordinates(spacing, field_of_view_mm, phase=(0.31, 0.23, 0.41)):
    """(z, y, x) mm coordinates of voxel centres of a cube ``field_of_view_mm`` wide, origin near the middle."""
    shape = tuple(int(round(field_of_view_mm / s)) for s in spacing)
    return tuple(
        ((np.arange(n) - n / 2 + p) * s).reshape([-1 if a == axis else 1 for a in range(3)])
        for axis, (n, s, p) in enumerate(zip(shape, spacing, phase, strict=True))
    )


def tilted_slab(thickness, tilt_deg, spacing, field_of_view_mm=20.0, in_plane_deg=20.0):
    """A slab through the centre whose normal is ``tilt_deg`` out of the slice plane (axis 0 is the
    slicing axis); ``in_plane_deg`` turns the normal's in-plane part off the pixel rows, so a 0°
    slab is not a whole number of pixels thick. Its true thickness is ``thickness`` at every tilt."""
    z, y, x = volume_coordinates(spacing, field_of_view_mm)
    tilt, turn = np.deg2rad(tilt_deg), np.deg2rad(in_plane_deg)
    normal = (np.sin(tilt), np.cos(tilt) * np.cos(turn), np.cos(tilt) * np.sin(turn))
    return np.abs(normal[0] * z + normal[1] * y + normal[2] * x) <= thickness / 2


def spherical_shell(inner, outer, spacing):
    """The shell between two concentric spheres: thickness ``outer - inner`` everywhere."""
    z, y, x = volume_coordinates(spacing, 2 * outer + 3.0)
    radius = np.sqrt(z**2 + y**2 + x**2)
    return (radius >= inner) & (radius <= outer)


def cylindrical_shell(inner, outer, spacing, length=20.0):
    """A cylindrical shell whose axis lies in the slice plane (array axis 2), so it curves through
    the slices; thickness ``outer - inner``. Cut to ``length`` mm (square rims)."""
    z, y, x = volume_coordinates(spacing, 2 * outer + 3.0)
    radius = np.sqrt(z**2 + y**2)
    return (radius >= inner) & (radius <= outer) & (np.abs(x) <= length / 2)


def extrude(plane_mask, depth, label):
    """Stack a 2D mask ``depth`` times along array axis 0 (the sagittal axis) as label values."""
    return np.repeat((plane_mask.astype(np.int16) * label)[None], depth, axis=0)


def subject_for(labels, spacing, affine=None, maps=None, label_infos=(CARTILAGE, DISC)):
    """A Subject around a label volume; RAS+ axis-aligned affine unless one is given."""
    if affine is None:
        affine = np.diag([*spacing, 1.0])
    return Subject(
        id="shape",
        volume=np.zeros(labels.shape, np.float32),
        labels=labels,
        spacing=tuple(spacing),
        affine=affine,
        label_map={info.id: info for info in label_infos},
        maps=dict(maps or {}),
    )


def test_band_area_matches_analytic_area():
    spacing = (0.3, 0.45)
    mask = band(2.5, 33.0, spacing, (300, 300), length=40.0)
    assert abs(mask.sum() * np.prod(spacing) - 2.5 * 40.0) / 100.0 < 0.02


def test_annulus_and_rectangle_areas_match_analytic_areas():
    spacing = (0.4, 0.4)
    ring = annulus(15.0, 3.0, spacing, (120, 120))
    assert abs(ring.sum() * 0.16 - 2 * np.pi * 15.0 * 3.0) / (2 * np.pi * 45.0) < 0.02
    box = rectangle(10.0, 30.0, -30.0, spacing, (150, 150))
    assert abs(box.sum() * 0.16 - 300.0) / 300.0 < 0.02


def test_3d_shapes_match_analytic_volumes():
    spacing = (0.7, 0.36, 0.36)
    voxel = np.prod(spacing)
    shell = spherical_shell(10.0, 12.0, spacing)
    assert abs(shell.sum() * voxel / (4 / 3 * np.pi * (12.0**3 - 10.0**3)) - 1) < 0.01
    tube = cylindrical_shell(10.0, 12.0, spacing)
    assert abs(tube.sum() * voxel / (np.pi * (12.0**2 - 10.0**2) * 20.0) - 1) < 0.02
    slab = tilted_slab(2.0, 45.0, spacing)
    z, y, x = volume_coordinates(spacing, 20.0)
    # A tilted slab crosses every column along its normal's largest component once, 2 mm / |n| long.
    normal_y = np.cos(np.deg2rad(45.0)) * np.cos(np.deg2rad(20.0))
    middle = slab[:, :, slab.shape[2] // 2].sum(axis=1) * spacing[1]
    assert abs(np.median(middle) - 2.0 / normal_y) <= spacing[1]

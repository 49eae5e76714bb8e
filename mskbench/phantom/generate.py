"""Generate one phantom subject from (anatomy, seed, index), independently of all others.

Each subject's randomness comes from ``SeedSequence([seed, anatomy code, index])``
split into four streams (demographics, acquisition, geometry, noise), so a
subject can be generated alone (streaming), its demographics can be read
without building it (for stratified splits), and changing the SNR changes the
noise but never the anatomy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mskbench.errors import DataError
from mskbench.phantom import hip, knee, spine, thigh
from mskbench.phantom.acquisition import (
    VENDOR_GAIN,
    Protocol,
    body_scale,
    sample_acquisition,
    sample_demographics,
)
from mskbench.phantom.anatomy import Anatomy, BuildContext
from mskbench.phantom.raster import Grid, rasterise
from mskbench.phantom.signal import REFERENCE_VOXEL_MM3, bias_field, rician, signal
from mskbench.types import Acquisition, Demographics, LabelInfo, Subject

log = logging.getLogger(__name__)

BUILDERS = {"knee": knee, "spine": spine, "thigh": thigh, "hip": hip}
ANATOMIES = tuple(BUILDERS)
_CODES = {"knee": 1, "spine": 2, "thigh": 3, "hip": 4}
#: Intensity scale of the noiseless signal (PD = 1, full recovery).
SIGNAL_SCALE = 1000.0


@dataclass(frozen=True)
class PhantomOptions:
    """How subjects are generated; the defaults are the embedded default dataset.

    ``snr`` is the signal-to-noise ratio (mean labelled signal / noise sigma)
    at 3 T and the anatomy's reference voxel; ``pixel_spacing`` overrides the
    anatomy's in-plane spacing range; ``acquisition`` pins Acquisition fields.
    """

    snr: float = 40.0
    pixel_spacing: tuple[float, float] | None = None
    cartilage_thickness: tuple[float, float] = (1.5, 3.5)
    supersample: int = 2
    bias: float = 0.2
    noise: bool = True
    acquisition: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Blueprint:
    """Everything about a subject before rasterisation: the continuous phantom."""

    anatomy: Anatomy
    acquisition: Acquisition
    protocol: Protocol
    demographics: Demographics
    grid: Grid


def label_map(anatomy: str) -> dict[int, LabelInfo]:
    return {info.id: info for info in _builder(anatomy).LABELS}


def slice_axis(anatomy: str) -> str:
    return _builder(anatomy).SLICE_AXIS


def subject_id(anatomy: str, index: int) -> str:
    return f"{anatomy}_{index:03d}"


def _builder(anatomy: str):
    if anatomy not in BUILDERS:
        raise DataError(f"unknown phantom anatomy {anatomy!r}; choose one of {', '.join(ANATOMIES)}")
    return BUILDERS[anatomy]


def _streams(anatomy: str, seed: int, index: int) -> list[np.random.Generator]:
    sequence = np.random.SeedSequence([int(seed), _CODES[anatomy], int(index)])
    return [np.random.default_rng(child) for child in sequence.spawn(4)]


def subject_demographics(anatomy: str, seed: int, index: int) -> Demographics:
    """The subject's demographics alone (cheap; no geometry is built)."""
    _builder(anatomy)
    return sample_demographics(_streams(anatomy, seed, index)[0])


def blueprint(anatomy: str, seed: int, index: int, options: PhantomOptions = PhantomOptions()) -> Blueprint:
    """The subject's continuous geometry, acquisition and voxel grid."""
    builder = _builder(anatomy)
    demo_rng, acq_rng, geo_rng, _ = _streams(anatomy, seed, index)
    demographics = sample_demographics(demo_rng)
    acquisition, protocol = sample_acquisition(anatomy, acq_rng, options.pixel_spacing, dict(options.acquisition))
    ctx = BuildContext(
        scale=body_scale(demographics, geo_rng),
        sex=demographics.sex,
        weight_kg=demographics.weight_kg,
        cartilage_thickness=tuple(options.cartilage_thickness),
        slice_thickness=acquisition.slice_thickness_mm,
        pixel_spacing=acquisition.pixel_spacing_mm,
    )
    built: Anatomy = builder.build(geo_rng, ctx)
    spacing = [acquisition.pixel_spacing_mm] * 3
    spacing[built.axis] = acquisition.slice_thickness_mm
    grid = Grid.covering(built.fov_lo, built.fov_hi, spacing)
    return Blueprint(built, acquisition, protocol, demographics, grid)


def effective_snr(anatomy: str, acquisition: Acquisition, base_snr: float) -> float:
    """SNR after field strength (linear in B0) and voxel size (square root of the
    volume ratio, softened because small-voxel protocols average more); 3D
    acquisitions gain 1.5x from encoding the whole slab."""
    voxel = acquisition.pixel_spacing_mm**2 * acquisition.slice_thickness_mm
    factor = acquisition.field_strength_t / 3.0 * np.sqrt(voxel / REFERENCE_VOXEL_MM3[anatomy])
    return float(base_snr * factor * (1.5 if acquisition.acquisition_type == "3D" else 1.0))


def generate_subject(anatomy: str, seed: int, index: int, options: PhantomOptions = PhantomOptions()) -> Subject:
    """Build, rasterise and image one subject; truth is analytic (see docs/phantom.md)."""
    plan = blueprint(anatomy, seed, index, options)
    acq, protocol = plan.acquisition, plan.protocol
    noise_rng = _streams(anatomy, seed, index)[3]

    def signal_fn(props: dict[str, np.ndarray]) -> np.ndarray:
        return signal(protocol.kind, props["pd"], props["t1"], props["t2"], acq.te_ms, acq.tr_ms, acq.flip_angle_deg)

    raster = rasterise(plan.anatomy.scene, plan.grid, acq.field_strength_t, signal_fn, options.supersample)
    gain = SIGNAL_SCALE * VENDOR_GAIN.get(acq.vendor, 1.0)
    image = raster.signal * gain
    if options.bias > 0:
        image *= bias_field(plan.grid.shape, options.bias * acq.field_strength_t / 3.0, noise_rng)
    if options.noise:
        labelled = raster.labels > 0
        reference = float(image[labelled].mean()) if labelled.any() else float(image.mean())
        sigma = reference / effective_snr(anatomy, acq, options.snr)
        image = rician(image, sigma, noise_rng)
    body = raster.properties["pd"] > 0
    maps = {q: np.where(body, raster.properties[q], 0.0).astype(np.float32) for q in plan.anatomy.maps}
    sid = subject_id(anatomy, index)
    log.debug("phantom %s: grid %s spacing %s", sid, plan.grid.shape, plan.grid.spacing)
    return Subject(
        id=sid,
        volume=image.astype(np.float32),
        labels=raster.labels,
        spacing=plan.grid.spacing,
        affine=plan.grid.affine,
        label_map=label_map(anatomy),
        acquisition=acq,
        demographics=plan.demographics,
        maps=maps,
        anatomy=anatomy,
        truth=plan.anatomy.truth(plan.grid.coords(plan.anatomy.axis)),
    )


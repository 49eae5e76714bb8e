"""Per-subject acquisition protocol and demographics, sampled from a seed.

Each anatomy has a small catalogue of clinically common sequences; a subject
draws one, then its field strength, vendor, TE, TR, flip angle, pixel spacing
and slice thickness within the sequence's ranges. The draws feed the signal
equation (contrast) and the noise level (SNR), so an acquisition-effects
model fitted on the phantom has real effects to find.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mskbench.errors import DataError
from mskbench.types import Acquisition, Demographics


@dataclass(frozen=True)
class Protocol:
    """A sequence's name, signal model (``SE`` or ``GRE``), 2D/3D and parameter ranges."""

    name: str
    kind: str
    mode: str
    te: tuple[float, float]
    tr: tuple[float, float]
    flip: tuple[float, float]
    slice_thickness: tuple[float, float]


_PD_TSE = Protocol("PD_TSE", "SE", "2D", (20, 40), (2500, 4000), (90, 90), (2.5, 3.5))
_T1_SE = Protocol("T1_SE", "SE", "2D", (10, 20), (450, 750), (90, 90), (3.0, 4.0))
_T2_TSE = Protocol("T2_TSE", "SE", "2D", (60, 100), (3000, 5000), (90, 90), (3.0, 4.0))
_SPGR_3D = Protocol("3D_SPGR", "GRE", "3D", (3, 8), (12, 25), (10, 30), (1.2, 2.0))

PROTOCOLS: dict[str, tuple[Protocol, ...]] = {
    "knee": (_PD_TSE, _T1_SE, _T2_TSE, _SPGR_3D),
    "spine": (_T2_TSE, _T1_SE),
    "thigh": (
        replace(_T1_SE, slice_thickness=(5.0, 8.0)),
        replace(_T2_TSE, slice_thickness=(5.0, 8.0)),
        Protocol("3D_GRE_DIXON", "GRE", "3D", (2, 5), (6, 12), (8, 15), (4.0, 6.0)),
    ),
    "hip": (_PD_TSE, _T1_SE, replace(_SPGR_3D, slice_thickness=(2.0, 2.5))),
}

#: Default in-plane pixel spacing range (mm) per anatomy.
PIXEL_SPACING: dict[str, tuple[float, float]] = {
    "knee": (0.3, 0.7),
    "spine": (0.9, 1.2),
    "thigh": (0.8, 1.2),
    "hip": (0.6, 0.9),
}

VENDORS = ("Siemens", "GE", "Philips")
#: Arbitrary receiver scaling per vendor: raw intensities differ between scanners.
VENDOR_GAIN = {"Siemens": 1.0, "GE": 1.6, "Philips": 0.7}


def sample_demographics(rng: np.random.Generator) -> Demographics:
    sex = "F" if rng.random() < 0.5 else "M"
    age = float(np.round(rng.uniform(18.0, 80.0), 1))
    mean = 84.0 if sex == "M" else 70.0
    weight = float(np.round(np.clip(rng.normal(mean, 12.0), 45.0, 140.0), 1))
    return Demographics(sex=sex, age_years=age, weight_kg=weight)


def body_scale(demographics: Demographics, rng: np.random.Generator) -> float:
    """Length scale of the anatomy: men larger, heavier people slightly larger."""
    base = 1.04 if demographics.sex == "M" else 0.96
    return base * (demographics.weight_kg / 77.0) ** 0.1 * rng.uniform(0.96, 1.04)


def sample_acquisition(
    anatomy: str,
    rng: np.random.Generator,
    pixel_spacing: tuple[float, float] | None = None,
    overrides: dict[str, Any] | None = None,
) -> tuple[Acquisition, Protocol]:
    """Draw one subject's acquisition; ``overrides`` pins fields by Acquisition name
    (``sequence`` picks a protocol from the anatomy's catalogue)."""
    overrides = dict(overrides or {})
    catalogue = {p.name: p for p in PROTOCOLS[anatomy]}
    if "sequence" in overrides:
        if overrides["sequence"] not in catalogue:
            raise DataError(
                f"phantom {anatomy}: unknown sequence {overrides['sequence']!r}; choose one of {', '.join(catalogue)}"
            )
        protocol = catalogue[overrides["sequence"]]
        rng.integers(len(catalogue))  # keep the stream aligned with an unpinned draw
    else:
        protocol = PROTOCOLS[anatomy][int(rng.integers(len(catalogue)))]
    spacing_range = pixel_spacing or PIXEL_SPACING[anatomy]
    acquisition = Acquisition(
        field_strength_t=1.5 if rng.random() < 0.4 else 3.0,
        vendor=VENDORS[int(rng.integers(len(VENDORS)))],
        sequence=protocol.name,
        te_ms=float(np.round(rng.uniform(*protocol.te), 1)),
        tr_ms=float(np.round(rng.uniform(*protocol.tr), 0)),
        flip_angle_deg=float(np.round(rng.uniform(*protocol.flip), 0)),
        slice_thickness_mm=float(np.round(rng.uniform(*protocol.slice_thickness), 2)),
        pixel_spacing_mm=float(np.round(rng.uniform(*spacing_range), 3)),
        acquisition_type=protocol.mode,  # type: ignore[arg-type]
    )
    unknown = set(overrides) - set(Acquisition.__dataclass_fields__)
    if unknown:
        raise DataError(
            f"phantom acquisition override {sorted(unknown)[0]!r} is not an Acquisition field; "
            f"use one of {', '.join(Acquisition.__dataclass_fields__)}"
        )
    return replace(acquisition, **overrides), protocol

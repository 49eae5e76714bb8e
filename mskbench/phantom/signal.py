"""MR signal formation: steady-state signal equations, bias field, Rician noise.

Hand-written because these are the textbook closed forms (Haacke et al.,
*Magnetic Resonance Imaging*, ch. 8 and 18) and no maintained Python library
offers them as a small vectorised function; simulators such as MRiLab or
Bloch solvers are far heavier than a phantom needs.
"""

from __future__ import annotations

import numpy as np

#: Reference voxel volume (mm³) per anatomy at which ``snr`` is specified.
REFERENCE_VOXEL_MM3 = {"knee": 0.5 * 0.5 * 3.0, "spine": 1.0 * 1.0 * 4.0, "thigh": 1.0 * 1.0 * 6.0,
                       "hip": 0.75 * 0.75 * 3.0}


def spin_echo(pd, t1, t2, te: float, tr: float) -> np.ndarray:
    """Spin-echo signal PD * (1 - exp(-TR/T1)) * exp(-TE/T2) (TR >> TE)."""
    return pd * (1.0 - np.exp(-tr / t1)) * np.exp(-te / t2)


def spoiled_gradient_echo(pd, t1, t2, te: float, tr: float, flip_deg: float) -> np.ndarray:
    """Spoiled GRE (FLASH/SPGR) steady state; T2 stands in for T2* (no susceptibility model)."""
    alpha = np.deg2rad(flip_deg)
    e1 = np.exp(-tr / t1)
    return pd * np.sin(alpha) * (1.0 - e1) / (1.0 - np.cos(alpha) * e1) * np.exp(-te / t2)


def signal(kind: str, pd, t1, t2, te: float, tr: float, flip_deg: float) -> np.ndarray:
    """Signal of the sequence ``kind`` (``SE`` or ``GRE``)."""
    if kind == "SE":
        return spin_echo(pd, t1, t2, te, tr)
    if kind == "GRE":
        return spoiled_gradient_echo(pd, t1, t2, te, tr, flip_deg)
    raise ValueError(f"unknown sequence kind {kind!r}")


def bias_field(shape: tuple[int, ...], strength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative receive-coil bias: exp of low-frequency cosines per axis.

    Separable (a sum of one function per axis in the exponent), so it costs
    three 1D arrays and one broadcast; ``strength`` is the typical relative
    swing (0.2 = about +-20 %).
    """
    log_field = np.zeros(shape, dtype=np.float32)
    for axis, n in enumerate(shape):
        u = (np.arange(n) + 0.5) / n
        profile = sum(rng.normal(0.0, strength / 2) * np.cos(np.pi * j * u + rng.uniform(0, np.pi))
                      for j in (1, 2))
        view = [1, 1, 1]
        view[axis] = n
        log_field = log_field + profile.reshape(view).astype(np.float32)
    return np.exp(log_field)


def rician(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of std ``sigma`` per channel."""
    real = image + rng.normal(0.0, sigma, image.shape).astype(np.float32)
    imag = rng.normal(0.0, sigma, image.shape).astype(np.float32)
    return np.hypot(real, imag)

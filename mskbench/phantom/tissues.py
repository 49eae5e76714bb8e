"""Relaxation properties of the phantom's tissues at 1.5 T and 3 T.

Values are rounded from the MSK relaxometry literature (Gold et al. 2004,
AJR 183:343, for T1/T2 of musculoskeletal tissues at 1.5 T and 3 T; cartilage
T1rho from the knee relaxometry literature). They only need to be plausible
and to differ between tissues the way real ones do; the phantom's truth does
not depend on them. Between field strengths T1 is interpolated in log-space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Tissue:
    """Proton density (relative), T1 at 1.5 T and 3 T, T2 and T1rho (ms)."""

    pd: float
    t1_15: float
    t1_30: float
    t2: float
    t1rho: float

    def t1(self, field_t: float) -> float:
        """T1 at ``field_t`` tesla, log-linear in the field between the two tabulated values."""
        w = math.log(field_t / 1.5) / math.log(2.0)
        return math.exp((1 - w) * math.log(self.t1_15) + w * math.log(self.t1_30))


TISSUES: dict[str, Tissue] = {
    "air": Tissue(0.0, 1.0, 1.0, 1.0, 1.0),
    "fat": Tissue(0.95, 290.0, 370.0, 85.0, 90.0),
    "yellow_marrow": Tissue(0.9, 320.0, 380.0, 55.0, 60.0),
    "red_marrow": Tissue(0.8, 600.0, 750.0, 50.0, 55.0),
    "cortical_bone": Tissue(0.05, 800.0, 1000.0, 1.0, 1.0),
    "muscle": Tissue(0.75, 870.0, 1420.0, 35.0, 40.0),
    "cartilage": Tissue(0.8, 1050.0, 1240.0, 38.0, 45.0),
    "meniscus": Tissue(0.5, 800.0, 1000.0, 12.0, 15.0),
    "fluid": Tissue(1.0, 3000.0, 3600.0, 700.0, 700.0),
    "disc": Tissue(0.9, 1100.0, 1300.0, 100.0, 110.0),
    "nerve": Tissue(0.75, 1000.0, 1250.0, 60.0, 70.0),
    "tendon": Tissue(0.3, 600.0, 750.0, 8.0, 10.0),
}

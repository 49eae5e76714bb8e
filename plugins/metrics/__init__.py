"""Built-in metric plugins: `overlap` (dice, iou) and `surface` (hd95, hd, assd, masd, nsd).

The classes live in :mod:`mskbench.metrics`; the factories import them on
call so listing plugins does not import scipy.
"""

from mskbench.hookspecs import hookimpl
from mskbench.params import Param


def _overlap():
    from mskbench.metrics.overlap import OverlapMetrics

    return OverlapMetrics()


def _surface(nsd_tolerance_mm: float = 1.0):
    from mskbench.metrics.surface import SurfaceMetrics

    return SurfaceMetrics(nsd_tolerance_mm=nsd_tolerance_mm)


@hookimpl
def mskbench_register_metrics(register):
    register(
        name="overlap",
        factory=_overlap,
        description="Dice and IoU; both_empty -> NaN, miss/false positive -> 0.",
        params={},
    )
    register(
        name="surface",
        factory=_surface,
        description="HD95, HD, ASSD, MASD (mm) and NSD at a tolerance; worst case = unit diagonal, flagged.",
        params={
            "nsd_tolerance_mm": Param(
                "float", default=1.0, minimum=0.0, help="NSD tolerance tau in mm: boundary within tau counts as correct."
            )
        },
    )

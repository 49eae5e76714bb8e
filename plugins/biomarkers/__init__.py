"""Built-in biomarker plugins (DESIGN §8).

The factories import their modules lazily so `mskbench plugins` does not pay
for scikit-image and OpenCV at start-up.
"""

from mskbench.hookspecs import hookimpl
from mskbench.params import Param


def cartilage_thickness(method: str = "medial_axis_2d"):
    from mskbench.biomarkers.thickness import CartilageThickness

    return CartilageThickness(method=method)


def tissue_volume(total: bool = True):
    from mskbench.biomarkers.volume import TissueVolume

    return TissueVolume(total=total)


def disc_height(connectivity: int = 3, min_voxels: int = 1):
    from mskbench.biomarkers.disc_height import DiscHeight

    return DiscHeight(connectivity=connectivity, min_voxels=min_voxels)


def relaxometry(maps: list | None = None):
    from mskbench.biomarkers.relaxometry import MAP_NAMES, Relaxometry

    return Relaxometry(maps=MAP_NAMES if maps is None else maps)


@hookimpl
def mskbench_register_biomarkers(register):
    register(
        name="cartilage_thickness",
        factory=cartilage_thickness,
        description="Mean cartilage thickness (mm): 2 x EDT at 2D skeleton points, or local 3D thickness.",
        params={
            "method": Param(
                "str", default="medial_axis_2d", choices=["medial_axis_2d", "local_3d"],
                help="medial_axis_2d: per-slice skeleton, 2 x EDT (source study); "
                "local_3d: largest inscribed sphere per voxel on a sub-voxel surface.",
            ),
        },
    )
    register(
        name="tissue_volume",
        factory=tissue_volume,
        description="Tissue volume (cm3): voxel count x voxel volume, per label and total.",
        params={"total": Param("bool", default=True, help="Also report the 'total' of all selected labels.")},
    )
    register(
        name="disc_height",
        factory=disc_height,
        description="Disc height (mm) per disc instance: min-area rectangle side along S-I, max over slices.",
        params={
            "connectivity": Param(
                "int", default=3, minimum=1, maximum=3,
                help="3D neighbourhood splitting a disc label into instances (1 = faces, 3 = full 26).",
            ),
            "min_voxels": Param(
                "int", default=1, minimum=1, help="Connected components smaller than this are not discs."
            ),
        },
    )
    register(
        name="relaxometry",
        factory=relaxometry,
        description="Mean T2 / T1rho (ms) per compartment and overall; clipped to [0, 100], zeros and NaN excluded.",
        params={
            "maps": Param("list", default=["t2", "t1rho"], help="Which quantitative maps to average: t2, t1rho."),
        },
    )

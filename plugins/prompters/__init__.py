"""Built-in prompters: none, gt_box, jitter_box, points, box_point, yolo, box3d, box3d-from-file, clicks.

The semantics of each are in docs/prompters.md; the code lives in
:mod:`mskbench.prompting`. Factories import their module on first use so
`mskbench plugins` does not pay for scipy or ultralytics.
"""

from __future__ import annotations

import importlib

from mskbench.hookspecs import hookimpl
from mskbench.params import Param


def _lazy(module: str, cls: str):
    """A factory that imports ``module`` only when a prompter is built."""

    def factory(**params):
        return getattr(importlib.import_module(module), cls)(**params)

    factory.__name__ = cls
    factory.__doc__ = f"Build {module}.{cls}."
    return factory


_TARGETS = {
    "instances": Param(
        "bool", default=False, help="prompt each 8-connected component separately (instance 1, 2, ...)"
    ),
    "min_component_pixels": Param(
        "int", default=1, minimum=1, help="ignore targets smaller than this many pixels"
    ),
}
_STRATEGY = Param(
    "str",
    default="centroid_snapped",
    choices=("centroid_snapped", "dt_max", "random_interior"),
    help="where the foreground point goes",
)
_BOX_POINT_STRATEGY = Param(
    "str",
    default="centroid_snapped",
    choices=("centroid_snapped", "dt_max", "random_interior", "raster_middle"),
    help="where the foreground point goes; raster_middle: at random in the middle tenth of the mask's pixels "
    "in raster order, as SAMRI's own evaluation draws it",
)


_JITTER_MODE = Param("str", default="outward", choices=("outward", "symmetric", "fixed"), help="jitter rule")
_RESOLUTION = Param(
    "str",
    default="original",
    choices=("original", "model_1024"),
    help="pixels of the slice, or of a 1024 longest-side model input",
)
_KEY_SLICE = Param(
    "str", default="largest", choices=("largest", "middle", "median_voxel", "median_slice"),
    help="slice of the 2D box: largest reference area, middle of the extent, or CVPR 2025's median slice "
         "by voxel count (its script until Feb 2025) or of the slices holding the label (since May 2025)",
)
_BOX3D_MODE = Param(
    "str", default="outward", choices=("outward", "symmetric", "fixed", "cvpr25"),
    help="jitter rule (as jitter_box), or cvpr25: one b in 0..max_shift, sides out by b*W/256, b*H/256",
)
_BOX3D_SHIFT = Param(
    "float", default=0.0, minimum=0, help="s, in pixels at `resolution` (cvpr25: the largest b); 0 = the tight box"
)


@hookimpl
def mskbench_register_prompters(register):
    oracle = "mskbench.prompting.oracle"
    register(
        name="none",
        factory=_lazy(oracle, "NonePrompter"),
        description="No prompt (automatic mode): one 'none' prompt for every requested label.",
    )
    register(
        name="gt_box",
        factory=_lazy(oracle, "GtBoxPrompter"),
        description="Tight box of the reference label or component.",
        params=dict(_TARGETS),
    )
    register(
        name="jitter_box",
        factory=_lazy(oracle, "JitterBoxPrompter"),
        description="Tight box with each side moved: outward U[0,s], symmetric ±U[0,s] or fixed s; clipped.",
        params={
            "mode": _JITTER_MODE,
            "max_shift": Param("float", default=10.0, minimum=0, help="s, in pixels at `resolution`"),
            "resolution": _RESOLUTION,
            **_TARGETS,
        },
    )
    register(
        name="points",
        factory=_lazy(oracle, "PointsPrompter"),
        description="Foreground points inside the target, optional background points around it.",
        params={
            "positive": Param("int", default=1, minimum=1, help="number of foreground points"),
            "strategy": _STRATEGY,
            "negative": Param("int", default=0, minimum=0, help="number of background points"),
            "negative_margin": Param(
                "int", default=10, minimum=0, help="background points lie within the tight box grown by this"
            ),
            **_TARGETS,
        },
    )
    register(
        name="box_point",
        factory=_lazy(oracle, "BoxPointPrompter"),
        description="Tight box plus one interior foreground point (SAMRI-style box+point).",
        params={"strategy": _BOX_POINT_STRATEGY, **_TARGETS},
    )
    register(
        name="yolo",
        factory=_lazy("mskbench.prompting.yolo", "YoloPrompter"),
        description="Boxes from a YOLO detector trained with `mskbench detector train` (score and class recorded).",
        params={
            "weights": Param("path", help="the .pt written by `mskbench detector train` (its .json card beside it)"),
            "conf": Param("float", default=0.25, minimum=0.0, maximum=1.0, help="minimum detector score"),
            "top_k": Param("int", default=1, minimum=1, help="boxes kept per label and slice, best first"),
            "imgsz": Param("int", default=0, minimum=0, help="inference size; 0 = the size it was trained at"),
            "device": Param("str", default="cpu", help="torch device for inference"),
        },
        requires=("detector weights",),
    )
    register(
        name="box3d",
        factory=_lazy("mskbench.prompting.box3d", "Box3dPrompter"),
        description="3D box: the label's extent along the slicing axis plus its 2D box on a key slice (jitter as jitter_box).",
        params={
            "key_slice": _KEY_SLICE,
            "mode": _BOX3D_MODE,
            "max_shift": _BOX3D_SHIFT,
            "resolution": _RESOLUTION,
        },
    )
    register(
        name="box3d-from-file",
        factory=_lazy("mskbench.prompting.box_file", "BoxFilePrompter"),
        description="3D boxes drawn by a person, read from a CSV (subject_id,label,x1,y1,z1,x2,y2,z2 in world mm).",
        params={
            "path": Param("path", help="the CSV of boxes: one row per subject and label, two opposite corners"),
            "space": Param("str", choices=("RAS", "LPS"),
                           help="the corners' world convention: RAS (3D Slicer's GUI, NIfTI) or LPS (DICOM, ITK)"),
        },
    )
    register(
        name="clicks",
        factory=_lazy("mskbench.interaction.clicks", "ClicksPrompter"),
        description="Interactive protocol: an initial prompt, then one round of corrective clicks after another.",
        params={
            "initial": Param("str", default="box3d", choices=("box", "point", "box3d", "none"), help="round-0 prompt"),
            "rounds": Param("int", default=5, minimum=0, maximum=50, help="corrective click rounds after round 0"),
            "placement": Param(
                "str", default="max_edt_largest_error",
                choices=("max_edt_largest_error", "component_centroid", "random_error"),
                help="click rule: CVPR 2025, RadioActive, or micro-sam",
            ),
            "space": Param("str", default="volume", choices=("slice", "volume"), help="place clicks per slice or in 3D"),
            "feedback": Param(
                "str", default="logits", choices=("logits", "mask", "none"),
                help="what the model gets back from its previous round",
            ),
            "key_slice": _KEY_SLICE,
            "mode": _BOX3D_MODE,
            "max_shift": _BOX3D_SHIFT,
        },
    )

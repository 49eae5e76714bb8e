"""Registration of the weight-free baseline models (box_fill, otsu_box, grabcut_box, and the
interactive random_walker_clicks and 3D region_growing_3d).

The factories import the implementation (and OpenCV) only when a model is
built, so listing plugins stays fast; the planner reads each factory's
``supported_prompts`` without building it.
"""

from __future__ import annotations

from mskbench.params import Param

#: what every baseline accepts; equal to ``mskbench.segmenters.baselines.BOX_PROMPTS`` (tested)
BASELINE_PROMPTS = frozenset({"box", "box+point"})


def _box_fill(**kwargs):
    from mskbench.segmenters.baselines import BoxFill

    return BoxFill(**kwargs)


def _otsu_box(**kwargs):
    from mskbench.segmenters.baselines import OtsuBox

    return OtsuBox(**kwargs)


def _grabcut_box(**kwargs):
    from mskbench.segmenters.baselines import GrabCutBox

    return GrabCutBox(**kwargs)


for _factory in (_box_fill, _otsu_box, _grabcut_box):
    _factory.supported_prompts = BASELINE_PROMPTS


def _random_walker_clicks(**kwargs):
    from mskbench.segmenters.random_walker import RandomWalkerClicks

    return RandomWalkerClicks(**kwargs)


def _region_growing_3d(**kwargs):
    from mskbench.segmenters.region_growing_3d import RegionGrowing3D

    return RegionGrowing3D(**kwargs)


# declared here, equal to the classes' own attributes (tested), so the plan needs no import
_random_walker_clicks.supported_prompts = frozenset({"box", "point", "box+point"})
_random_walker_clicks.interactive = True
_random_walker_clicks.feedback = frozenset({"mask"})
_region_growing_3d.supported_prompts = frozenset({"box3d", "point"})
_region_growing_3d.kind = "volume"
_region_growing_3d.interactive = True
_region_growing_3d.feedback = frozenset()


def register_plugin(register) -> None:
    """Register the baselines with the `mskbench_register_models` callback."""
    register(
        name="box_fill",
        factory=_box_fill,
        description="The filled prompt box: the trivial lower bound every model must beat.",
    )
    register(
        name="otsu_box",
        factory=_otsu_box,
        description="Otsu threshold inside the prompt box (OpenCV), largest component.",
        params={
            "polarity": Param(
                "str",
                default="auto",
                choices=("auto", "bright", "dark"),
                help="Object class: auto = the class rarer on the box border; or force bright/dark.",
            ),
            "keep_largest": Param("bool", default=True, help="Keep only the largest 8-connected component."),
        },
    )
    register(
        name="grabcut_box",
        factory=_grabcut_box,
        description="OpenCV GrabCut initialised from the prompt box; box+point points seed it.",
        params={
            "iterations": Param("int", default=5, minimum=1, maximum=100, help="GrabCut iterations per prompt."),
            "seed": Param("int", default=0, minimum=0, help="Seed for OpenCV's RNG, set before every call."),
            "point_radius": Param(
                "int", default=3, minimum=0, help="Radius in pixels of the fixed disc around each box+point point."
            ),
            "context_margin": Param(
                "float", default=None, minimum=0.0,
                help="Run GrabCut on the box plus this fraction of its longer side (>= 10 px) on each side; "
                "default: the whole slice.",
            ),
        },
    )
    register(
        name="random_walker_clicks",
        factory=_random_walker_clicks,
        description="Interactive 2D baseline: scikit-image random walker seeded by the box, the clicks and the previous mask.",
        params={
            "beta": Param("float", default=130.0, minimum=0.0, help="random walker edge weight (scikit-image default)"),
            "margin": Param("int", default=10, minimum=0, help="pixels of context around the box and the clicks"),
            "point_radius": Param("int", default=2, minimum=0, help="radius of the seed disc around each click"),
            "band": Param("int", default=3, minimum=0, help="the previous mask is kept beyond this distance from its boundary"),
        },
    )
    register(
        name="region_growing_3d",
        factory=_region_growing_3d,
        description="3D volume baseline: region growing inside the box3d from its key-slice core and 3D clicks.",
        params={
            "margin": Param("int", default=5, minimum=0, help="voxels of the background shell around the 3D box"),
            "point_radius": Param("int", default=1, minimum=0, help="half-width of the seed cube around each click"),
            "tolerance": Param("float", default=2.5, minimum=0.0, help="foreground std multiple without background samples"),
        },
    )

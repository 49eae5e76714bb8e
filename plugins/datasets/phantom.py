"""The `phantom` dataset: synthetic MSK MRI with analytic ground truth (docs/phantom.md).

Subjects are generated on demand from (seed, index), so a run streams them and
nothing is written to disk. Each subject carries its analytic truth in
``Subject.truth`` keyed by (biomarker, structure).
"""

from __future__ import annotations

from mskbench.errors import DataError, PluginError
from mskbench.params import Param
from mskbench.types import SPLITS, LabelInfo, SliceAxis, Subject

ANATOMIES = ("knee", "spine", "thigh", "hip")

PARAMS = {
    "anatomy": Param("str", default="knee", choices=ANATOMIES,
                     help="knee (sagittal), spine (lumbar, sagittal), thigh (axial) or hip (coronal)."),
    "subjects": Param("int", default=4, minimum=1, maximum=10000, help="Number of subjects in the cohort."),
    "seed": Param("int", default=0, minimum=0, help="Cohort seed; the same seed gives the same subjects and splits."),
    "snr": Param("float", default=40.0, minimum=1.0,
                 help="SNR (mean labelled signal / noise sigma) at 3 T and the anatomy's reference voxel."),
    "noise": Param("bool", default=True, help="Add Rician noise (false gives noiseless images)."),
    "bias": Param("float", default=0.2, minimum=0.0, maximum=1.0,
                  help="Typical relative swing of the smooth bias field at 3 T (0 disables it)."),
    "pixel_spacing_min": Param("float", default=None, minimum=0.1, maximum=5.0,
                               help="Smallest in-plane pixel spacing in mm (default: the anatomy's range)."),
    "pixel_spacing_max": Param("float", default=None, minimum=0.1, maximum=5.0,
                               help="Largest in-plane pixel spacing in mm (default: the anatomy's range)."),
    "cartilage_thickness_min": Param("float", default=1.5, minimum=0.5, maximum=6.0,
                                     help="Smallest cartilage thickness in mm."),
    "cartilage_thickness_max": Param("float", default=3.5, minimum=0.5, maximum=6.0,
                                     help="Largest cartilage thickness in mm."),
    "supersample": Param("int", default=2, minimum=1, maximum=4,
                         help="Sub-samples per axis for partial volume at tissue boundaries (1 disables it)."),
}


def _range(low, high, default, name: str) -> tuple[float, float] | None:
    if low is None and high is None:
        return default
    if low is None or high is None:
        raise PluginError(f"datasets.params: give both {name}_min and {name}_max, or neither")
    if low > high:
        raise PluginError(f"datasets.params.{name}_min: {low} is above {name}_max {high}; swap them")
    return (float(low), float(high))


class PhantomDataset:
    """Streams phantom subjects of one anatomy; satisfies :class:`mskbench.protocols.Dataset`."""

    def __init__(
        self,
        anatomy: str = "knee",
        subjects: int = 4,
        seed: int = 0,
        snr: float = 40.0,
        noise: bool = True,
        bias: float = 0.2,
        pixel_spacing_min: float | None = None,
        pixel_spacing_max: float | None = None,
        cartilage_thickness_min: float = 1.5,
        cartilage_thickness_max: float = 3.5,
        supersample: int = 2,
    ):
        from mskbench.phantom import cohort, generate

        if anatomy not in ANATOMIES:
            raise PluginError(f"datasets.params.anatomy: {anatomy!r} is not one of {', '.join(ANATOMIES)}")
        self.anatomy = anatomy
        self.seed = seed
        self.options = generate.PhantomOptions(
            snr=snr,
            noise=noise,
            bias=bias,
            pixel_spacing=_range(pixel_spacing_min, pixel_spacing_max, None, "pixel_spacing"),
            cartilage_thickness=_range(cartilage_thickness_min, cartilage_thickness_max, (1.5, 3.5),
                                       "cartilage_thickness"),
            supersample=supersample,
        )
        self.label_map: dict[int, LabelInfo] = generate.label_map(anatomy)
        self.slice_axis: SliceAxis = generate.slice_axis(anatomy)  # type: ignore[assignment]
        self._ids = cohort.subject_ids(anatomy, subjects)
        self._index = {sid: i for i, sid in enumerate(self._ids)}
        self._splits = cohort.cohort_splits(anatomy, subjects, seed)

    def subject_ids(self, split: str | None = None) -> list[str]:
        if split is None or split == "all":
            return list(self._ids)
        if split not in SPLITS:
            raise DataError(f"phantom: unknown split {split!r}; use one of {', '.join(SPLITS)} or 'all'")
        return [sid for sid in self._ids if self._splits[sid] == split]

    def load(self, subject_id: str) -> Subject:
        from mskbench.phantom.generate import generate_subject

        if subject_id not in self._index:
            raise DataError(f"phantom {self.anatomy}: no subject {subject_id!r}; ids run from "
                            f"{self._ids[0]} to {self._ids[-1]}")
        subject = generate_subject(self.anatomy, self.seed, self._index[subject_id], self.options)
        subject.split = self._splits[subject_id]
        return subject


def register_plugin(register) -> None:
    """Called by the datasets hook implementation in ``plugins/datasets/__init__.py``."""
    register(
        name="phantom",
        factory=PhantomDataset,
        description="Synthetic MSK MRI (knee, lumbar spine, thigh, hip) with analytic biomarker truth.",
        params=PARAMS,
    )

"""Which labels each biomarker measures, and which biomarkers each anatomy gets.

Suites choose labels by name or tissue class (``[biomarkers]`` table); when a
suite has no such table the runner uses :func:`default_biomarkers` for the
dataset's anatomy. Each entry of that mapping has the same shape as a suite
entry: ``{"tissues": [...]}`` and/or ``{"labels": [...]}``, optional
``"params"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mskbench.errors import PluginError
from mskbench.params import suggest
from mskbench.types import LabelInfo, TissueClass

BIOMARKER_PLUGINS = ("cartilage_thickness", "tissue_volume", "disc_height", "relaxometry")

# Tissue classes a biomarker measures when a suite names it without labels.
DEFAULT_TISSUES: dict[str, tuple[str, ...]] = {
    "cartilage_thickness": ("cartilage",),
    "tissue_volume": tuple(t.value for t in TissueClass if t is not TissueClass.OTHER),
    "disc_height": ("disc",),
    "relaxometry": ("cartilage",),
}

_ANATOMY_DEFAULTS: dict[str, dict[str, dict]] = {
    # Relaxometry yields values only for subjects that carry a T2/T1rho map.
    "knee": {
        "cartilage_thickness": {"tissues": ["cartilage"]},
        "relaxometry": {"tissues": ["cartilage"]},
        "tissue_volume": {"tissues": ["bone"]},
    },
    "spine": {
        "disc_height": {"tissues": ["disc"]},
        "tissue_volume": {"tissues": ["muscle"]},
    },
    "thigh": {"tissue_volume": {"tissues": ["muscle", "fat", "bone"]}},
    "hip": {
        "cartilage_thickness": {"tissues": ["cartilage"]},
        "tissue_volume": {"tissues": ["bone"]},
    },
}
ANATOMIES = tuple(_ANATOMY_DEFAULTS)


def default_biomarkers(anatomy: str | None) -> dict[str, dict]:
    """Biomarker plugin name → selection entry for an anatomy; volumes of all
    tissues when the anatomy is unknown (None or not listed)."""
    chosen = _ANATOMY_DEFAULTS.get(anatomy or "")
    if chosen is None:
        return {"tissue_volume": {"tissues": list(DEFAULT_TISSUES["tissue_volume"])}}
    return {name: {key: list(value) for key, value in entry.items()} for name, entry in chosen.items()}


def select_structures(
    label_map: Mapping[int, LabelInfo],
    names: Sequence[str] | None = None,
    tissues: Sequence[str] | None = None,
    *,
    default_for: str | None = None,
) -> list[LabelInfo]:
    """Labels chosen by name or tissue class (their union), in label-id order.

    With neither given, the tissue classes :data:`DEFAULT_TISSUES` lists for
    the biomarker plugin ``default_for``, or every non-background label when
    that is None or not a built-in. A name not in the label map
    or an unknown tissue class is a :class:`PluginError` naming the nearest
    valid one; a valid tissue class no label has simply selects nothing.
    """
    labels = [info for label_id, info in sorted(label_map.items()) if label_id > 0]
    if names is None and tissues is None:
        if default_for not in DEFAULT_TISSUES:
            return labels
        tissues = DEFAULT_TISSUES[default_for]
    known_names = [info.name for info in labels]
    for name in names or ():
        if name not in known_names:
            raise PluginError(
                f"biomarkers: label {name!r} is not in the dataset's label map{suggest(name, known_names)}; "
                f"labels: {', '.join(known_names) or 'none'}"
            )
    classes = [t.value for t in TissueClass]
    for tissue in tissues or ():
        if tissue not in classes:
            raise PluginError(
                f"biomarkers: unknown tissue class {tissue!r}{suggest(str(tissue), classes)}; "
                f"use one of {', '.join(classes)}"
            )
    wanted_names, wanted_tissues = set(names or ()), set(tissues or ())
    return [info for info in labels if info.name in wanted_names or info.tissue in wanted_tissues]

"""What kind of model a factory builds, and which prompters it can be paired with (DESIGN §4).

A model factory declares, as attributes read without building the model:
``kind`` (``"slice"``, the default, or ``"volume"``), ``interactive`` (bool,
default False), ``feedback`` (which of ``logits`` / ``mask`` its refine step
takes back) and ``supported_prompts``. The plan checks every (model,
prompter) pair with :func:`pair_problem` before any subject is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mskbench.protocols import InteractivePrompter

MODEL_KINDS: tuple[str, ...] = ("slice", "volume")


@dataclass(frozen=True)
class ModelKind:
    kind: str = "slice"
    interactive: bool = False
    feedback: frozenset[str] = frozenset()


def declared_kind(factory: Callable[..., Any], where: str) -> ModelKind:
    """The kind a factory declares; an unknown kind is a plugin bug named by ``where``."""
    kind = getattr(factory, "kind", "slice")
    if kind not in MODEL_KINDS:
        from mskbench.errors import PluginError

        raise PluginError(f"{where}: the plugin declares kind {kind!r}; a model is one of {', '.join(MODEL_KINDS)}")
    return ModelKind(kind, bool(getattr(factory, "interactive", False)), frozenset(getattr(factory, "feedback", ())))


def feedback_given(offered: str, takes: frozenset[str]) -> str:
    """What a model gets back each round: ``logits`` offers its own logits, else its previous mask;
    ``mask`` offers only the mask; a model that takes neither gets nothing (as CVPR 2025's optional
    ``prev_pred``), so one prompter can drive SAM (logits) and a mask-refining baseline alike."""
    if offered == "logits" and "logits" in takes:
        return "logits"
    if offered in ("logits", "mask") and "mask" in takes:
        return "mask"
    return "none"


def effective_produces(prompter: Any, kind: ModelKind, per_slice: bool) -> frozenset[str]:
    """The prompt kinds the model will actually receive (box3d becomes per-slice boxes with ``per_slice``)."""
    produces = frozenset(prompter.produces)
    if kind.kind == "slice" and per_slice and "box3d" in produces:
        produces = (produces - {"box3d"}) | {"box"}
    if kind.kind == "volume":
        produces = produces - {"none"}  # an automatic volume model gets no prompt at all
    return produces


def pair_problem(
    model: str, kind: ModelKind, accepts: frozenset[str] | None, per_slice: bool, prompter_name: str, prompter: Any
) -> str | None:
    """Why ``model`` cannot be run with ``prompter``, as one line naming both, or None."""
    head = f"model '{model}' cannot take prompter '{prompter_name}'"
    if isinstance(prompter, InteractivePrompter):
        if not kind.interactive or (accepts is not None and "point" not in accepts):
            what = "takes no point prompts" if kind.interactive else f"is a non-interactive {kind.kind} model"
            return (f"{head}: clicks need an interactive model that takes point prompts, and '{model}' {what}; "
                    f"pair '{prompter_name}' with an interactive model that takes points")
        if kind.kind == "volume" and prompter.space == "slice":
            return f"{head}: a volume model takes clicks placed in the volume; set space = \"volume\" on the prompter"
    if kind.kind == "slice" and "box3d" in prompter.produces and not per_slice:
        return (f"{head}: '{model}' is a slice model and '{prompter_name}' makes box3d prompts; set per_slice = true "
                "on the model to give every slice of the extent the key slice's box")
    if accepts is None:
        return None
    missing = effective_produces(prompter, kind, per_slice) - accepts
    if not missing:
        return None
    return (
        f"{head}: it produces {', '.join(sorted(missing))} prompts but the model supports "
        f"{', '.join(sorted(accepts)) or 'no prompts'}; leave the pair out with the model's `prompters` list or "
        "set only_supported = true on the prompter"
    )


def check_volume_output(array: Any, shape: tuple[int, ...], model: str, what: str = "label volume") -> np.ndarray:
    """A volume model's output, or one PluginError line naming the model when shape or dtype is wrong."""
    from mskbench.errors import PluginError

    array = np.asarray(array)
    if array.shape != tuple(shape):
        raise PluginError(f"model '{model}' returned a {what} of shape {array.shape}; expected {tuple(shape)} (the subject's grid)")
    if not (array.dtype == bool or np.issubdtype(array.dtype, np.integer)):
        raise PluginError(f"model '{model}' returned a {what} of dtype {array.dtype}; expected integer labels or bool")
    return array

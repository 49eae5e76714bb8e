"""Device placement and numeric precision for the torch segmenters (issue 5, item 1).

One place decides what ``device`` and ``precision`` mean so every SAM-family
plugin behaves the same: fp32 on CPU always (CPU autocast changes results and
is slower for these models), and on CUDA the requested precision as
``torch.autocast``, the way the upstream notebooks run SAM 2 in bf16.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch

from mskbench.device import resolve_device
from mskbench.errors import PluginError
from mskbench.segmenters.plugin_params import PRECISIONS

log = logging.getLogger(__name__)

_AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def torch_device(requested: str) -> torch.device:
    """The torch device for a factory's ``device`` argument.

    ``auto`` and an absent CUDA are handled by :func:`mskbench.device.resolve_device`
    (notice / one-line error); a malformed name is a one-line error too.
    """
    name = resolve_device(requested, needs_torch=True)
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise PluginError(f"device {requested!r} is not a torch device; use cpu, cuda, cuda:N or auto") from exc


def effective_precision(device: torch.device, precision: str) -> str:
    """The precision actually used: the request on CUDA, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise PluginError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if device.type != "cuda" and precision != "fp32":
        log.info("precision %s applies on CUDA only; running fp32 on %s", precision, device)
        return "fp32"
    return precision


@contextlib.contextmanager
def inference_context(device: torch.device, precision: str) -> Iterator[None]:
    """``no_grad`` plus, for bf16/fp16 on CUDA, ``torch.autocast`` in that dtype."""
    with torch.no_grad():
        if precision == "fp32":
            yield
            return
        with torch.autocast(device_type=device.type, dtype=_AUTOCAST_DTYPES[precision]):
            yield

"""Device placement and numeric precision for the torch segmenters (issue 5, item 1; issue 12, item 5).

One place decides what ``device`` and ``precision`` mean so every SAM-family
plugin behaves the same: on CUDA the requested precision as
``torch.autocast``, the way the upstream notebooks run SAM 2 in bf16; on any
other device fp32 only. A bf16/fp16 request for a CPU run is refused with one
line rather than silently run in fp32 (a suite that says bf16 would otherwise
publish fp32 numbers under a bf16 config) or applied as CPU autocast (on CPUs
without native bf16 it is emulated and slower than fp32, and its rounding is
not that of a GPU's bf16 kernels either, so it would reproduce nothing).
The precision a model ran in is what ``describe()`` records in the manifest.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from mskbench.device import resolve_device
from mskbench.errors import PluginError
from mskbench.segmenters.plugin_params import PRECISIONS

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


def effective_precision(device: torch.device, precision: str, model: str = "this model") -> str:
    """The precision the model runs in: the request, which must be fp32 off CUDA (else one line)."""
    if precision not in PRECISIONS:
        raise PluginError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if device.type != "cuda" and precision != "fp32":
        raise PluginError(
            f"{model}: precision = \"{precision}\" runs on CUDA only (as torch.autocast) and this run is on "
            f"{device}; set precision = \"fp32\" for a {device.type.upper()} run, or run with --device cuda"
        )
    return precision


def check_precision(device: str, precision: str, model: str) -> None:
    """:func:`effective_precision` before a model is built, so a refused request costs no weight loading."""
    effective_precision(torch_device(device), precision, model)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``; on CUDA copied from pinned memory without blocking the host thread
    (ordered on the current stream, so whatever runs next on it sees the data)."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


@contextlib.contextmanager
def inference_context(device: torch.device, precision: str) -> Iterator[None]:
    """``no_grad`` plus, for bf16/fp16 on CUDA, ``torch.autocast`` in that dtype."""
    with torch.no_grad():
        if precision == "fp32":
            yield
            return
        with torch.autocast(device_type=device.type, dtype=_AUTOCAST_DTYPES[precision]):
            yield

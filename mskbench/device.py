"""Choose the torch device for a run without importing torch when no model needs it."""

from __future__ import annotations

import importlib.util
import logging

from mskbench.errors import UserError

log = logging.getLogger(__name__)


def resolve_device(requested: str, needs_torch: bool) -> str:
    """``auto`` -> cuda when available, else cpu with a notice; ``cuda`` must exist."""
    if not needs_torch:
        if requested.startswith("cuda"):
            log.warning("no model in this suite uses torch; --device %s has no effect", requested)
        return "cpu"
    if importlib.util.find_spec("torch") is None:
        raise UserError("a model in this suite needs torch; install it with `pip install 'mskbench[models]'`")
    import torch

    available = torch.cuda.is_available()
    if requested == "auto":
        if not available:
            log.warning("no CUDA device found; running on CPU")
        return "cuda" if available else "cpu"
    if requested.startswith("cuda") and not available:
        raise UserError(f"--device {requested}: CUDA is not available on this machine; use --device cpu or auto")
    return requested

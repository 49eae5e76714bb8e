"""Peak GPU memory of one model's work, for the `timings` table (NULL off CUDA).

torch's caching allocator keeps the high-water mark of allocated bytes per
device; resetting it before a unit and reading it after gives that model's
peak on that subject, whatever ran on the device before.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from mskbench.execution.encode_pipeline import model_device_type


class PeakGpuMemory:
    """``with PeakGpuMemory(model) as peak: ...`` then ``peak.mb``: MiB allocated at most, or None off CUDA."""

    def __init__(self, model: Any):
        self.device = getattr(model, "device", None) if model_device_type(model) == "cuda" else None
        self.mb: float | None = None

    def __enter__(self) -> PeakGpuMemory:
        if self.device is not None:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self.device is not None and kind is None:
            import torch

            torch.cuda.synchronize(self.device)
            self.mb = torch.cuda.max_memory_allocated(self.device) / 2**20

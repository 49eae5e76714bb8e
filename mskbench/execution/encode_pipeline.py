"""Encode the next batches of slices while the current one is decoded: the GPU encoder never waits for the CPU.

A slice model's encoder dominates its cost on a GPU, while decoding,
pasting masks and interactive rounds are mostly CPU work. With
``ahead = n > 0`` one background thread encodes up to ``n`` batches beyond
the one being consumed (a bounded queue of futures, so host memory holds at
most ``n + 1`` batches of embeddings); on CUDA that thread issues its work
on its own stream, so the encoder's kernels overlap with the decoder's on
the default stream and with the CPU work of the main thread (torch releases
the GIL in its kernels and copies). ``ahead = 0`` encodes in the calling
thread, in order: the same :func:`encoded_batches` generator serves both, so
a test on CPU can show that the pipeline changes no value.

Only a model that declares ``concurrent_encode = True`` is pipelined: its
``encode`` must share no mutable state with ``decode``/``refine`` (the
SAM-family segmenters encode through a predictor of their own). Any other
model, a third-party plugin included, is encoded in the calling thread.

Written by hand: torch's ``DataLoader`` prefetches CPU-side samples in
worker processes, it cannot run a GPU encoder ahead in the owning process.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

#: batches encoded ahead, per device type, for models that allow it; other device types: 0 (no thread).
ENCODE_AHEAD: dict[str, int] = {"cuda": 2}


@dataclass(frozen=True)
class EncodedBatch:
    """The slice indices of one batch, their embeddings in that order, and the encoder's seconds per slice."""

    indices: list[int]
    embeddings: list[Any]
    seconds_per_slice: float


def model_device_type(model: Any) -> str:
    """``cuda``, ``cpu``, ... of a model's ``device`` attribute (torch device or string); ``cpu`` without one."""
    device = getattr(model, "device", None)
    return str(getattr(device, "type", device or "cpu")).split(":")[0]


def encode_ahead(model: Any) -> int:
    """How many batches to encode ahead for ``model``: :data:`ENCODE_AHEAD` of its device, 0 unless it allows it."""
    if not getattr(model, "concurrent_encode", False):
        return 0
    return ENCODE_AHEAD.get(model_device_type(model), 0)


def _encoder_stream(model: Any) -> Callable[[], contextlib.AbstractContextManager]:
    """A context that puts the calling thread's CUDA work on a side stream; a no-op off CUDA."""
    if model_device_type(model) != "cuda":
        return contextlib.nullcontext
    import torch

    stream = torch.cuda.Stream(device=model.device)

    @contextlib.contextmanager
    def on_stream():
        with torch.cuda.stream(stream):
            yield
        stream.synchronize()  # embeddings left on the device are complete before another stream reads them

    return on_stream


def _encode_one(model: Any, batch: list[int], images: Sequence[np.ndarray], check: Callable[[list, int], list],
                on_stream: Callable[[], contextlib.AbstractContextManager]) -> EncodedBatch:
    began = time.perf_counter()
    with on_stream():
        embeddings = check(model.encode(images), len(batch))
    return EncodedBatch(batch, embeddings, (time.perf_counter() - began) / len(batch))


def encoded_batches(
    model: Any, batches: Sequence[list[int]], images_of: Callable[[list[int]], list[np.ndarray]],
    check: Callable[[list, int], list], ahead: int,
) -> Iterator[EncodedBatch]:
    """Each batch's embeddings, in order; ``ahead`` > 0 encodes that many batches ahead on a background thread.

    ``images_of`` gives a batch's slices (taken in the calling thread, so the
    thread sees only its own copies); ``check`` validates what ``encode``
    returned (:func:`mskbench.model_output.check_embeddings`). An error in
    the encoder is raised here, at the batch it belongs to; leaving the loop
    early cancels what was not started and waits for the batch in flight.
    """
    if ahead <= 0:
        for batch in batches:
            yield _encode_one(model, batch, images_of(batch), check, contextlib.nullcontext)
        return
    on_stream = _encoder_stream(model)
    pending: deque[Future[EncodedBatch]] = deque()
    todo = iter(batches)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mskbench-encode") as pool:
        try:
            while True:
                while len(pending) <= ahead and (batch := next(todo, None)) is not None:
                    pending.append(pool.submit(_encode_one, model, batch, images_of(batch), check, on_stream))
                if not pending:
                    return
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

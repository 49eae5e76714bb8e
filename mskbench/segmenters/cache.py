"""On-disk cache of image embeddings, so a re-run with new prompters re-uses the encoder's work.

The image encoder dominates a promptable model's cost; its output depends only
on (model, checkpoint, preprocessing, slice pixels). Entries are keyed by
exactly those, so a changed checkpoint or preprocessing can never serve a
stale embedding (the SAMRI embedding-bank idea, done safely).

Each entry is one file: a magic line, the sha256 of the payload, then the
payload written by ``torch.save`` and read back with ``weights_only=True``
(nothing in the cache can execute code). A truncated or corrupted file fails
the checksum, is deleted and recomputed. Writes go to a temporary file in the
same folder and are renamed into place, so a killed run never leaves a
half-written entry under a valid name. The folder is size-bounded: when it
grows past ``max_bytes`` the least recently used entries (by access, recorded
as the file's mtime so the order survives between runs) are removed.

Written by hand because no maintained library offers a checksummed,
size-bounded, weights-only tensor cache; ``diskcache`` pickles values.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.errors import UserError
from mskbench.types import Prompt

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_MAGIC = b"mskbench-embedding-v1\n"
_SUFFIX = ".emb"
_NDARRAY = "__mskbench_ndarray__"
_DEVICE_TENSOR = "__mskbench_device_tensor__"
_STALE_TMP_SECONDS = 3600


def image_content_hash(image: np.ndarray) -> str:
    """sha256 over dtype, shape and pixels: equal only for identical slices."""
    array = np.ascontiguousarray(image)
    digest = hashlib.sha256(f"{array.dtype.str}|{array.shape}|".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def cache_key_prefix(model_id: str, checkpoint_sha256: str | None, preprocessing_id: str) -> str:
    """The part of the key shared by every slice one configured model encodes."""
    ident = json.dumps([FORMAT_VERSION, model_id, checkpoint_sha256, preprocessing_id])
    return hashlib.sha256(ident.encode()).hexdigest()[:32]


def segmenter_key_prefix(plugin: str, segmenter: Any) -> str:
    """The key prefix of a configured segmenter, from its manifest entry (``describe()``).

    Everything the manifest says shapes the embeddings (architecture, variant,
    checkpoint sha256, precision, device, preprocessing, params); only the
    checkpoint *path* is left out, so moving a file keeps its embeddings.
    """
    manifest = {k: v for k, v in segmenter.describe().items() if k not in ("checkpoint", "embedding_cache")}
    preprocessing = json.dumps(manifest, sort_keys=True, default=str)
    return cache_key_prefix(plugin, manifest.get("checkpoint_sha256"), preprocessing)


def _to_storable(value: Any) -> Any:
    """Arrays to tensors (weights_only loading refuses numpy objects); GPU tensors to CPU plus their device."""
    import torch

    if isinstance(value, torch.Tensor):
        # clone: torch.save writes a view's whole storage, e.g. the entire batch it was sliced from
        compact = value.detach().cpu().clone()
        return compact if value.device.type == "cpu" else {_DEVICE_TENSOR: compact, "device": str(value.device)}
    if isinstance(value, np.ndarray | np.generic):
        return {_NDARRAY: torch.from_numpy(np.array(value)), "scalar": isinstance(value, np.generic)}
    if isinstance(value, dict):
        return {key: _to_storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_storable(item) for item in value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"cannot cache a {type(value).__name__} in an embedding; use tensors, arrays and scalars")


def _on_device(tensor: Any, device: str) -> Any:
    """Back onto the device it was encoded on; CPU when that device is absent here."""
    try:
        return tensor.to(device)
    except (RuntimeError, AssertionError):  # e.g. an entry written on a GPU machine, read on CPU
        log.debug("device %s unavailable; embedding tensor stays on CPU", device)
        return tensor


def _from_storable(value: Any) -> Any:
    if isinstance(value, dict):
        if _DEVICE_TENSOR in value:
            return _on_device(value[_DEVICE_TENSOR], value["device"])
        if _NDARRAY in value:
            array = value[_NDARRAY].cpu().numpy()
            return array[()] if value.get("scalar") else array
        return {key: _from_storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_from_storable(item) for item in value)
    return value


class EmbeddingCache:
    """Size-bounded folder of checksummed embeddings, least recently used evicted first.

    One process should write a folder at a time; entries other processes add
    are picked up when seen. ``hits``, ``misses``, ``corrupted`` and
    ``evictions`` count what happened since opening.
    """

    def __init__(self, directory: Path, max_bytes: int):
        if max_bytes <= 0:
            raise UserError(f"embedding cache size must be positive, got {max_bytes} bytes; fix embedding_cache_max_gb")
        self.directory = Path(directory).expanduser()
        self.max_bytes = int(max_bytes)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(
                f"cannot create embedding cache folder {self.directory} ({exc.strerror}); choose a writable "
                "[output] embedding_cache"
            ) from exc
        self.hits = self.misses = self.corrupted = self.evictions = 0
        self._entries: OrderedDict[Path, int] = OrderedDict()
        self._total = 0
        self._scan()

    # --- bookkeeping ----------------------------------------------------------------------------

    def _scan(self) -> None:
        """Index existing entries oldest-access first; drop temp files of killed writers."""
        found = []
        now = time.time()
        for path in self.directory.glob("*/*"):
            try:
                stat = path.stat()
            except OSError:
                continue
            if path.suffix == _SUFFIX:
                found.append((stat.st_mtime_ns, path, stat.st_size))
            elif path.suffix == ".tmp" and now - stat.st_mtime > _STALE_TMP_SECONDS:
                path.unlink(missing_ok=True)
        for _, path, size in sorted(found):
            self._entries[path] = size
            self._total += size

    @property
    def total_bytes(self) -> int:
        return self._total

    def __len__(self) -> int:
        return len(self._entries)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}{_SUFFIX}"

    def _forget(self, path: Path) -> None:
        self._total -= self._entries.pop(path, 0)
        path.unlink(missing_ok=True)

    def _evict(self) -> None:
        while self._total > self.max_bytes and self._entries:
            oldest = next(iter(self._entries))
            self._forget(oldest)
            self.evictions += 1

    # --- public API -----------------------------------------------------------------------------

    def key(self, key_prefix: str, image: np.ndarray) -> str:
        """Entry key of one slice for one configured model (see :func:`cache_key_prefix`)."""
        return hashlib.sha256(f"{key_prefix}|{image_content_hash(image)}".encode()).hexdigest()

    def get(self, key: str) -> Any | None:
        """The cached embedding as it was stored, or None on a miss or a corrupted entry (deleted)."""
        import torch

        path = self._path(key)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            self.misses += 1
            self._forget(path)
            return None
        header_end = len(_MAGIC) + 65
        payload = blob[header_end:]
        digest = blob[len(_MAGIC) : header_end - 1].decode("ascii", "replace")
        if not blob.startswith(_MAGIC) or hashlib.sha256(payload).hexdigest() != digest:
            return self._corrupt(path, "checksum mismatch")
        try:
            stored = torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
        except Exception as exc:  # a payload that passes the checksum but not torch: written by something else
            return self._corrupt(path, f"{type(exc).__name__}: {exc}")
        self.hits += 1
        os.utime(path)  # mtime records the last access: the LRU order survives restarts
        if path not in self._entries:
            self._total += len(blob)
        self._entries[path] = len(blob)
        self._entries.move_to_end(path)
        return _from_storable(stored)

    def _corrupt(self, path: Path, why: str) -> None:
        log.warning("embedding cache entry %s is corrupted (%s); recomputing it", path.name, why)
        self.corrupted += 1
        self.misses += 1
        self._forget(path)
        return None

    def put(self, key: str, embedding: Any) -> None:
        """Store an embedding atomically, then evict the least recently used entries over the bound."""
        import torch

        buffer = io.BytesIO()
        torch.save(_to_storable(embedding), buffer)
        payload = buffer.getvalue()
        blob = _MAGIC + hashlib.sha256(payload).hexdigest().encode("ascii") + b"\n" + payload
        if len(blob) > self.max_bytes:
            log.warning("embedding of %d bytes exceeds the cache bound of %d bytes; not cached", len(blob), self.max_bytes)
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            handle.write(blob)
        os.replace(handle.name, path)
        self._total += len(blob) - self._entries.pop(path, 0)
        self._entries[path] = len(blob)
        self._evict()


class CachedSegmenter:
    """A Segmenter whose ``encode`` goes through an :class:`EmbeddingCache`.

    Misses of one batch are encoded together in one call to the wrapped
    model; an embedding read back equals the one ``encode`` returned (same
    types, dtypes and devices). Everything else is delegated.
    """

    def __init__(self, segmenter: Any, cache: EmbeddingCache, key_prefix: str):
        self.segmenter = segmenter
        self.cache = cache
        self.key_prefix = key_prefix
        self._uncacheable_logged = False

    @property
    def supported_prompts(self) -> frozenset[str]:
        return self.segmenter.supported_prompts

    def encode(self, images: Sequence[np.ndarray]) -> list[Any]:
        keys = [self.cache.key(self.key_prefix, image) for image in images]
        embeddings: list[Any] = [self.cache.get(key) for key in keys]
        todo = [i for i, embedding in enumerate(embeddings) if embedding is None]
        if todo:
            fresh = self.segmenter.encode([images[i] for i in todo])
            for i, embedding in zip(todo, fresh, strict=True):
                embeddings[i] = embedding
                self._store(keys[i], embedding)
        return embeddings

    def _store(self, key: str, embedding: Any) -> None:
        try:
            self.cache.put(key, embedding)
        except TypeError as exc:  # a plugin's embedding the cache cannot hold: run uncached
            if not self._uncacheable_logged:
                log.warning("not caching embeddings of %s: %s", type(self.segmenter).__name__, exc)
                self._uncacheable_logged = True

    def decode(self, embedding: Any, prompts: Sequence[Prompt]) -> np.ndarray:
        return self.segmenter.decode(embedding, prompts)

    def __getattr__(self, name: str) -> Any:
        """Capabilities of the wrapped model (an interactive model's ``refine`` and ``feedback``)."""
        if name == "segmenter":
            raise AttributeError(name)
        return getattr(self.segmenter, name)

    def describe(self) -> dict[str, Any]:
        return {**self.segmenter.describe(), "embedding_cache": str(self.cache.directory)}

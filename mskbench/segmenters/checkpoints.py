"""The official model checkpoints: where mskbench looks for them, how it verifies and loads them (DESIGN §6).

Checkpoints are files the user provides; mskbench never downloads behind the
user's back. Each official file is listed in ``checkpoints.json`` with its URL,
sha256 and size. A file is looked up by name in ``$MSKBENCH_CHECKPOINTS``
(default ``~/.cache/mskbench/checkpoints``) unless the suite gives
``checkpoint = "PATH"``. Extra entries (a lab's fine-tune, a mirror) can be
added without touching the package through ``$MSKBENCH_CHECKPOINT_REGISTRY``,
a JSON file (or an ``os.pathsep``-separated list) in the same format.

Verification rule: a file carrying the official file name is verified against
the official sha256; a file with another name (e.g. ``checkpoint =
"my_finetune.pth"``) is the user's own weights, so its hash is recorded but
there is no official one to compare with (status ``unknown_hash``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mskbench.errors import CheckpointError
from mskbench.params import suggest

log = logging.getLogger(__name__)

CHECKPOINTS_ENV = "MSKBENCH_CHECKPOINTS"
REGISTRY_ENV = "MSKBENCH_CHECKPOINT_REGISTRY"
DEFAULT_CHECKPOINT_DIR = "~/.cache/mskbench/checkpoints"
STATUSES = ("found", "missing", "hash_mismatch", "unknown_hash")
HASH_CACHE_NAME = ".sha256-cache.json"

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: how files torch.save writes begin: a pickle's PROTO opcode (legacy format) or a zip archive
_PICKLE_OR_ZIP = (b"\x80", b"PK\x03\x04")
_REQUIRED_FIELDS = ("filename", "url", "plugin")


@dataclass(frozen=True)
class CheckpointSpec:
    """One checkpoint file: what it is, where it comes from, how to check it.

    ``arch`` is the architecture the file belongs to (``vit_b`` for SAM, the
    sam2 config name for SAM2). ``direct_download`` is False where the
    publisher offers no stable file URL (MedSAM's Google Drive folder);
    ``url`` is then the page to fetch it from by hand.
    """

    key: str
    filename: str
    url: str
    plugin: str
    arch: str = ""
    obtain: str = ""
    sha256: str | None = None
    sha256_source: str | None = None
    size: int | None = None
    direct_download: bool = True
    origin: str = "builtin"


def checkpoint_dir() -> Path:
    """The folder where checkpoints are looked up by file name."""
    return Path(os.environ.get(CHECKPOINTS_ENV) or DEFAULT_CHECKPOINT_DIR).expanduser()


def _spec_from_entry(key: str, entry: Any, origin: str) -> CheckpointSpec:
    where = f"{origin}: entry '{key}'"
    if not isinstance(entry, Mapping):
        raise CheckpointError(f"{where} must be a JSON object with filename, url, plugin")
    missing = [name for name in _REQUIRED_FIELDS if not entry.get(name)]
    if missing:
        raise CheckpointError(f"{where} lacks {', '.join(missing)}; add them to the registry file")
    known = set(CheckpointSpec.__dataclass_fields__) - {"key", "origin"}
    unknown = [name for name in entry if name not in known]
    if unknown:
        raise CheckpointError(f"{where}: unknown field '{unknown[0]}'{suggest(unknown[0], sorted(known))}")
    sha256 = entry.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and _SHA256.match(sha256.lower())):
        raise CheckpointError(f"{where}: sha256 must be 64 hex digits or null, got {sha256!r}")
    size = entry.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise CheckpointError(f"{where}: size must be a byte count or null, got {size!r}")
    fields = {name: entry[name] for name in entry}
    if sha256 is not None:
        fields["sha256"] = sha256.lower()
    return CheckpointSpec(key=key, origin=origin, **fields)


def _read_registry_file(text: str, origin: str) -> dict[str, CheckpointSpec]:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno}); fix the file") from exc
    if not isinstance(raw, Mapping):
        raise CheckpointError(f"{origin}: must be a JSON object mapping names to checkpoint entries")
    return {key: _spec_from_entry(key, entry, origin) for key, entry in raw.items()}


def load_registry() -> dict[str, CheckpointSpec]:
    """The built-in checkpoint list, with ``$MSKBENCH_CHECKPOINT_REGISTRY`` entries on top."""
    text = resources.files("mskbench.segmenters").joinpath("checkpoints.json").read_text(encoding="utf-8")
    specs = _read_registry_file(text, "builtin")
    for name in filter(None, os.environ.get(REGISTRY_ENV, "").split(os.pathsep)):
        path = Path(name).expanduser()
        try:
            extra_text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CheckpointError(
                f"{REGISTRY_ENV}: cannot read {path} ({exc.strerror}); fix or unset the variable"
            ) from exc
        specs.update(_read_registry_file(extra_text, str(path)))
    return specs


def get_spec(key: str) -> CheckpointSpec:
    """The registry entry for ``key``; an unknown key names the valid ones."""
    specs = load_registry()
    if key not in specs:
        raise CheckpointError(
            f"unknown checkpoint '{key}'{suggest(key, list(specs))}; known: {', '.join(specs)} "
            "(see `mskbench models`)"
        )
    return specs[key]


def _how_to_obtain(spec: CheckpointSpec, folder: Path) -> str:
    put = f"put it in {folder} (or set {CHECKPOINTS_ENV}, or `checkpoint = \"PATH\"` in the suite)"
    if spec.direct_download:
        return f"download it from {spec.url} and {put}, or run `mskbench models fetch {spec.key}`"
    return f"download it by hand from {spec.url} and {put}"


def resolve_checkpoint(key: str, explicit_path: str | None) -> Path:
    """The checkpoint file to load: the suite's explicit path, else the registry name in checkpoint_dir().

    With an explicit path ``key`` may be a name the registry does not know
    (a plugin for user-supplied weights); without one it must be registered.
    """
    if explicit_path is not None:
        path = Path(explicit_path).expanduser()
        problem = file_problem(path)
        if problem is not None:
            raise CheckpointError(
                f"checkpoint {path} (given for '{key}') {problem}; fix `checkpoint = \"...\"` in the suite"
            )
        return path
    spec = get_spec(key)
    folder = checkpoint_dir()
    path = folder / spec.filename
    if path.is_dir():
        raise CheckpointError(
            f"checkpoint {path} for '{key}' is a directory, not a file; remove it and {_how_to_obtain(spec, folder)}"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {spec.filename} for '{key}' not found in {folder}; {_how_to_obtain(spec, folder)}")
    return path  # its content is judged by the official sha256 (preflight) or when it is loaded


def expected_sha256(key: str, path: Path) -> str | None:
    """The official hash ``path`` must have, or None when there is none to hold it to.

    Only a file carrying the official file name claims to be the official
    file; anything else is the user's own weights (see the module docstring).
    """
    spec = load_registry().get(key)
    if spec is None or spec.sha256 is None or Path(path).name != spec.filename:
        return None
    return spec.sha256


def checkpoint_status(key: str, explicit_path: str | None = None) -> tuple[str, Path]:
    """(status, path) with status one of found, missing, hash_mismatch, unknown_hash."""
    if explicit_path is not None:
        path = Path(explicit_path).expanduser()
    else:
        path = checkpoint_dir() / get_spec(key).filename
    if not path.is_file():
        return "missing", path
    expected = expected_sha256(key, path)
    if expected is None:
        return "unknown_hash", path
    return ("found" if sha256_file(path) == expected else "hash_mismatch"), path


# --- sha256 with a persistent cache -------------------------------------------------------------
# Hashing a 2.5 GB checkpoint takes seconds; `mskbench models` and every run would
# pay it again. The cache is keyed by (resolved path, size, mtime_ns), so a file
# that is replaced or modified is hashed anew.

_memory_hashes: dict[tuple[str, int, int], str] = {}


def _hash_cache_path() -> Path:
    return checkpoint_dir() / HASH_CACHE_NAME


def _file_identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _read_hash_cache() -> dict[str, Any]:
    try:
        data = json.loads(_hash_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _store_hash(identity: tuple[str, int, int], digest: str) -> None:
    _memory_hashes[identity] = digest
    cache = _read_hash_cache()
    cache[identity[0]] = {"size": identity[1], "mtime_ns": identity[2], "sha256": digest}
    target = _hash_cache_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=target.parent, delete=False, suffix=".tmp") as handle:
            json.dump(cache, handle, indent=1, sort_keys=True)
        os.replace(handle.name, target)
    except OSError as exc:  # a read-only checkpoint folder only costs re-hashing later
        log.debug("cannot write sha256 cache %s: %s", target, exc)


def sha256_uncached(path: Path, chunk_size: int = 1 << 22) -> str:
    """Hex sha256 of a file read in chunks, bypassing the cache (for files about to move)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file, read in chunks, remembered by (path, size, mtime)."""
    path = Path(path)
    identity = _file_identity(path)
    if identity in _memory_hashes:
        return _memory_hashes[identity]
    entry = _read_hash_cache().get(identity[0])
    if isinstance(entry, dict) and entry.get("size") == identity[1] and entry.get("mtime_ns") == identity[2]:
        digest = entry.get("sha256")
        if isinstance(digest, str) and _SHA256.match(digest):
            _memory_hashes[identity] = digest
            return digest
    digest = sha256_uncached(path)
    _store_hash(identity, digest)
    return digest


def remember_sha256(path: Path, digest: str) -> None:
    """Record a hash computed elsewhere (e.g. while downloading) so it is not recomputed."""
    _store_hash(_file_identity(Path(path)), digest)


# --- loading ------------------------------------------------------------------------------------


_WEIGHTS_ONLY_MARKER = "WeightsUnpickler error:"
_REFUSED_GLOBAL = re.compile(r"GLOBAL ([\w.]+) was not an allowed global")
_OFFICIAL = "use the official checkpoint file"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0]
    return f"{type(exc).__name__}: {line if len(line) <= 160 else line[:159] + '…'}"


def _weights_only_reason(exc: BaseException) -> str:
    """What torch's weights-only unpickler refused, as a whole clause ('it refers to os.system'), or ''.

    torch's message runs over many lines and tells the reader how to load the
    file unsafely; none of it is shown, only the refused global when there is one.
    """
    match = _REFUSED_GLOBAL.search(str(exc))
    return f"it refers to {match.group(1)}" if match else ""


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a file ``torch.save`` wrote, judged from its first bytes; None if it may be.

    Cheap enough for ``validate``: nothing is unpickled. torch itself would
    read a text file as pickle opcodes and fail with a message about them.
    """
    if path.is_dir():
        return "is a directory, not a file"
    if not path.is_file():
        return "does not exist"
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not head:
        return "is an empty file"
    if not head.startswith(_PICKLE_OR_ZIP):
        return "is not a PyTorch checkpoint (it does not begin as files torch.save writes do)"
    return None


def _numpy_scalar_globals() -> list[Any]:
    """What pickling a numpy number refers to: the scalar constructor and the numeric dtypes.

    They rebuild a number from its dtype and raw bytes and can call nothing
    else; nnU-Net checkpoints hold such numbers in their training log.
    """
    import numpy as np

    codes = np.typecodes["AllInteger"] + np.typecodes["AllFloat"] + "?"
    return [np._core.multiarray.scalar, np.dtype, *{type(np.dtype(code)) for code in codes}]


def load_tensor_file(
    path: Path, *, what: str = "checkpoint", remedy: str = _OFFICIAL, numpy_scalars: bool = False
) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, every failure one :class:`CheckpointError` line.

    This is the only way mskbench reads a weights file: torch's weights-only
    unpickler builds tensors, containers and numbers and refuses any other
    global before it is called, so no file can run code (DESIGN §6). ``what``
    names the file in the message ("checkpoint", "detector weights") and
    ``remedy`` is the fix offered. ``numpy_scalars`` also admits numpy numbers
    (:func:`_numpy_scalar_globals`), still nothing that runs code.
    """
    import pickle
    import warnings

    import torch

    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        raise CheckpointError(f"{what} {path} {problem}; {remedy}")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": torch's, not the user's to act on
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals(_numpy_scalar_globals() if numpy_scalars else []):
                return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        if _WEIGHTS_ONLY_MARKER not in str(exc):
            raise CheckpointError(f"{what} {path} is not a PyTorch checkpoint ({_first_line(exc)}); {remedy}") from None
        reason = _weights_only_reason(exc)
        raise CheckpointError(
            f"{what} {path} contains Python objects that mskbench will not load (only tensors are accepted"
            f"{'; ' + reason if reason else ''}); {remedy}"
        ) from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, KeyError... for non-checkpoints
        raise CheckpointError(f"{what} {path} is not a PyTorch checkpoint ({_first_line(exc)}); {remedy}") from None


def load_checkpoint_state(path: Path, expected_sha256: str | None) -> dict[str, Any]:
    """The state dict in a checkpoint, loaded with ``torch.load(weights_only=True)`` on CPU.

    SAM2-style files nest it as ``{"model": state_dict}``; that level is
    removed. A hash mismatch, a file torch cannot read, or a pickle with
    Python objects beyond tensors is one :class:`CheckpointError`.
    """
    import torch

    path = Path(path)
    problem = file_problem(path)
    if problem is not None:
        raise CheckpointError(f"checkpoint {path} {problem}; {_OFFICIAL}")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise CheckpointError(
                f"checkpoint {path} has sha256 {actual[:16]}…, expected {expected_sha256[:16]}… (the official file); "
                "it is truncated, corrupt or a different file: delete it and download it again"
            )
    state = load_tensor_file(path)
    for wrapper in ("model", "state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
            break
    if not isinstance(state, Mapping) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"checkpoint {path} holds no state dict of tensors; {_OFFICIAL}")
    return dict(state)


def check_state_fits(own: Mapping[str, Any], state: Mapping[str, Any], *, path: Path, arch: str) -> None:
    """One line when ``state`` does not have exactly ``own``'s keys and shapes (tensors, or meta tensors).

    torch's own error lists every key over many lines; a user who passed the
    vit_l file to a vit_b model needs to read that in one line instead, with
    the first missing, unexpected and wrong-shape key named.
    """
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong_shape = [k for k in state if k in own and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    if missing or unexpected or wrong_shape:
        firsts = "; ".join(
            f"first {what} '{keys[0]}'"
            for what, keys in (("wrong-shape", wrong_shape), ("missing", missing), ("unexpected", unexpected)) if keys
        )
        raise CheckpointError(
            f"checkpoint {path} does not fit the {arch} architecture ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(wrong_shape)} wrong-shape tensors; {firsts}); "
            f"use the checkpoint made for {arch}"
        )


def apply_state_dict(module: Any, state: Mapping[str, Any], *, path: Path, arch: str) -> None:
    """Load ``state`` into a torch module, or one line saying it is for another architecture."""
    check_state_fits(module.state_dict(), state, path=path, arch=arch)
    module.load_state_dict(state, strict=True)

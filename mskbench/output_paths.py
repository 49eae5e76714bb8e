"""Output paths, checked before any work: "a file I will write" and "a folder I will write".

Every command that writes a file or a folder (report, leaderboard, export,
models fetch, data phantom, detector train, predict, and the results database
of run and metrics score) checks its output option with :func:`writable_file` or
:func:`writable_folder` first. A folder given for a file, a file given for a
folder, a path under a regular file, or a place that cannot be written is one
line and exit code 2 before hours of work. The check creates nothing: it
probes the nearest existing folder with a temporary file it removes at once
(a permission-bit test would be wrong for root, ACLs and read-only mounts).

:func:`write_text` and :func:`make_folder` do the writing itself and turn an
``OSError`` met later (disk full, the folder removed meanwhile) into the same
kind of one-line error; :func:`written_atomically` writes through a temporary
file and a rename, so no reader ever sees a half-written output.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mskbench.errors import UserError


class OutputPathError(UserError):
    """An output file or folder cannot be written where the user asked."""


def writable_file(path: str | Path, option: str, example: str = "") -> Path:
    """Check that ``path`` can be written as a file (created or replaced); return it.

    ``example`` is a file name suggested when ``path`` is an existing folder.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        hint = f"e.g. {option} {path / example}" if example else "give a file path inside it"
        raise OutputPathError(f"{option} {path}: is a folder, not a file; {hint}")
    if os.path.lexists(path):
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{option} {path}: cannot overwrite it (permission denied); choose another path")
        return path
    _probe_folder(path.parent, option, path)
    return path


def writable_folder(path: str | Path, option: str) -> Path:
    """Check that ``path`` is, or can be created as, a folder that can be written in; return it."""
    path = Path(path).expanduser()
    if os.path.lexists(path) and not path.is_dir():
        raise OutputPathError(f"{option} {path}: {_not_a_folder(path)}; give a folder path (it is created if missing)")
    _probe_folder(path, option, path)
    return path


def make_folder(path: str | Path, option: str) -> Path:
    """Create ``path`` (and its parents) as the output folder named by ``option``."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputPathError(f"{option} {path}: cannot create the folder ({_reason(exc)}); choose another path") from None
    return path


def write_text(path: str | Path, text: str, option: str) -> Path:
    """Write ``text`` (UTF-8) to ``path``, creating its folder; one line on any OSError."""
    path = Path(path)
    make_folder(path.parent, option)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise OutputPathError(f"{option} {path}: cannot write it ({_reason(exc)}); choose another path") from None
    return path


@contextmanager
def written_atomically(path: str | Path, option: str) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it replaces ``path`` in one rename.

    An error or a kill while writing leaves no half-written ``path`` (the
    temporary file is removed on errors; a hidden ``.partial-`` file is all a
    kill can leave). The temporary name keeps the file's endings, so writers
    that choose a format by name (``.nii.gz``) behave as for ``path``.
    """
    path = Path(path)
    temporary = path.with_name(f".partial-{uuid.uuid4().hex[:8]}-{path.name}")
    try:
        yield temporary
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputPathError(f"{option} {path}: cannot write it ({_reason(exc)}); choose another path") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _probe_folder(folder: Path, option: str, shown: Path) -> None:
    """Raise unless files can be created in ``folder`` or in the nearest folder above it that exists."""
    existing = folder
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"{option} {shown}: {existing} {_not_a_folder(existing)}; choose a writable {option} path")
    try:
        handle, probe = tempfile.mkstemp(prefix=".mskbench-write-check-", dir=existing)
    except OSError as exc:
        raise OutputPathError(
            f"{option} {shown}: cannot write in {existing} ({_reason(exc)}); choose a writable {option} path"
        ) from None
    os.close(handle)
    os.unlink(probe)


def _not_a_folder(path: Path) -> str:
    return "is a file, not a folder" if path.is_file() else "is not a folder"


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc).splitlines()[0]

"""Resumable checkpoint downloads with sha256 verification (`mskbench models fetch`).

Written on urllib rather than a download library because the job is small
(one HTTP GET with a Range header, append to a ``.part`` file, verify, rename)
and the project adds no dependency for it. A failed or interrupted download
keeps its ``.part`` file so the next attempt continues where it stopped; a
finished file with the wrong hash is removed, never renamed into place.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from mskbench.errors import CheckpointError
from mskbench.segmenters.checkpoints import (
    checkpoint_dir,
    get_spec,
    remember_sha256,
    sha256_file,
    sha256_uncached,
)

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int | None], None]
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_WEB_PAGE_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _open(url: str, offset: int, timeout: float):
    """The HTTP response for ``url`` from byte ``offset``, or None when the .part is already complete."""
    request = urllib.request.Request(url, headers={"User-Agent": "mskbench"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the .part holds the whole file
            return None
        raise CheckpointError(f"download of {url} failed: HTTP {exc.code} {exc.reason}; check the URL") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CheckpointError(f"cannot reach {url} ({reason}); check the network and rerun to resume") from exc


def _refuse_web_page(response, url: str) -> None:
    """A checkpoint is never HTML: an HTML answer is a download page, a login or an error page."""
    content_type = response.headers.get_content_type()
    if content_type in _WEB_PAGE_TYPES:
        raise CheckpointError(
            f"{url} returned a web page ({content_type}), not a checkpoint; use the URL of the file itself "
            "(a download page, sign-in or error page is not the file)"
        )


def _resume_offset(response, offset: int) -> int:
    """Where the response body starts: ``offset`` for a 206 that honours it, 0 for a full 200."""
    if not offset or response.status == 200:
        return 0
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    if response.status != 206 or match is None or int(match.group(1)) != offset:
        raise CheckpointError(
            f"server answered the resume request with an unexpected range "
            f"({response.status}, {response.headers.get('Content-Range')!r}); delete the .part file and retry"
        )
    return offset


def download(
    url: str,
    dest: Path,
    *,
    expected_sha256: str | None,
    expected_size: int | None = None,
    on_progress: ProgressCallback | None = None,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
) -> str:
    """Download ``url`` to ``dest`` through ``dest.part``, resuming it; returns the file's sha256."""
    dest = Path(dest)
    part = _part_path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        log.warning("%s is larger than the expected %d bytes; starting again", part, expected_size)
        part.unlink()
        offset = 0
    if expected_size is None or offset < expected_size:
        response = _open(url, offset, timeout)
        if response is not None:
            with response:
                _refuse_web_page(response, url)
                offset = _resume_offset(response, offset)
                length = response.headers.get("Content-Length")
                total = offset + int(length) if length is not None else expected_size
                done = offset
                if on_progress:
                    on_progress(done, total)
                try:
                    with open(part, "ab" if offset else "wb") as handle:
                        while chunk := response.read(chunk_size):
                            handle.write(chunk)
                            done += len(chunk)
                            if on_progress:
                                on_progress(done, total)
                except (OSError, http.client.HTTPException) as exc:  # reset, timeout, short body
                    raise CheckpointError(
                        f"download of {url} stopped at {done} bytes ({type(exc).__name__}); rerun to resume from {part}"
                    ) from exc
                if total is not None and done < total:
                    raise CheckpointError(f"download of {url} stopped at {done} of {total} bytes; rerun to resume")
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        raise CheckpointError(
            f"{part} has {size} bytes, expected {expected_size}; rerun to resume the download"
        )
    digest = sha256_uncached(part)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        part.unlink()
        raise CheckpointError(
            f"downloaded {url} has sha256 {digest[:16]}…, expected {expected_sha256[:16]}…; "
            "the file was removed, rerun to download it again (or check the URL)"
        )
    os.replace(part, dest)
    remember_sha256(dest, digest)
    return digest


def fetch_checkpoint(
    key: str,
    dest_dir: Path | None = None,
    *,
    url: str | None = None,
    sha256: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Download a registered checkpoint into ``dest_dir`` (default: checkpoint_dir()).

    ``url`` replaces the official URL (a mirror); the official sha256 still
    applies unless ``sha256`` is given. A file already in place with the right
    hash is kept; one with a wrong hash is an error (it is never overwritten).
    """
    if sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise CheckpointError(f"--sha256 must be 64 hex digits, got {sha256!r}")
    spec = get_spec(key)
    folder = Path(dest_dir).expanduser() if dest_dir is not None else checkpoint_dir()
    dest = folder / spec.filename
    if url is None and not spec.direct_download:
        raise CheckpointError(
            f"'{key}' has no direct download: get {spec.filename} by hand from {spec.url} and put it in {folder}"
        )
    expected = sha256 or spec.sha256
    if dest.is_file():
        if expected is None:
            log.info("%s already present (no official sha256 to check)", dest)
            return dest
        if sha256_file(dest) == expected.lower():
            log.info("%s already present and verified", dest)
            return dest
        raise CheckpointError(f"{dest} exists but its sha256 differs from the expected one; delete it and fetch again")
    if expected is None:
        log.warning(
            "no sha256 is known for '%s' and none was given with --sha256: the download cannot be verified", key
        )
    download(
        url or spec.url,
        dest,
        expected_sha256=expected,
        expected_size=spec.size if sha256 is None else None,
        on_progress=on_progress,
    )
    return dest

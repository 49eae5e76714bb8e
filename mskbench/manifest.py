"""The run manifest: what a reader needs to reproduce a run (DESIGN §5)."""

from __future__ import annotations

import hashlib
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = (
    "mskbench", "numpy", "scipy", "connected-components-3d", "duckdb", "pyarrow", "pluggy", "nibabel", "pydicom",
    "SimpleITK", "opencv-python-headless", "scikit-image", "torch", "torchvision", "segment-anything", "sam2",
    "ultralytics", "monai", "pingouin", "statsmodels",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(start: Path) -> str | None:
    """The commit of the repository holding the suite, if it is in one."""
    try:
        out = subprocess.run(
            ["git", "-C", str(start), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(suite_path: str, device: str, seeds: tuple[int, ...], resolved: dict[str, Any]) -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": package_versions(),
        "git_commit": git_commit(Path(suite_path).parent),
        "device": device,
        "seeds": list(seeds),
        "resolved_config": resolved,
        "models": {},
    }

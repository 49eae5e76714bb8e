"""Shared test setup: offline ultralytics, headless matplotlib, repository paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "real"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def real_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.fail(f"{SHARED_DATA} is missing: CI must check out ../shared beside the repository")
    return SHARED_DATA

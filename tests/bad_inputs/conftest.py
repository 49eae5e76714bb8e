"""Fixtures shared by the bad-input case modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import existing_database


@pytest.fixture(scope="session")
def template_db(tmp_path_factory) -> Path:
    return existing_database(tmp_path_factory.mktemp("template") / "results.duckdb")

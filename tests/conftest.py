"""Shared fixtures: where the real data lives, and skipping what needs it when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data directory: ``FEDHAR_DATA_DIR``, else ``../shared/data`` beside the repo."""
    path = Path(os.environ.get("FEDHAR_DATA_DIR", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"real data directory {path} not found (set FEDHAR_DATA_DIR)")
    return path

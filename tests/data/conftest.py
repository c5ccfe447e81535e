"""Fixtures for the data tests: fixture files, a private parse cache, real datasets loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedhar.data.hapt import load_hapt
from fedhar.data.types import HarDataset
from fedhar.data.wisdm2019 import load_wisdm2019

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture()
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private, empty fedhar user cache for one test."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def wisdm2019_phone(data_dir: Path) -> HarDataset:
    """Real WISDM 2019 phone accelerometer data, default classes, 20 Hz (uses the user cache)."""
    return load_wisdm2019(data_dir)


@pytest.fixture(scope="session")
def hapt_acc(data_dir: Path) -> HarDataset:
    """Real UCI HAPT accelerometer data, six basic activities, 50 Hz (uses the user cache)."""
    return load_hapt(data_dir)

"""Data-directory resolution, the user cache, and progress bars."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fedhar import progress as progress_module
from fedhar.data.paths import resolve_data_dir, user_cache_dir


def test_flag_then_env_then_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDHAR_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert resolve_data_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("FEDHAR_DATA_DIR")
    monkeypatch.delenv("FEDHAR_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(None) == tmp_path / "xdg" / "fedhar" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert resolve_data_dir(None) == Path.home() / ".cache" / "fedhar" / "data"
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(tmp_path / "mine"))
    assert user_cache_dir() == tmp_path / "mine"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_silent_in_ci_and_pipes(monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _Tty()
    monkeypatch.setattr("sys.stderr", tty)
    monkeypatch.delenv("CI", raising=False)
    assert progress_module.progress_enabled()
    assert list(progress_module.progress(range(3), desc="x")) == [0, 1, 2]
    assert "x" in tty.getvalue()
    monkeypatch.setenv("CI", "1")
    assert not progress_module.progress_enabled()
    monkeypatch.delenv("CI")
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not progress_module.progress_enabled()

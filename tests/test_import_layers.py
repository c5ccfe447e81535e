"""The layers of ../shared/DESIGN.md hold: import-linter's contracts (pyproject.toml) pass on
the code, and fail on a copy of it given one upward import, one server→clients import or
one cycle."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT), "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for package in ("fedhar", "server", "clients"):
        shutil.copytree(REPO / package, root / package, ignore=shutil.ignore_patterns("*.so"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_contracts_hold_on_the_code() -> None:
    done = _lint(REPO)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "3 kept, 0 broken" in done.stdout


CYCLE = {
    "fedhar/wire/codec.py": "fedhar.wire.protocol",
    "fedhar/wire/protocol.py": "fedhar.wire.codec",
}


@pytest.mark.parametrize(
    ("imports", "broken"),
    [
        ({"fedhar/results/report.py": "fedhar.studies.pipeline"}, "fedhar.results is not allowed"),
        ({"fedhar/mcu/profile.py": "fedhar.ondevice.estimator"}, "fedhar.mcu is not allowed"),
        ({"server/strategy.py": "clients.personalize"}, "server is not allowed to import clients"),
        (CYCLE, "No cycles are allowed in fedhar.wire"),
    ],
)
def test_a_new_upward_import_or_cycle_breaks_them(
    tmp_path: Path, imports: dict[str, str], broken: str
) -> None:
    root = _copy(tmp_path)
    for module, imported in imports.items():
        path = root / module
        path.write_text(path.read_text() + f"\nimport {imported}  # noqa: E402, F401\n")
    done = _lint(root)
    assert done.returncode != 0
    assert broken in done.stdout, done.stdout[-3000:]

"""fh_qnet.c in the Cortex-M4 cross-build with -Werror. (Its ASan + UBSan run is in
tests/ctrain/test_sanitizers.py, which builds the whole library once.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

EMU = Path(__file__).resolve().parents[2] / "fedhar" / "ondevice" / "emu"


def test_cortex_m4_cross_build_compiles_the_kernels(tmp_path: Path) -> None:
    """``make -C fedhar/ondevice/emu lib``: -mcpu=cortex-m4 ... -Wall -Wextra -Werror."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None:
        pytest.skip("arm-none-eabi-gcc or make not found")
    subprocess.run(["make", "-s", "-C", str(EMU), f"OUT={tmp_path}", "lib"], check=True,
                   capture_output=True, text=True)  # fmt: skip
    assert (tmp_path / "m4" / "fh_qnet.o").is_file()
    symbols = subprocess.run(["arm-none-eabi-nm", str(tmp_path / "libfedhar_m4.a")],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
    for entry in ("fh_qnet_forward", "fh_qnet_get_memory", "fh_dnet_forward"):
        assert f" T {entry}" in symbols

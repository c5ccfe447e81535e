"""Builds the whole C library with AddressSanitizer + UBSan and runs the gradient, invalid-input
and argument-range tests against that build through the real bindings (FEDHAR_CTRAIN_LIB), in a
subprocess.

Two builds: the default one (vector tiles, avx2 clone) runs the gradient, invalid-input,
width-sliced inference and compressed-inference (fh_qnet: fuzz, models, errors) tests; the
plain C99 one (FT_PLAIN_C, the code a Cortex-M build compiles) runs the gradient and
invalid-input tests again, since its training kernels differ.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CSRC = REPO / "fedhar" / "ondevice" / "csrc"
FLAGS = [
    "-std=c99",
    "-O1",
    "-g",
    "-fsanitize=address,undefined",
    "-fno-omit-frame-pointer",
    "-fno-sanitize-recover=undefined",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-fPIC",
    "-shared",
]


VECTOR_ONLY = (
    "adaptive/test_c_slim.py",
    "ondevice_q/test_qnet_fuzz.py",
    "ondevice_q/test_qnet_models.py",
    "ondevice_q/test_qnet_errors.py",
)
"""Tests of inference kernels, whose code is the same in both builds: run once."""


def _gcc_file(name: str) -> str:
    out = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True)
    return out.stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["vector", "plain"])
def test_gradient_and_error_tests_clean_under_sanitizers(variant: str, tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    asan = _gcc_file("libasan.so")
    if not os.path.isabs(asan):
        pytest.skip("libasan.so not found")
    lib = tmp_path / "libfedhar_train_san.so"
    sources = sorted(str(p) for p in CSRC.glob("*.c"))
    extra = ["-DFT_PLAIN_C"] if variant == "plain" else []
    subprocess.run(
        ["gcc", *FLAGS, *extra, f"-I{CSRC}", *sources, "-lm", "-o", str(lib)],
        check=True,
        capture_output=True,
        text=True,
    )
    env = {
        **os.environ,
        "FEDHAR_CTRAIN_LIB": str(lib),
        "LD_PRELOAD": asan,
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
        "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1",
        "FEDHAR_CTRAIN_MAX_EXAMPLES": "3",
        "FEDHAR_QNET_FUZZ_CASES": "60",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            "-k",
            "not sanitizers",
            str(HERE / "test_layers.py"),
            str(HERE / "test_errors.py"),
            str(HERE / "test_binding_ranges.py"),
            *([str(REPO / "tests" / t) for t in VECTOR_ONLY] if variant == "vector" else []),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = run.stdout[-3000:] + run.stderr[-3000:]
    assert run.returncode == 0, report
    assert "ERROR: AddressSanitizer" not in report and "runtime error" not in report, report

"""Builds the C training library as a plain shared object loaded through ctypes.

The library exports a C API (no Python C-API symbols); setuptools' Extension is used only
because it knows the platform's compiler and shared-object flags.
"""

from pathlib import Path

from setuptools import Extension, setup

CSRC = Path("fedhar") / "ondevice" / "csrc"
sources = sorted(str(p) for p in CSRC.glob("*.c"))

setup(
    ext_modules=[
        Extension(
            "fedhar.ondevice._fedhar_train",
            sources=sources,
            include_dirs=[str(CSRC)],
            extra_compile_args=[
                "-std=c99",
                "-O3",
                "-ffp-contract=fast",
                "-Wall",
                "-Wextra",
                "-Werror",
            ],
            py_limited_api=False,
        )
    ]
    if sources
    else [],
)

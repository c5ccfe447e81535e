#!/usr/bin/env bash
# One-command set-up for a fresh machine: a venv in .venv, the CPU build of PyTorch, then fedhar
# (which compiles the C training library) with its dev tools, and the Debian packages of the
# Cortex-M4 emulator checks (cross-compiler, newlib, QEMU) and of the report's browser test
# (Chromium) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
EMU_PACKAGES="gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm make"
if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null \
    || [ ! -d /usr/lib/arm-none-eabi/newlib ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            $EMU_PACKAGES >/dev/null
    else
        echo "note: the emulator tests need: apt-get install $EMU_PACKAGES" >&2
    fi
fi
# Headless Chromium opens report.html in the browser test (tests/results/test_report_browser.py).
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            chromium >/dev/null
    else
        echo "note: the report's browser test needs: apt-get install chromium" >&2
    fi
fi
PY=${PYTHON:-python3}
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# PyPI's torch for Linux is the CUDA build (several GB); PyTorch's CPU index serves the CPU-only
# wheel. Where that index cannot be reached, the configured indexes and wheel folders are asked
# for the CPU build by its local label (2.13.0+cpu), so a CUDA build can never be picked.
TORCH=2.13.0
TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
if ! .venv/bin/python -m pip install --quiet --no-deps --timeout 20 --retries 1 \
    --index-url "$TORCH_CPU_INDEX" "torch==$TORCH" 2>/dev/null; then
    echo "note: $TORCH_CPU_INDEX not reached; looking for torch $TORCH+cpu elsewhere" >&2
    .venv/bin/python -m pip install --quiet --no-deps "torch==$TORCH+cpu"
fi
.venv/bin/python -m pip install --quiet "torch==$TORCH"  # its dependencies, from the usual indexes
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/fedhar --version

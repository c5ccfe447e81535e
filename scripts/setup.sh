#!/usr/bin/env bash
# One-command set-up for a fresh machine: a venv in .venv, the CPU build of PyTorch from the
# local wheel, then fedhar (which compiles the C training library) with its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
"$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e ".[dev]"
.venv/bin/fedhar --version

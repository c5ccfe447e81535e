"""This machine's reference arithmetic rate, measured by the benchmarks in the same run."""

from __future__ import annotations

import os
import subprocess
import sys


def sgemm_macs_per_s(threads: int | None = None, size: int = 1024, repeats: int = 20) -> float:
    """Float32 multiply-adds per second of numpy's matmul (``size`` square), in a child
    process with ``threads`` BLAS threads (default: every core)."""
    code = f"""
import time, numpy as np
a = np.random.default_rng(0).random(({size}, {size}), dtype=np.float32)
b = a.copy()
for _ in range(3):
    a @ b
best = float("inf")
for _ in range(5):
    t = time.perf_counter()
    for _ in range({repeats}):
        a @ b
    best = min(best, time.perf_counter() - t)
print({repeats} * {size} ** 3 / best)
"""
    env = dict(os.environ)
    n = str(threads or os.cpu_count() or 1)
    env.update(OPENBLAS_NUM_THREADS=n, OMP_NUM_THREADS=n, MKL_NUM_THREADS=n)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip())

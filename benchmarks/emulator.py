"""Speed of the Cortex-M4 emulator checks: QEMU's executed instructions per second (with the
counting plugin), the wall time of one Full cnn3 training batch at (100, 3) on the emulator and
on the host C library (their ratio is the emulator's slowdown), and the whole Table III grid
(cnn3 and the daghero template, TL and Full, T = 20..100, one batch of 32 each).

    python benchmarks/emulator.py [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fedhar.mcu.profile import load_profile
from fedhar.models.spec import build_spec
from fedhar.ondevice import emulator
from fedhar.ondevice.ctrain import Trainer
from fedhar.ondevice.emulated import GRID_INPUT_LENGTHS, emulate_row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    b = emulator.build()
    timings = load_profile("stm32l496zg_fedhar").instruction_timings

    spec = build_spec("cnn3", 3, 100, 6)
    start = time.perf_counter()
    full = emulate_row(spec, "full", 32, 2, timings=timings, b=b)
    full_wall = time.perf_counter() - start
    trainer = Trainer(spec, mode="full", lr=0.01)
    state, x, y = emulator.random_inputs(spec, 32)
    trainer.load_state_dict(state)
    host = []
    for _ in range(20):
        t0 = time.perf_counter()
        trainer.train_batch(x, y)
        host.append(time.perf_counter() - t0)
    host_s = float(np.median(host))

    start = time.perf_counter()
    executed = 0
    qemu_s = 0.0
    for model, tl in (("cnn3", 2), ("daghero", 1)):
        for t in GRID_INPUT_LENGTHS:
            for mode in ("tl", "full"):
                row = emulate_row(build_spec(model, 3, t, 6), mode, 32, tl, timings=timings, b=b)
                executed += row.executed_total
                qemu_s += row.wall_s
    grid_s = time.perf_counter() - start
    out = {
        "qemu_instructions_per_s": executed / qemu_s,
        "cnn3_full_100x3_emulated_s": full_wall,
        "cnn3_full_100x3_qemu_s": full.wall_s,
        "cnn3_full_100x3_instructions": full.executed_total,
        "cnn3_full_100x3_host_s": host_s,
        "emulator_slowdown": full_wall / host_s,
        "grid_rows": 20,
        "grid_s": grid_s,
        "grid_instructions": executed,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(
        f"QEMU with the counting plugin: {out['qemu_instructions_per_s'] / 1e6:.0f} M "
        "instructions/s (grid total)"
    )
    print(
        f"one Full cnn3 batch at (100,3): {full_wall:.2f} s emulated "
        f"({full.executed_total / 1e6:.0f} M instructions), {host_s * 1e3:.1f} ms on the host "
        f"C library: {out['emulator_slowdown']:.0f}x slower"
    )
    print(f"Table III grid (20 rows): {grid_s:.1f} s, {executed / 1e9:.2f} G instructions")


if __name__ == "__main__":
    main()

"""Speed of the Cortex-M4 emulator checks: QEMU's executed instructions per second (with the
counting plugin), the wall time of one Full cnn3 training batch at (100, 3) on the emulator and
on the host C library (their ratio is the emulator's slowdown), and the whole Table III grid
(cnn3 and the daghero template, TL and Full, T = 20..100, one batch of 32 each). Then the
cycles of the width-sliced conv kernels (TRM timings of stm32l496zg_fedhar), per in-bounds tap
(MAC) and per output element, fitted by least squares on 80 random sliced networks, against the
re-quantization cost per output element that CMSIS-NN's README publishes (CMSIS_5
CMSIS/NN/README.md, "Legacy vs TFL micro compliant APIs": about 5 cycles for the legacy
shift-and-saturate, more than 200 cycles for the TFL-micro-compliant per-channel scheme).

    python benchmarks/emulator.py [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fedhar.mcu.profile import load_profile
from fedhar.models.spec import build_spec
from fedhar.ondevice import emulator, instructions
from fedhar.ondevice.ctrain import Trainer
from fedhar.ondevice.emulated import GRID_INPUT_LENGTHS, emulate_row
from fedhar.ondevice.isa import cycles

CMSIS_NN_REQUANT_CYCLES = {"legacy shift": 5.0, "TFL-micro compliant (lower bound)": 200.0}


def kernel_cycles(b: emulator.Build, timings: dict[str, float]) -> dict[str, dict[str, float]]:
    """Cycles per call, per output channel, per output element, per (output, input channel)
    and per tap of the sliced float32 and int8 conv kernels, least squares over random nets."""
    rows: dict[str, list[tuple[tuple[float, ...], float]]] = {}
    for i, (model, n) in enumerate(instructions.slim_cases(80)):
        rng = np.random.default_rng(i)
        x = rng.standard_normal((n, model.in_channels, model.in_length)).astype(np.float32)
        run = emulator.run_slim(model, x, 0.5, b)
        for r in instructions.slim_regions(model, n):
            if r.kind.startswith("slim_conv_"):
                c = cycles(run.execution.keys.get(r.rid, {}), run.execution.taken[r.rid], timings)
                rows.setdefault(r.kind, []).append((r.features, c))
    out = {}
    for kind, data in sorted(rows.items()):
        a = np.array([f for f, _ in data], dtype=np.float64)
        y = np.array([c for _, c in data])
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        names = ("call", "output_channel", "output", "output_input_channel", "tap")
        out[kind] = {name: round(float(v), 2) for name, v in zip(names, coef, strict=True)}
        out[kind]["max_rel_residual"] = round(float(np.max(np.abs(a @ coef - y) / y)), 4)
    return out


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
    kernels = kernel_cycles(b, timings)
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
        "sliced_conv_cycles": kernels,
        "cmsis_nn_requant_cycles_per_output": CMSIS_NN_REQUANT_CYCLES,
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
    for kind, c in kernels.items():
        ratios = ", ".join(f"{c['output'] / v:.2f}x CMSIS-NN {name} ({v:g})"
                           for name, v in CMSIS_NN_REQUANT_CYCLES.items())  # fmt: skip
        print(
            f"{kind}: {c['tap']:.2f} cycles per MAC, {c['output']:.1f} per output element "
            f"({ratios}); fit residual {100 * c['max_rel_residual']:.1f}%"
        )


if __name__ == "__main__":
    main()

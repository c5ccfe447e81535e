"""Host speed of the compressed-inference C kernels (``fh_qnet.c``) per format: windows per
second of the daghero template (3 x 60 windows, 6 classes, channels 16/32/64, kernels 7) as an
integer network at 8, 4, 2 and 1 bit, at a mixed assignment, and as a dynamic-range int8
network; with each format's model bytes, scratch bytes and counted operations per window, and
its cycles per window priced by an MCU profile (default ``stm32l496zg_fedhar``: the fedhar
library on a Cortex-M4F).

One process, formats interleaved: each of ``--repeats`` rounds times one batch call per format
in a rotated order; the figure is the median over rounds, and every ratio is to int8 in the
same run. With ``--emulator`` it also runs 4 windows of each format on the emulated Cortex-M4F
(QEMU mps2-an386) and gives the executed cycles per window (the profile's instruction timings)
next to the counters' price.

    python benchmarks/qnet_kernels.py [--json] [--batch 512] [--repeats 9]
                                      [--mcu stm32l496zg_fedhar] [--emulator]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from fedhar.mcu.profile import load_profile
from fedhar.models import quantized as Q
from fedhar.models.spec import daghero_cnn
from fedhar.ondevice import emulator
from fedhar.ondevice.emulator import random_inputs
from fedhar.ondevice.qnet_estimate import estimate_qnet
from fedhar.ondevice.qnet_infer import DynamicNetC, QNetC

MIXED = {"conv1": (8, 4), "conv2": (4, 2), "conv3": (2, 4), "fc": (8, 8)}
"""A mixed assignment in the spirit of daghero2022 Table 3: wider first and last layers."""


def _networks(batch: int) -> tuple[dict[str, QNetC | DynamicNetC], dict[str, np.ndarray]]:
    spec = daghero_cnn(3, 60, 6)
    state, x, _ = random_inputs(spec, batch, seed=0)
    fs, fst = Q.fold_spec(spec), Q.fold_state(spec, state)
    names = [layer.name for layer in fs.layers if layer.kind in ("conv1d", "dense")]
    in_scale = float(np.abs(x).max()) / 127
    nets: dict[str, QNetC | DynamicNetC] = {}
    for label, bits in [(f"int{b}", {n: (b, b) for n in names}) for b in (8, 4, 2, 1)] + [
        ("mixed", MIXED)
    ]:
        scales = {n: 1.0 / Q.act_levels(bits[n][1]) for n in names}
        nets[label] = QNetC(Q.quantize(fs, fst, bits, scales, in_scale))
    nets["dynamic"] = DynamicNetC(Q.quantize_dynamic(fs, fst))
    x_q = nets["int8"].net.quantize_input(x)  # type: ignore[union-attr]
    inputs = {k: (x if k == "dynamic" else x_q) for k in nets}
    return nets, inputs


def run(batch: int, repeats: int, mcu: str, emulate: bool) -> dict[str, dict[str, float]]:
    """Median windows/s and the per-window figures of every format."""
    nets, inputs = _networks(batch)
    b = emulator.build() if emulate else None
    profile = load_profile(mcu)
    times: dict[str, list[float]] = {k: [] for k in nets}
    order = list(nets)
    for r in range(repeats):
        for k in order[r % len(order) :] + order[: r % len(order)]:
            start = time.perf_counter()
            nets[k].logits(inputs[k])
            times[k].append(time.perf_counter() - start)
    out: dict[str, dict[str, float]] = {}
    for k, c in nets.items():
        ops, mem = estimate_qnet(c.net)
        _, measured = c.logits(inputs[k][:1])
        assert measured == ops, f"{k}: the counters differ from the estimator"
        out[k] = {
            "windows_per_s": batch / statistics.median(times[k]),
            "model_bytes": mem["model"],
            "buffer_bytes": mem["buffer"],
            "macs": ops.macs,
            "bitops": ops.bitops,
            "bytes_moved": ops.bytes_moved,
            "mcu_cycles": profile.cycles(ops),
        }
        if b is not None:
            done = emulator.run_qnet(c.net, inputs[k][:4], b)
            assert done.ops == ops.scaled(4), f"{k}: the emulator counts differently"
            out[k]["executed_cycles"] = done.execution.cycles(profile.instruction_timings) / 4
    base = out["int8"]
    for v in out.values():
        v["speed_vs_int8"] = v["windows_per_s"] / base["windows_per_s"]
        v["mcu_cycles_vs_int8"] = v["mcu_cycles"] / base["mcu_cycles"]
        if "executed_cycles" in v:
            v["executed_vs_int8"] = v["executed_cycles"] / base["executed_cycles"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--mcu", default="stm32l496zg_fedhar")
    parser.add_argument("--emulator", action="store_true")
    args = parser.parse_args()
    out = run(args.batch, args.repeats, args.mcu, args.emulator)
    if args.json:
        print(json.dumps(out, indent=1))
        return
    print(f"daghero 3x60, batch {args.batch}, median of {args.repeats}; cycles on {args.mcu}")
    head = ("format", "windows/s", "vs int8", "model B", "scratch B", "MACs", "bitops",
            "priced cycles", "vs int8")  # fmt: skip
    if args.emulator:
        head += ("executed cycles", "vs int8")
    print("| " + " | ".join(head) + " |")
    print("|---" + "|---:" * (len(head) - 1) + "|")
    for k, v in out.items():
        row = (k, f"{v['windows_per_s']:,.0f}", f"{v['speed_vs_int8']:.2f}x",
               f"{v['model_bytes']:,}", f"{v['buffer_bytes']:,}", f"{v['macs']:,}",
               f"{v['bitops']:,}", f"{v['mcu_cycles']:,.0f}",
               f"{v['mcu_cycles_vs_int8']:.2f}x")  # fmt: skip
        if args.emulator:
            row += (f"{v['executed_cycles']:,.0f}", f"{v['executed_vs_int8']:.2f}x")
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()

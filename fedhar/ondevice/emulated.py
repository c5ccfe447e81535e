"""Training steps of the craighero2023 Table III grid on the emulated Cortex-M4F, set against
the instruction model's prediction and priced with a profile's instruction timings.

One :class:`EmulatedRow` is one training batch of a (model, input, mode) row: what the emulator
executed (instruction classes, taken branches, cycles by the TRM timings) beside what
:mod:`fedhar.ondevice.instructions` predicts from the layer shapes, and the library's counted
MACs beside the executed multiply-accumulates of the kernel regions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedhar.models.spec import ModelSpec
from fedhar.ondevice import emulator, instructions
from fedhar.ondevice.estimator import LOSS, PHASES, trainable_flags
from fedhar.ondevice.isa import CLASSES, cycles

__all__ = ["GRID_INPUT_LENGTHS", "EmulatedRow", "emulate_row", "format_emulated", "row_dict"]

GRID_INPUT_LENGTHS: tuple[int, ...] = (20, 40, 60, 80, 100)
"""The input lengths T of craighero2023 Table III (with C = 3 channels)."""


@dataclass(frozen=True)
class EmulatedRow:
    """One training batch on the emulator.

    Attributes:
        executed, predicted: instructions by class plus ``taken`` (branches), per batch.
        executed_macs, counted_macs: VFMA-class instructions executed in the conv/dense/
            batch-norm/update regions, and the library's counted MACs there.
        cycles: executed cycles by the profile's instruction timings (0 without timings).
        by_region: per region (``layer/phase``, ``loss``, ``glue``): executed and predicted
            instructions and executed cycles.
        wall_s: QEMU's wall time for the job.
    """

    executed: dict[str, int]
    predicted: dict[str, float]
    executed_macs: int
    counted_macs: int
    cycles: float
    by_region: dict[str, dict[str, float]]
    wall_s: float

    @property
    def executed_total(self) -> int:
        """Executed instructions."""
        return sum(self.executed[c] for c in CLASSES)

    @property
    def predicted_total(self) -> float:
        """Predicted instructions."""
        return sum(self.predicted[c] for c in CLASSES)

    def relative_errors(self) -> dict[str, float]:
        """(predicted − executed) / executed per class, ``taken`` and ``total``."""
        out = {
            t: (self.predicted[t] - self.executed[t]) / self.executed[t]
            for t in instructions.TARGETS
            if self.executed[t]
        }
        out["total"] = (self.predicted_total - self.executed_total) / self.executed_total
        return out


def _region_names(spec: ModelSpec) -> dict[int, str]:
    out = {emulator.REGION_GLUE: "glue"}
    for row, layer in enumerate(spec.layers):
        for j, phase in enumerate(PHASES):
            out[emulator.region(row, j)] = f"{layer.name}/{phase}"
    out[emulator.region(len(spec.layers), 0)] = LOSS
    return out


def emulate_row(
    spec: ModelSpec,
    mode: str,
    batch: int = 32,
    tl_layers: int = 2,
    momentum: float = 0.0,
    timings: dict[str, float] | None = None,
    b: emulator.Build | None = None,
    seed: int = 0,
) -> EmulatedRow:
    """Runs one training batch of ``spec`` in ``mode`` on the emulator (seeded random data and
    parameters: the instruction counts do not depend on the values beyond data-dependent
    branches) and sets it against the prediction."""
    flags = trainable_flags(spec, mode, tl_layers)
    state, x, y = emulator.random_inputs(spec, batch, seed)
    run = emulator.run_training(spec, state, x, y, flags, b, momentum=momentum, logits=False)
    if run.status != 0:
        raise emulator.EmulatorError(f"the training step failed with status {run.status}")
    ex = run.execution
    measured = [r for r in ex.keys if r != emulator.REGION_HARNESS]
    executed = ex.targets(measured)
    update = instructions.update_kind("sgd", momentum, 0.0)
    per_region = instructions.predict(instructions.regions(spec, flags, batch, update))
    predicted = instructions.totals(per_region)
    names = _region_names(spec)
    loss_rows = {emulator.region(len(spec.layers), j) for j in range(len(PHASES))}
    kernel = [r for r in measured if r != emulator.REGION_GLUE and r not in loss_rows]
    executed_macs = ex.classes(kernel)["fp_mac"]
    counted = sum(
        ops.macs for row, phases in run.counts.items() if row != LOSS for ops in phases.values()
    )
    by_region: dict[str, dict[str, float]] = {}
    for r in measured:
        name = names[r]
        c = cycles(ex.keys.get(r, Counter()), ex.taken[r], timings) if timings else 0.0
        by_region[name] = {
            "executed": sum(ex.classes([r]).values()),
            "predicted": sum(per_region.get(name, {}).get(t, 0.0) for t in CLASSES),
            "cycles": c,
        }
    total_cycles = sum(v["cycles"] for v in by_region.values())
    return EmulatedRow(
        executed, predicted, executed_macs, counted, total_cycles, by_region, ex.wall_s
    )


def by_phase(row: EmulatedRow) -> dict[str, dict[str, float]]:
    """:attr:`EmulatedRow.by_region` summed per phase (forward, backward_input,
    backward_weights, update), the loss and the glue."""
    out: dict[str, dict[str, float]] = {}
    for name, figures in row.by_region.items():
        phase = name.rsplit("/", 1)[-1]
        acc = out.setdefault(phase, dict.fromkeys(figures, 0.0))
        for k, v in figures.items():
            acc[k] += v
    return out


def row_dict(row: EmulatedRow) -> dict[str, Any]:
    """A row's figures for JSON output."""
    return {
        "executed_instructions": {**row.executed, "total": row.executed_total},
        "executed_macs": row.executed_macs,
        "counted_macs": row.counted_macs,
        "executed_cycles": row.cycles,
        "relative_error": {k: round(v, 6) for k, v in row.relative_errors().items()},
        "by_phase": by_phase(row),
        "by_region": row.by_region,
        "emulator_wall_s": round(row.wall_s, 3),
    }


def format_emulated(rows: list[Any], emulated: list[EmulatedRow], profile: Any) -> str:
    """The predicted-against-executed table of ``fedhar estimate --emulate``."""
    head = ["model", "input", "mode", "predicted", "executed", "error", "worst class",
            "MACs exec = counted", "cycles (TRM)", "cycles/MAC"]  # fmt: skip
    table = [head]
    for r, e in zip(rows, emulated, strict=True):
        errs = e.relative_errors()
        worst = max((k for k in errs if k != "total"), key=lambda k: abs(errs[k]))
        cyc = f"{e.cycles:.4g}" if e.cycles else "-"
        per_mac = f"{e.cycles / e.counted_macs:.2f}" if e.cycles and e.counted_macs else "-"
        table.append([
            r.model, r.input, r.mode, f"{e.predicted_total:.0f}", str(e.executed_total),
            f"{100 * errs['total']:+.3f}%", f"{worst} {100 * errs[worst]:+.2f}%",
            f"{e.executed_macs} {'=' if e.executed_macs == e.counted_macs else '!='} "
            f"{e.counted_macs}", cyc, per_mac,
        ])  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in table]
    note = (
        f"Executed on QEMU mps2-an386 (Cortex-M4F), one batch each; cycles priced with the "
        f"instruction timings of {profile.name}."
        if profile.instruction_timings
        else f"Executed on QEMU mps2-an386 (Cortex-M4F), one batch each; {profile.name} has no "
        "instruction timings (try --mcu stm32l496zg_fedhar)."
    )
    return "\n".join([*lines, note])


def fit_mac_cycles(profile_name: str = "stm32l496zg_fedhar") -> tuple[float, float, float]:
    """The profile's ``cycles_float32.mac`` fitted to the TRM-priced execution of every Table
    III row (cnn3 and the daghero template, TL and Full, batch 32), every other operation
    class at the profile's value: least squares on the relative errors. Returns (cycles per
    MAC, largest and mean absolute relative error over the 20 rows)."""
    from fedhar.mcu.profile import load_profile
    from fedhar.models.spec import build_spec
    from fedhar.ondevice.estimator import estimate_training

    profile = load_profile(profile_name)
    b = emulator.build()
    a, rhs = [], []
    for model, tl in (("cnn3", 2), ("daghero", 1)):
        for t in GRID_INPUT_LENGTHS:
            for mode in ("tl", "full"):
                spec = build_spec(model, 3, t, 6)
                row = emulate_row(spec, mode, 32, tl, timings=dict(profile.instruction_timings),
                                  b=b)  # fmt: skip
                ops = estimate_training(spec, mode, 32, tl, momentum=False).ops_total_per_batch
                rest = profile.cycles(ops) - profile.costs.mac * ops.macs
                a.append(ops.macs / row.cycles)
                rhs.append(1.0 - rest / row.cycles)
    x, y = np.array(a), np.array(rhs)
    mac = float(x @ y / (x @ x))
    err = np.abs(x * mac - y)
    return mac, float(err.max()), float(err.mean())


if __name__ == "__main__":
    mac_cycles, worst, mean = fit_mac_cycles()
    print(f"cycles per MAC {mac_cycles:.2f}: Table III rows within {100 * worst:.1f}% "
          f"(mean {100 * mean:.1f}%)")  # fmt: skip

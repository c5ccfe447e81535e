"""Resource estimate of on-device training: memory, operations, cycles, time and energy.

For one model, input size and training mode, :func:`estimate_row` asks the analytic estimator of the
C training library (:mod:`fedhar.ondevice.estimator`, which the library's measured counts match
exactly) for the arena bytes by category and the operation counts of one batch, and prices the
operations on an :class:`~fedhar.mcu.McuProfile`. This is the model of Table III of craighero2023:
memory footprint and time per batch of TL and Full personalization.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fedhar.enums import TRAINING_JOBS
from fedhar.mcu import Cost, McuProfile
from fedhar.models.spec import (
    MODEL_BUILDERS,
    ModelOptionError,
    ModelSpec,
    build_spec,
    model_options,
)
from fedhar.ondevice import instructions
from fedhar.ondevice.calibration import paper_rule_bytes_by_category
from fedhar.ondevice.ctrain import Trainer
from fedhar.ondevice.estimator import OpCounts, estimate_training
from fedhar.ondevice.isa import CLASSES

MODES: tuple[str, ...] = tuple(m.value for m in TRAINING_JOBS)
"""Training modes: ``tl`` trains the last ``tl_layers`` dense layers, ``full`` every layer."""

_INPUT = re.compile(r"^\s*(\d+)\s*[xX,]\s*(\d+)\s*$")


def parse_input(text: str) -> tuple[int, int]:
    """Parses an input size written as in the paper, ``TxC`` (e.g. ``100x3``) → ``(T, C)``.

    Raises:
        ValueError: if ``text`` is not two positive integers joined by ``x``.
    """
    match = _INPUT.match(text)
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(
            f"--input {text!r}: expected TxC with T samples and C channels, both >= 1 (e.g. 100x3)"
        )
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class EstimateRow:
    """Resources of one training configuration on one MCU (one row of the table).

    Attributes:
        model: model name (``cnn3``).
        input_length: T, samples per window.
        input_channels: C, sensor channels.
        n_classes: classes of the output layer.
        mode: ``tl`` or ``full``.
        batch: samples per batch.
        momentum: SGD momentum (0 allocates no optimizer state).
        memory_bytes: arena peak in bytes per category, plus ``total`` (their sum).
        arena_bytes: the whole arena the library needs, in bytes: ``total`` plus its control
            block (context and layer tables).
        sram_bytes: SRAM of the MCU, in bytes.
        ops_per_phase: operation counts of one batch per phase (forward, backward_input,
            backward_weights, update), summed over layers and the loss.
        ops_per_batch: the sum of ``ops_per_phase``.
        cost: cycles, seconds and joules of one batch on the MCU.
        predicted_instructions: instructions one batch executes on a Cortex-M4F by class, plus
            ``taken`` branches and ``total``, from :mod:`fedhar.ondevice.instructions`.
        paper_rule_bytes: craighero2023 §III-B memory accounting by category, with ``total``.
    """

    model: str
    input_length: int
    input_channels: int
    n_classes: int
    mode: str
    batch: int
    momentum: float
    memory_bytes: dict[str, int]
    arena_bytes: int
    sram_bytes: int
    ops_per_phase: dict[str, OpCounts]
    ops_per_batch: OpCounts
    cost: Cost
    predicted_instructions: dict[str, float]
    paper_rule_bytes: dict[str, int]

    @property
    def input(self) -> str:
        """The input size as the CLI writes it, ``TxC``."""
        return f"{self.input_length}x{self.input_channels}"

    @property
    def fits(self) -> bool:
        """Whether the whole arena (control block included) fits in the MCU's SRAM."""
        return self.arena_bytes <= self.sram_bytes

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: sizes in bytes, time in s, energy in J."""
        return {
            "model": self.model,
            "input": self.input,
            "input_length": self.input_length,
            "input_channels": self.input_channels,
            "n_classes": self.n_classes,
            "mode": self.mode,
            "batch": self.batch,
            "momentum": self.momentum,
            "memory_bytes": dict(self.memory_bytes),
            "arena_bytes": self.arena_bytes,
            "sram_bytes": self.sram_bytes,
            "fits": self.fits,
            "ops_per_batch": _ops_dict(self.ops_per_batch),
            "ops_per_phase": {p: _ops_dict(o) for p, o in self.ops_per_phase.items()},
            "cycles_per_batch": self.cost.cycles,
            "seconds_per_batch": self.cost.seconds,
            "energy_j_per_batch": self.cost.joules,
            "predicted_instructions": {
                k: round(v, 1) for k, v in self.predicted_instructions.items()
            },
            "paper_rule_bytes": dict(self.paper_rule_bytes),
        }


def _ops_dict(ops: OpCounts) -> dict[str, int]:
    return {
        "macs": ops.macs,
        "adds": ops.adds,
        "muls": ops.muls,
        "divs": ops.divs,
        "exps": ops.exps,
        "cmps": ops.cmps,
        "bytes_moved": ops.bytes_moved,
        "bitops": ops.bitops,
    }


def estimate_row(
    profile: McuProfile,
    model: str = "cnn3",
    input_length: int = 100,
    input_channels: int = 3,
    n_classes: int = 6,
    mode: str = "full",
    batch: int = 32,
    tl_layers: int = 2,
    momentum: float = 0.0,
    n_stored_samples: int = 0,
    spec: ModelSpec | None = None,
    options: dict[str, Any] | None = None,
) -> EstimateRow:
    """Estimates one configuration: arena bytes, ops of one batch, and their cost on ``profile``.

    ``spec``, when given, is the model (e.g. one found by :mod:`fedhar.compress.nas`); it
    replaces ``model``, ``input_length``, ``input_channels`` and ``n_classes``. ``options``
    are the model builder's keywords (``--model-options``, a scenario's ``model.options``);
    the row's input is then the model's, e.g. the sensors a ``nas`` model keeps of
    ``input_channels``.

    Raises:
        ValueError: naming the argument, for an unknown model or mode or a size out of range.
    """
    if spec is not None:
        model, input_length, input_channels = spec.name, spec.input_length, spec.input_channels
        n_classes = spec.n_classes
    elif model not in MODEL_BUILDERS:
        raise ValueError(f"--model {model!r}: expected one of {', '.join(sorted(MODEL_BUILDERS))}")
    if mode not in MODES:
        raise ValueError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    for name, value, low in (
        ("--batch", batch, 1),
        ("--classes", n_classes, 2),
        ("--tl-layers", tl_layers, 1),
        ("--stored-samples", n_stored_samples, 0),
    ):
        if value < low:
            raise ValueError(f"{name} {value}: expected an integer >= {low}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"--momentum {momentum}: expected a value in [0, 1)")
    if spec is None and options:
        unknown = sorted(set(options) - set(model_options(model)))
        if unknown:
            raise ValueError(
                f"--model-options {unknown[0]}: unknown option of model {model!r}, expected "
                f"one of: {', '.join(model_options(model)) or 'none'}"
            )
        try:
            spec = build_spec(model, input_channels, input_length, n_classes, **options)
        except ModelOptionError as exc:
            raise ValueError(f"--model-options {exc}") from None
        input_channels = spec.input_channels
    if spec is None:
        try:
            spec = build_spec(model, input_channels, input_length, n_classes)
        except ModelOptionError as exc:
            raise ValueError(f"--model {model} needs --model-options: {exc}") from None
        except ValueError as exc:
            raise ValueError(
                f"--input {input_length}x{input_channels} is too short for model {model!r}: {exc}"
            ) from exc
    est = estimate_training(
        spec,
        mode=mode,
        batch=batch,
        tl_layers=tl_layers,
        n_stored_samples=n_stored_samples,
        momentum=momentum > 0.0,
    )
    per_phase = est.ops_per_phase
    total = est.ops_total_per_batch
    predicted = instructions.totals(
        instructions.predict(
            instructions.regions(
                spec, est.trainable, batch, instructions.update_kind("sgd", momentum, 0.0)
            )
        )
    )
    predicted["total"] = sum(predicted[c] for c in CLASSES)
    return EstimateRow(
        model=model,
        input_length=input_length,
        input_channels=input_channels,
        n_classes=n_classes,
        mode=mode,
        batch=batch,
        momentum=momentum,
        memory_bytes=dict(est.memory_bytes),
        arena_bytes=Trainer.required_arena_bytes(
            spec, mode, tl_layers, momentum=momentum, n_stored_samples=n_stored_samples
        ),
        sram_bytes=profile.sram_bytes,
        ops_per_phase=per_phase,
        ops_per_batch=total,
        cost=profile.cost(total),
        predicted_instructions=predicted,
        paper_rule_bytes=paper_rule_bytes_by_category(spec, mode, tl_layers),
    )


def _kib(n: float) -> str:
    return f"{n / 1024:.1f}"


def format_rows(rows: list[EstimateRow], profile: McuProfile) -> str:
    """A Table III-style text report: memory by category, operations, cycles, s and J."""
    if not rows:
        return "no rows"
    first = rows[0]
    optimizer = f"SGD momentum {first.momentum:g}" if first.momentum else "SGD"
    lines = [
        f"{first.model} on {profile.name} ({profile.core}, {profile.clock_hz / 1e6:g} MHz, "
        f"{profile.sram_bytes / 1024:g} KiB SRAM, {profile.active_watts * 1e3:.3g} mW active); "
        f"batch {first.batch}, {optimizer}, {first.n_classes} classes",
        "",
        "Memory (KiB = 1024 bytes; arena = total + control block; fits = arena <= SRAM)",
    ]
    categories = [c for c in first.memory_bytes if c != "total"]
    head = ["input", "mode", *categories, "total", "arena", "fits"]
    table = [head]
    for r in rows:
        table.append(
            [r.input, r.mode]
            + [_kib(r.memory_bytes[c]) for c in categories]
            + [_kib(r.memory_bytes["total"]), _kib(r.arena_bytes), "yes" if r.fits else "NO"]
        )
    lines += _grid(table)
    lines += ["", "Operations per batch (all phases)"]
    fields = ["macs", "adds", "muls", "divs", "exps", "cmps", "bytes_moved", "bitops"]
    table = [["input", "mode", *fields]]
    for r in rows:
        ops = _ops_dict(r.ops_per_batch)
        table.append([r.input, r.mode] + [f"{ops[f]:,}" for f in fields])
    lines += _grid(table)
    lines += ["", "Time and energy per batch"]
    table = [["input", "mode", "cycles", "seconds", "energy (mJ)"]]
    for r in rows:
        table.append(
            [
                r.input,
                r.mode,
                f"{r.cost.cycles:,.0f}",
                f"{r.cost.seconds:.3f}",
                f"{r.cost.joules * 1e3:.3f}",
            ]
        )
    lines += _grid(table)
    return "\n".join(lines)


def _grid(table: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    out = []
    for row in table:
        cells = [
            cell.ljust(w) if i < 2 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return out

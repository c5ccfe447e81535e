"""Cycles of sliced inference executed on the emulated Cortex-M4F, priced by a profile of our
own library (``stm32l496zg_fedhar``).

One window of a deployed width (float32 :class:`SlimF32` or int8 :class:`SlimS8`) runs through
``fh_slim_forward_*`` and the score-margin policy in QEMU (:func:`fedhar.ondevice.emulator.
run_slim`); the instructions it executed, priced with the profile's Cortex-M4 TRM timings, are
its cycles. The network's cycles are every region but the harness and the policy (the library's
glue between kernels included); the policy's are its own region. The kernels' loop counts do
not depend on the input values, so one window stands for every window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedhar.mcu import Cost, McuProfile
from fedhar.ondevice import emulator
from fedhar.ondevice.instructions import slim_regions
from fedhar.ondevice.slim_format import SlimF32, SlimS8


@dataclass(frozen=True)
class Executed:
    """Executed cost of one window: the network's and the policy's, on one profile."""

    net: Cost
    policy: Cost


def available() -> bool:
    """True when the cross-compiler and QEMU are installed (else nothing here can run)."""
    return not emulator.missing_tools()


def _cost(cycles: float, profile: McuProfile) -> Cost:
    seconds = cycles / profile.clock_hz
    return Cost(cycles, seconds, seconds * profile.active_watts)


def execute_window(
    model: SlimF32 | SlimS8, profile: McuProfile, build: emulator.Build | None = None
) -> Executed:
    """Runs one all-zero window of ``model`` and its policy on the emulator; their costs.

    Raises:
        ValueError: ``profile`` has no instruction timings (it prices another framework).
        RuntimeError: the harness reported a non-zero status.
    """
    if not profile.instruction_timings:
        raise ValueError(f"profile {profile.name!r} has no instruction timings to price with")
    x = np.zeros((1, model.in_channels, model.in_length), np.float32)
    run = emulator.run_slim(model, x, 0.5, build)
    if run.status != 0:
        raise RuntimeError(f"sliced inference on the emulator failed with status {run.status}")
    policy = next(r.rid for r in slim_regions(model, 1) if r.name == "policy")
    timings = dict(profile.instruction_timings)
    net_regions = [r for r in run.execution.keys if r not in (emulator.REGION_HARNESS, policy)]
    return Executed(
        _cost(run.execution.cycles(timings, net_regions), profile),
        _cost(run.execution.cycles(timings, [policy]), profile),
    )

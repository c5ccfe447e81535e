"""What each load of a device costs: inference, personalization, radio, sensor and sleep.

Plain numbers in, frozen dataclasses out. Default figures come from
``fedhar/wearable/data/parts.yaml``, where each value names its datasheet or paper table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from fedhar.enums import WEARABLE_JOBS
from fedhar.mcu.profile import McuProfile, OpCountsLike
from fedhar.wearable.modes import ModesTable

PARTS_FILE = Path(__file__).with_name("data") / "parts.yaml"

LOADS = ("sensor", "inference", "training", "radio", "sleep")


@dataclass(frozen=True)
class InferenceCost:
    """Cost of one inference.

    Attributes:
        joules_per_inference: energy in J.
        seconds_per_inference: MCU active time in s.
    """

    joules_per_inference: float
    seconds_per_inference: float


@dataclass(frozen=True)
class AdaptiveInferenceCost:
    """Cost of one adaptive inference (Daghero et al. 2022, eq. 3): the small model runs on
    every window; hard windows also run the large one.

    Attributes:
        easy: cost of a window decided by the small model.
        hard: cost of a window that also needs the large model.
    """

    easy: InferenceCost
    hard: InferenceCost

    @classmethod
    def from_models(cls, small: InferenceCost, large: InferenceCost) -> AdaptiveInferenceCost:
        """Easy windows cost the small model; hard ones cost both."""
        hard = InferenceCost(
            small.joules_per_inference + large.joules_per_inference,
            small.seconds_per_inference + large.seconds_per_inference,
        )
        return cls(easy=small, hard=hard)

    @classmethod
    def from_modes(cls, table: ModesTable, clock_hz: float) -> AdaptiveInferenceCost:
        """Fits the easy and hard costs to a modes table by least squares on
        ``avg = easy + (1 - p_easy) · (hard - easy)``, for energy (µJ) and for cycles
        (seconds = cycles / ``clock_hz``). A table whose rows share one ``p_easy`` gives
        both the same average cost."""
        if clock_hz <= 0:
            raise ValueError(f"clock_hz: expected > 0, got {clock_hz}")
        p_hard = np.array([1.0 - m.p_easy for m in table.modes])
        energy = np.array([m.energy_uj_avg for m in table.modes]) * 1e-6
        seconds = np.array([m.cycles_avg for m in table.modes]) / clock_hz
        if np.ptp(p_hard) == 0.0:
            cost = InferenceCost(float(energy.mean()), float(seconds.mean()))
            return cls(easy=cost, hard=cost)
        design = np.stack([np.ones_like(p_hard), p_hard], axis=1)
        (e0, de), *_ = np.linalg.lstsq(design, energy, rcond=None)
        (s0, ds), *_ = np.linalg.lstsq(design, seconds, rcond=None)
        return cls(
            easy=InferenceCost(float(e0), float(s0)),
            hard=InferenceCost(float(e0 + de), float(s0 + ds)),
        )

    def at(self, p_easy: float) -> InferenceCost:
        """The average cost per window when a share ``p_easy`` of windows is easy."""
        easy, hard, p_hard = self.easy, self.hard, 1.0 - p_easy
        return InferenceCost(
            p_easy * easy.joules_per_inference + p_hard * hard.joules_per_inference,
            p_easy * easy.seconds_per_inference + p_hard * hard.seconds_per_inference,
        )


@dataclass(frozen=True)
class PersonalizationCost:
    """Cost of one training epoch of a personalization mode.

    Attributes:
        joules_per_epoch: energy in J.
        seconds_per_epoch: duration in s.
    """

    joules_per_epoch: float
    seconds_per_epoch: float

    @property
    def watts(self) -> float:
        """Average power while training, in W."""
        return self.joules_per_epoch / self.seconds_per_epoch

    @classmethod
    def from_batch(
        cls, seconds_per_batch: float, watts: float, batches_per_epoch: int
    ) -> PersonalizationCost:
        """An epoch of ``batches_per_epoch`` batches of ``seconds_per_batch`` s at ``watts`` W."""
        if seconds_per_batch <= 0 or watts <= 0 or batches_per_epoch < 1:
            raise ValueError(
                "seconds_per_batch, watts: expected > 0 and batches_per_epoch >= 1, got "
                f"{seconds_per_batch}, {watts}, {batches_per_epoch}"
            )
        seconds = seconds_per_batch * batches_per_epoch
        return cls(joules_per_epoch=seconds * watts, seconds_per_epoch=seconds)


def personalization_cost_from_profile(
    profile: McuProfile, ops_per_batch: OpCountsLike, batches_per_epoch: int
) -> PersonalizationCost:
    """An epoch priced by an MCU profile from the operations of one training batch (as
    counted by ``fedhar.ondevice.estimator.estimate_training`` or the C library)."""
    cost = profile.epoch_cost(ops_per_batch, batches_per_epoch)
    return PersonalizationCost(joules_per_epoch=cost.joules, seconds_per_epoch=cost.seconds)


@dataclass(frozen=True)
class RadioCost:
    """BLE transfer cost.

    Attributes:
        joules_per_byte_tx: energy to send one byte, J.
        joules_per_byte_rx: energy to receive one byte, J.
        bytes_per_s: link throughput in bytes/s.
    """

    joules_per_byte_tx: float
    joules_per_byte_rx: float
    bytes_per_s: float


@dataclass(frozen=True)
class SensorCost:
    """Accelerometer sampling power in W, drawn whenever the device is on."""

    watts: float


@dataclass(frozen=True)
class WearableCosts:
    """Everything a device's loads cost.

    Attributes:
        inference: adaptive inference cost per window.
        personalization: cost per epoch by mode (``"full"``, ``"tl"``).
        radio: BLE cost.
        sensor: accelerometer cost.
        sleep_w: MCU power while idle, in W.
    """

    inference: AdaptiveInferenceCost
    personalization: Mapping[str, PersonalizationCost]
    radio: RadioCost
    sensor: SensorCost
    sleep_w: float
    sources: Mapping[str, str] = field(default_factory=dict)


def load_parts(batches_per_epoch: int, path: str | Path = PARTS_FILE) -> WearableCosts:
    """Device costs from a parts file (default: :data:`PARTS_FILE`); a personalization
    epoch has ``batches_per_epoch`` batches of 32 windows."""
    with open(path) as fh:
        parts = yaml.safe_load(fh)
    try:
        radio = parts["radio"]
        volts = float(radio["supply_v"])
        rate = float(radio["bytes_per_s"])
        sensor = parts["sensor"]
        train = parts["training"]
        inf = parts["inference"]
        costs = WearableCosts(
            inference=AdaptiveInferenceCost.from_models(
                InferenceCost(float(inf["small_joules"]), float(inf["small_seconds"])),
                InferenceCost(float(inf["large_joules"]), float(inf["large_seconds"])),
            ),
            personalization={
                mode: PersonalizationCost.from_batch(
                    float(train[f"{mode}_seconds_per_batch"]),
                    float(train[f"{mode}_watts"]),
                    batches_per_epoch,
                )
                for mode in (m.value for m in WEARABLE_JOBS)
            },
            radio=RadioCost(
                joules_per_byte_tx=volts * float(radio["tx_current_a"]) / rate,
                joules_per_byte_rx=volts * float(radio["rx_current_a"]) / rate,
                bytes_per_s=rate,
            ),
            sensor=SensorCost(float(sensor["supply_v"]) * float(sensor["current_a"])),
            sleep_w=float(parts["sleep"]["watts"]),
            sources={name: str(parts[name]["source"]) for name in parts},
        )
    except KeyError as exc:
        raise ValueError(f"{path}: missing key {exc.args[0]!r}") from None
    return costs

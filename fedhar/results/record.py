"""One client's result: the one record that travels from the client's reply to ``report.json``.

A :class:`ClientRecord` holds the client's identity, its :class:`~fedhar.enums.Status`, one
:class:`ModeRecord` per :class:`~fedhar.enums.Mode` it ran, its payload sizes and, on a
battery-powered wearable, a :class:`BatteryRecord`. It has one plain-data form,
:meth:`ClientRecord.to_dict` / :meth:`ClientRecord.from_dict` (JSON: ``clients.jsonl``,
``report.json``), and one Flower form, :func:`to_flower` / :func:`from_flower`, which spreads
that same dict over a ``MetricRecord`` (the numbers, under dotted key paths such as
``modes.tl.memory_bytes.total``) and a ``ConfigRecord`` (the strings). Nothing else converts it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, MetricRecord

from fedhar.enums import MODES, Mode, Status
from fedhar.metrics import Scores

_OLD_NAMES = {"f1_int8": "f1_deployed"}
"""Keys of a mode's record in journals and reports of earlier formats, and their names now."""


@dataclass
class ModeRecord:
    """What one mode gave and cost on the device.

    Attributes:
        f1: macro-F1 on TS_i, in [0, 1].
        accuracy: accuracy on TS_i, in [0, 1].
        balanced_accuracy: mean per-class recall on TS_i, in [0, 1].
        confusion: ``[n_classes, n_classes]`` counts on TS_i (row = true class).
        f1_deployed: macro-F1 on TS_i of the model as the device deploys it, re-quantized to
            the payload's format (``int8``: 8-bit weights; an integer network format: integer
            inference at its bits; ``float32``: as is); None: not measured.
        memory_bytes: the C library's arena peak bytes by category, and ``total``; empty for
            ``none``, which does not train.
        ops: operations the C library counted over the whole job, by class (``macs``,
            ``adds``, ``muls``, ``divs``, ``exps``, ``cmps``, ``bytes_moved``, ``bitops``);
            empty for ``none``.
        cycles: MCU cycles of the job on the client's profile.
        seconds: MCU seconds of the job.
        energy_j: MCU energy of the job, in J.
        guard: with the guard on, a trained mode's ``deployed`` (1: the job's model, 0: the
            received one kept), ``candidate_f1`` and ``received_f1`` (macro F1 on the held-out
            TR_i windows) and ``n_holdout``; empty without the guard.
        curve: a trained mode's learning curve, one value per epoch (warm-up included):
            ``loss`` (mean batch cross-entropy of the epoch on the windows it trained on) and
            ``f1`` (macro-F1 after the epoch on the data named by ``curve_on``); empty for
            ``none``.
        curve_on: what the curve's ``f1`` was measured on: ``train`` (the windows trained
            on) or ``holdout`` (the guard's held-out TR_i windows); ``""`` without a curve.
    """

    f1: float
    accuracy: float
    balanced_accuracy: float
    confusion: list[list[int]]
    f1_deployed: float | None = None
    memory_bytes: dict[str, int] = field(default_factory=dict)
    ops: dict[str, int] = field(default_factory=dict)
    cycles: float = 0.0
    seconds: float = 0.0
    energy_j: float = 0.0
    guard: dict[str, float] = field(default_factory=dict)
    curve: dict[str, list[float]] = field(default_factory=dict)
    curve_on: str = ""

    @staticmethod
    def scored(scores: Scores, **costs: Any) -> ModeRecord:
        """A record of ``scores`` with the given cost fields."""
        return ModeRecord(
            f1=scores.macro_f1,
            accuracy=scores.accuracy,
            balanced_accuracy=scores.balanced_accuracy,
            confusion=scores.confusion,
            **costs,
        )

    def with_scores(self, scores: ModeRecord) -> ModeRecord:
        """This record with the four scores of ``scores`` (its costs and ``f1_deployed`` kept)."""
        return ModeRecord(
            **{
                **asdict(self),
                **{k: getattr(scores, k) for k in ("f1", "accuracy", "balanced_accuracy")},
                "confusion": scores.confusion,
            }
        )


@dataclass
class BatteryRecord:
    """A battery-powered wearable's figures of one round.

    Attributes:
        soc_end: state of charge at the end of the round, a fraction in [0, 1].
        energy_j_by_load: the round's energy by load (``sensor``, ``inference``,
            ``training``, ``radio``, ``sleep``), in J.
        jobs: personalization jobs completed in the round, by mode (``full``, ``tl``).
        dead_s: seconds the device was cut off (battery depleted) in the round.
        alive: whether the device was on at the end of the round.
        capacity_mah: the device's battery capacity, mAh.
        first_depletion_s: simulated time of the device's first cut-off since the run
            started, s (None: never).
    """

    soc_end: float
    energy_j_by_load: dict[str, float]
    jobs: dict[str, int]
    dead_s: float = 0.0
    alive: bool = True
    capacity_mah: float = 0.0
    first_depletion_s: float | None = None


@dataclass
class ClientRecord:
    """One user's result.

    Attributes:
        user: user id.
        fold: fold name (``loso-<user>``, ``kfold-<i>``).
        n_train: windows in TR_i.
        n_test: windows in TS_i.
        status: the client's outcome (``ok`` before the federation runs).
        reason: why the status is not ``ok``.
        round: the federated round of the record's ``status`` (0: before the federation).
        modes_round: the round the ``modes`` figures (and ``battery``) come from: ``round``,
            except for a user skipped in its last round, which keeps its last ``ok`` round's
            figures (0: the general model, before the federation).
        modes: one :class:`ModeRecord` per mode that ran, in :data:`~fedhar.enums.MODES`
            order. ``none``'s scores are the general model's float32 scores; its ``f1_deployed``
            is the device's score of the model it received, as deployed.
        payload_bytes_down: bytes on the wire of the model the client received.
        payload_bytes_up: bytes on the wire of the update it sent back (0 without one).
        battery: the wearable's round ``modes_round`` (None without a battery section; then
            left out of the JSON form).
        profile: the MCU profile the client ran on (``""``: not recorded; left out then).
        round_s: the client's round time in simulated s, job plus radio
            (:func:`fedhar.wearable.devices.round_seconds`); None without a deadline (left out).
        missed: why the client's update did not reach the round's aggregation on time:
            ``deadline`` (a straggler: past ``federation.deadline_s``), ``battery`` (a drop-out:
            its device was cut off and finished no job); ``""`` (left out): it did not miss.
    """

    user: str
    fold: str
    n_train: int
    n_test: int
    status: Status = Status.OK
    reason: str = ""
    round: int = 0
    modes_round: int = 0
    modes: dict[Mode, ModeRecord] = field(default_factory=dict)
    payload_bytes_down: int = 0
    payload_bytes_up: int = 0
    battery: BatteryRecord | None = None
    profile: str = ""
    round_s: float | None = None
    missed: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; ``battery``, ``profile``, ``round_s`` and ``missed`` are left out
        when unset."""
        data = asdict(self)
        data["status"] = self.status.value
        data["modes"] = {m.value: asdict(r) for m, r in self.modes.items()}
        for key, unset in (("battery", None), ("profile", ""), ("round_s", None), ("missed", "")):
            if data[key] == unset:
                del data[key]
        return data

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> ClientRecord:
        """Inverse of :meth:`to_dict`.

        Raises:
            KeyError, TypeError, ValueError: ``data`` is not a record's dict.
        """
        known = {f.name for f in fields(ClientRecord)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown client record keys {unknown}")
        modes = {
            Mode(m): ModeRecord(**{_OLD_NAMES.get(k, k): v for k, v in r.items()})
            for m, r in data.get("modes", {}).items()
        }
        battery = data.get("battery")
        return ClientRecord(
            **{k: v for k, v in data.items() if k not in ("status", "modes", "battery")},
            status=Status(data.get("status", Status.OK)),
            modes={m: modes[m] for m in MODES if m in modes},
            battery=None if battery is None else BatteryRecord(**battery),
        )


@dataclass
class ClientOutcome:
    """One client's record in one round, with the weights its update carried.

    Attributes:
        record: the client's record (its ``round`` is the outcome's round).
        received: float32 model the client received (decoded payload), when it sent an update.
        update: float32 personalized model it sent back (``ok`` with an update only).
        device: the state of the client's simulated wearable at the end of the round, as the
            JSON text of :meth:`fedhar.wearable.simulation.Wearable.state_dict` (None: no
            battery). The run's journal keeps it, so a resumed run hands every device the
            state it had, on any engine.
    """

    record: ClientRecord
    received: dict[str, np.ndarray] | None = None
    update: dict[str, np.ndarray] | None = None
    device: str | None = None


def to_flower(record: ClientRecord) -> tuple[MetricRecord, ConfigRecord]:
    """The record as Flower records: every number of :meth:`ClientRecord.to_dict` in a
    ``MetricRecord`` under its dotted key path (a confusion matrix row-major, as a list), and
    every string and flag in a ``ConfigRecord``."""
    numbers: dict[str, Any] = {}
    strings: dict[str, str] = {}
    for key, value in _flatten(record.to_dict()):
        if isinstance(value, (str, bool)):
            strings[key] = value
        else:
            numbers[key] = value
    return MetricRecord(numbers), ConfigRecord(strings)


def from_flower(metrics: MetricRecord, config: ConfigRecord) -> ClientRecord:
    """Inverse of :func:`to_flower`.

    Raises:
        KeyError, TypeError, ValueError: the records do not hold a client record.
    """
    data: dict[str, Any] = {}
    for key, value in [*metrics.items(), *config.items()]:
        *path, leaf = key.split(".")
        node = data
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = list(value) if isinstance(value, list) else value
    for mode in data.get("modes", {}).values():
        flat = mode["confusion"]
        n = math.isqrt(len(flat))
        mode["confusion"] = [[int(v) for v in flat[i * n : (i + 1) * n]] for i in range(n)]
    return ClientRecord.from_dict(data)


def non_finite(metrics: MetricRecord) -> list[str]:
    """Keys of ``metrics`` that hold NaN or Inf, sorted."""

    def finite(value: object) -> bool:
        if isinstance(value, list):
            return all(finite(v) for v in value)
        return isinstance(value, int) or math.isfinite(float(value))

    return sorted(k for k, v in metrics.items() if not finite(v))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, leaf)`` pairs of a nested dict; None leaves are left out and a list of
    lists (a confusion matrix) becomes one row-major list."""
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out += _flatten(value, f"{path}.")
        elif isinstance(value, list) and value and isinstance(value[0], list):
            out.append((path, [v for row in value for v in row]))
        elif value is not None:
            out.append((path, value))
    return out

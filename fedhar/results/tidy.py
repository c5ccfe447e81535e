"""``report.csv``: the run's results as one tidy table, one row per user × mode × round.

Round 0 is the general float32 model scored on the host before the federation (mode ``none``);
rounds 1.. are what each device reported (its ``none`` row scores the model it received, as
deployed). A round without figures (a skipped, declined or failed client) has one row whose ``mode``
is empty. ``last`` is 1 on the rows of each user's highest round. Every row carries the scenario's
name and seed, so tables of several runs can be stacked; battery columns are the device's round
(filled on every mode row of that round), empty without a battery.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fedhar.enums import Mode
from fedhar.results.record import ClientRecord, ModeRecord
from fedhar.results.rounds import last_round_of, ordered_rounds

SCORES = ("f1", "accuracy", "balanced_accuracy", "f1_deployed")
COSTS = ("cycles", "seconds", "energy_j")
COLUMNS: tuple[str, ...] = (
    "scenario",
    "seed",
    "user",
    "fold",
    "round",
    "last",
    "status",
    "mode",
    "n_train",
    "n_test",
    *SCORES,
    "memory_bytes",
    *COSTS,
    "guard_deployed",
    "payload_bytes_down",
    "payload_bytes_up",
    "soc_end",
    "jobs_full",
    "jobs_tl",
    "reason",
)
"""The fixed columns; ``energy_j_<load>`` columns (J of the round by load) go before
``reason``."""


def _number(value: float | int | None, digits: int) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return round(value, digits) if isinstance(value, float) else value


def general_round(record: ClientRecord) -> ClientRecord:
    """A user's round 0: the general float32 model's scores on TS_i, as the report's ``none``
    holds them, without the device's deployed score or costs."""
    modes = {}
    none = record.modes.get(Mode.NONE)
    if none is not None:
        modes[Mode.NONE] = ModeRecord(
            none.f1, none.accuracy, none.balanced_accuracy, none.confusion
        )
    return ClientRecord(
        record.user, record.fold, record.n_train, record.n_test, round=0, modes=modes
    )


def tidy_csv(
    header: Mapping[str, Any],
    records: Sequence[ClientRecord],
    rounds: Sequence[ClientRecord],
    digits: int,
) -> str:
    """The CSV text of ``records`` (one per user, for round 0) and ``rounds`` (one per logged
    round and user); floats rounded to ``digits`` digits."""
    sizes = {r.user: (r.n_train, r.n_test) for r in records}
    logged = ordered_rounds([general_round(r) for r in records] + list(rounds))
    last = last_round_of(logged)
    loads = sorted({k for r in logged if r.battery for k in r.battery.energy_j_by_load})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*COLUMNS[:-1], *(f"energy_j_{load}" for load in loads), COLUMNS[-1]])
    for r in logged:
        n_train, n_test = sizes.get(r.user, (r.n_train, r.n_test))
        identity = [header.get("scenario", ""), header.get("seed", ""), r.user, r.fold, r.round]
        identity += [int(r.round == last[r.user]), r.status.value]
        battery = r.battery
        device = [r.payload_bytes_down, r.payload_bytes_up]
        device += [""] * 3 if battery is None else [
            _number(battery.soc_end, digits),
            battery.jobs.get(Mode.FULL.value, ""),
            battery.jobs.get(Mode.TL.value, ""),
        ]  # fmt: skip
        by_load = battery.energy_j_by_load if battery else {}
        device += [_number(by_load.get(load), digits) for load in loads]
        modes: list[tuple[str, ModeRecord | None]] = [(m.value, x) for m, x in r.modes.items()]
        for name, m in modes or [("", None)]:
            figures: list[Any] = [""] * (len(SCORES) + len(COSTS) + 2)
            if m is not None:
                figures = [_number(getattr(m, k), digits) for k in SCORES]
                figures.append(_number(m.memory_bytes.get("total"), digits))
                figures += [_number(getattr(m, k), digits) if m.ops else "" for k in COSTS]
                figures.append(_number(m.guard.get("deployed"), digits))
            row = [*identity, name, n_train, n_test, *figures, *device, r.reason]
            writer.writerow(row)
    return buffer.getvalue()

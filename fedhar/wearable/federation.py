"""Coupling a simulated device to Flower rounds: a round advances the device to the end of
the round's simulated period; its state lives in ``Context.state`` between rounds.

The state goes into a ``ConfigRecord`` as one JSON string (plain data, see
:meth:`fedhar.wearable.device.Device.state_dict`), and the round's report into a
``MetricRecord`` (``soc_end``, ``energy_j_<load>``, ...).
"""

from __future__ import annotations

import json

from flwr.app import ConfigRecord, Context, MetricRecord

from fedhar.wearable.device import Device, DeviceConfig, RoundReport
from fedhar.wearable.loads import LOADS
from fedhar.wearable.replay import Replay

STATE_KEY = "device_sim"


def run_round(
    context: Context,
    config: DeviceConfig,
    server_round: int,
    round_s: float,
    replay: Replay | None = None,
) -> RoundReport:
    """Advances this node's device through round ``server_round`` (1-based), which ends at
    ``server_round · round_s`` s of simulated time, and keeps its state in ``context``.

    A device the node has not run yet starts fresh (full battery) at the start of round 1;
    rounds the node skipped pass without a model download (the device still lives them).
    """
    record = context.state.config_records.get(STATE_KEY)
    if record is None:
        device = Device(config, replay=replay)
    else:
        device = Device.from_state_dict(config, json.loads(str(record["state"])), replay)
    round_start_s = (server_round - 1) * round_s
    if device.state.t_s < round_start_s:
        device.advance(round_start_s, new_round=False)
    report = device.advance(server_round * round_s, new_round=True)
    context.state[STATE_KEY] = ConfigRecord({"state": json.dumps(device.state_dict())})
    return report


def report_record(report: RoundReport) -> MetricRecord:
    """The round's device figures as a Flower ``MetricRecord``: ``soc_end``, ``alive``,
    ``energy_j_<load>`` (J), ``charged_j``, ``inferences``, ``easy_share``, ``f1``,
    ``full_jobs``, ``tl_jobs``, ``dead_s``. NaN figures (no window classified) are left out."""
    values: dict[str, float | int] = {
        "soc_end": report.soc_end,
        "alive": int(report.alive),
        "charged_j": report.charged_j,
        "inferences": report.inferences,
        "full_jobs": report.full_jobs,
        "tl_jobs": report.tl_jobs,
        "dead_s": report.dead_s,
    }
    values.update({f"energy_j_{load}": report.energy_j[load] for load in LOADS})
    for name in ("easy_share", "f1"):
        value = getattr(report, name)
        if value == value:
            values[name] = value
    return MetricRecord(values)

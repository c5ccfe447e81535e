"""Coupling a simulated device to Flower rounds: a round advances the device to the end of
the round's simulated period; its state lives in ``Context.state`` between rounds.

The state goes into a ``ConfigRecord`` as one JSON string (plain data, see
:meth:`fedhar.wearable.device.Device.state_dict`).
"""

from __future__ import annotations

import json

from flwr.app import ConfigRecord, Context

from fedhar.wearable.device import Device, DeviceConfig, RoundReport
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

"""Coupling a simulated device to Flower rounds: a round advances the device to the end of
the round's simulated period; its state lives in ``Context.state`` between rounds.

The state goes into a ``ConfigRecord`` as one JSON string (plain data, see
:meth:`fedhar.wearable.simulation.Wearable.state_dict`).
"""

from __future__ import annotations

import json

from flwr.app import ConfigRecord, Context

from fedhar.wearable.replay import Replay
from fedhar.wearable.simulation import RoundReport, Wearable, WearableConfig


def state_key(user: str) -> str:
    """The ``Context.state`` key of ``user``'s wearable (a node may hold several users)."""
    return f"wearable/{user}"


def run_round(
    context: Context,
    user: str,
    config: WearableConfig,
    server_round: int,
    round_s: float,
    replay: Replay | None = None,
) -> RoundReport:
    """Advances ``user``'s wearable through round ``server_round`` (1-based), which ends at
    ``server_round · round_s`` s of simulated time, and keeps its state in ``context``.

    A wearable the node has not run yet starts fresh (full battery) at the start of round 1;
    rounds the user skipped pass without a model download (the wearable still lives them).
    """
    key = state_key(user)
    record = context.state.config_records.get(key)
    if record is None:
        device = Wearable(config, replay=replay)
    else:
        device = Wearable.from_state_dict(config, json.loads(str(record["state"])), replay)
    round_start_s = (server_round - 1) * round_s
    if device.state.t_s < round_start_s:
        device.advance(round_start_s, new_round=False)
    report = device.advance(server_round * round_s, new_round=True)
    context.state[key] = ConfigRecord({"state": json.dumps(device.state_dict())})
    return report

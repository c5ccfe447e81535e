"""Coupling a simulated device to Flower rounds: a round advances the device to the end of
the round's simulated period, from the state the server handed it.

The state travels as one JSON string (plain data, see
:meth:`fedhar.wearable.simulation.Wearable.state_dict`): the server sends each client its
device's state of the previous round and keeps the one the client replies with in the run's
journal. A node therefore holds no device between rounds, and a resumed run, on any engine,
continues every device exactly where the journal left it.
"""

from __future__ import annotations

import json

from fedhar.wearable.replay import Replay
from fedhar.wearable.simulation import RoundReport, Wearable, WearableConfig


def run_round(
    state: str,
    config: WearableConfig,
    server_round: int,
    round_s: float,
    *,
    participate: bool = True,
    replay: Replay | None = None,
) -> tuple[RoundReport, str]:
    """Advances a wearable through round ``server_round`` (1-based), which ends at
    ``server_round · round_s`` s of simulated time.

    Args:
        state: the device's state at the end of its last round (``""``: a fresh device, full
            battery, at the start of round 1).
        config: the device.
        server_round: the round.
        round_s: simulated seconds per round.
        participate: whether the device takes part (downloads the model, and a job waits for
            its policy); otherwise it only lives the round.
        replay: the user's real windows, if any.

    Returns:
        The round's report and the device's state at its end (JSON text). Rounds the device
        missed pass without a model download (the wearable still lives them).
    """
    if state:
        device = Wearable.from_state_dict(config, json.loads(state), replay)
    else:
        device = Wearable(config, replay=replay)
    round_start_s = (server_round - 1) * round_s
    if device.state.t_s < round_start_s:
        device.advance(round_start_s, new_round=False)
    report = device.advance(server_round * round_s, new_round=participate)
    return report, json.dumps(device.state_dict(), sort_keys=True)

"""A device kept in a real Flower ``Context.state`` across rounds."""

from __future__ import annotations

import pytest
from flwr.app import Context, RecordDict

from fedhar.wearable.federation import run_round
from fedhar.wearable.simulation import Wearable

from .helpers import config

DAY = 86400.0


def test_rounds_through_context_state_match_one_device_living_the_same_days():
    cfg = config(capacity_mah=0.5, personalization="energy_budget", charging="nightly")
    context = Context(run_id=1, node_id=7, node_config={}, state=RecordDict(), run_config={})
    reports = [run_round(context, "1600", cfg, r, DAY) for r in (1, 2, 4)]  # round 3 skipped
    direct = Wearable(cfg)
    direct.advance(DAY)
    direct.advance(2 * DAY)
    direct.advance(3 * DAY, new_round=False)
    last = direct.advance(4 * DAY)
    assert reports[-1].soc_end == pytest.approx(last.soc_end, rel=1e-12)
    assert reports[-1].energy_j == pytest.approx(last.energy_j, rel=1e-12)
    assert reports[-1].inferences == last.inferences == 8640

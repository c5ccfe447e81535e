"""A device whose state travels as text between rounds (as the server hands it on)."""

from __future__ import annotations

import json

import pytest

from fedhar.wearable.federation import run_round
from fedhar.wearable.simulation import Wearable

from .helpers import config

DAY = 86400.0


def test_rounds_through_state_text_match_one_device_living_the_same_days():
    cfg = config(capacity_mah=0.5, personalization="energy_budget", charging="nightly")
    state, reports = "", []
    for r in (1, 2, 4):  # round 3 missed: the device still lives it
        report, state = run_round(state, cfg, r, DAY)
        reports.append(report)
    direct = Wearable(cfg)
    direct.advance(DAY)
    direct.advance(2 * DAY)
    direct.advance(3 * DAY, new_round=False)
    last = direct.advance(4 * DAY)
    assert reports[-1].soc_end == pytest.approx(last.soc_end, rel=1e-12)
    assert reports[-1].energy_j == pytest.approx(last.energy_j, rel=1e-12)
    assert reports[-1].inferences == last.inferences == 8640
    assert json.loads(state) == json.loads(json.dumps(direct.state_dict()))


def test_a_round_without_participation_downloads_nothing_and_runs_no_job():
    cfg = config(capacity_mah=0.5, personalization="energy_budget", charging="never")
    taking, _ = run_round("", cfg, 1, DAY)
    idle, _ = run_round("", cfg, 1, DAY, participate=False)
    assert taking.full_jobs + taking.tl_jobs == 1 and taking.energy_j["radio"] > 0
    assert idle.full_jobs + idle.tl_jobs == 0 and idle.energy_j["radio"] == 0
    assert idle.soc_end > taking.soc_end

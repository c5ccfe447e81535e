"""The SimPy device: cut-off, resumed jobs, energy books, determinism, state round trip."""

from __future__ import annotations

import json

import pytest

from fedhar.wearable.battery import Battery, BatterySpec
from fedhar.wearable.simulation import Wearable

from .helpers import config

DAY = 86400.0


def stored_j(device: Wearable) -> float:
    battery = device.battery
    return battery.charge_c * battery.spec.voltage_v


def test_cut_off_stops_every_load_until_charged():
    device = Wearable(config(capacity_mah=0.25, personalization="always_full"))
    first = device.advance(DAY)
    assert device.state.first_depletion_s is not None and not first.alive
    second = device.advance(2 * DAY)
    assert second.inferences == 0
    assert sum(second.energy_j.values()) == 0.0
    assert second.dead_s == pytest.approx(DAY)
    assert second.full_jobs == 0


def test_interrupted_job_resumes_from_its_last_completed_epoch():
    # 0.25 mAh at 3.7 V is 3.33 J: the 1 J epochs are cut off during the fourth.
    cfg = config(
        capacity_mah=0.25,
        personalization="always_full",
        charging="nightly",
        charging_params={"start_h": 22.0, "end_h": 7.0},
        epochs=5,
    )
    device = Wearable(cfg)
    report = device.advance(DAY)
    totals = device.state.totals
    assert totals.depletions == 1
    assert totals.epochs_lost == 1
    assert report.full_jobs == 1 and device.state.model == "full"
    # 5 completed epochs plus the part of the lost one; a restart from epoch 0 costs > 8 J.
    assert 5.0 < report.energy_j["training"] < 6.0


def test_energy_books_balance_the_battery_exactly():
    cfg = config(
        capacity_mah=0.3,
        model="kibam",
        personalization="always_full",
        charging="random",
        charging_params={"probability": 0.7},
        threshold="linear",
        threshold_params={"th_min": 0.0, "th_max": 1.0},
    )
    device = Wearable(cfg)
    start = stored_j(device)
    drawn = charged = 0.0
    for day in range(1, 8):
        report = device.advance(day * DAY)
        drawn += sum(report.energy_j.values())
        charged += report.charged_j
    assert device.state.totals.depletions >= 1  # the books must balance across cut-offs too
    assert charged > 0
    assert start - stored_j(device) == pytest.approx(drawn - charged, rel=1e-9, abs=1e-9)


def test_energy_books_without_charging_equal_the_energy_drawn():
    device = Wearable(config(capacity_mah=5.0, model="kibam", personalization="always_tl"))
    start = stored_j(device)
    report = device.advance(3 * DAY, new_round=True)
    assert start - stored_j(device) == pytest.approx(sum(report.energy_j.values()), rel=1e-12)
    windows = 3 * DAY / 10.0
    assert report.inferences == windows
    # static th = 0.5 -> p_easy = 0.5: half the windows cost 10 µJ, half 20 µJ.
    assert report.energy_j["inference"] == pytest.approx(windows * 15e-6, rel=1e-9)


def test_same_seed_same_life_other_seed_other_life():
    def life(seed: int) -> dict:
        cfg = config(
            capacity_mah=3.0,
            personalization="energy_budget",
            charging="random",
            charging_params={"probability": 0.5},
            seed=seed,
        )
        device = Wearable(cfg)
        for day in range(1, 11):
            device.advance(day * DAY)
        return device.state_dict()

    assert json.dumps(life(3)) == json.dumps(life(3))
    assert life(3)["trace"] != life(4)["trace"]


def test_state_survives_a_json_round_trip_between_rounds():
    cfg = config(capacity_mah=0.25, personalization="always_full", charging="nightly")
    straight = Wearable(cfg)
    straight.advance(0.5 * DAY)
    straight.advance(2 * DAY, new_round=False)

    split = Wearable(cfg)
    split.advance(0.5 * DAY)
    kept = json.loads(json.dumps(split.state_dict()))
    resumed = Wearable.from_state_dict(cfg, kept)
    resumed.advance(DAY / 60 + 0.5 * DAY, new_round=False)  # mid-epoch, mid-tick
    again = Wearable.from_state_dict(cfg, json.loads(json.dumps(resumed.state_dict())))
    again.advance(2 * DAY, new_round=False)

    a, b = straight.state.totals, again.state.totals
    assert (a.inferences, a.full_jobs, a.depletions) == (b.inferences, b.full_jobs, b.depletions)
    for load, joules in a.energy_j.items():
        assert b.energy_j[load] == pytest.approx(joules, rel=1e-9, abs=1e-12)
    assert again.battery.soc == pytest.approx(straight.battery.soc, rel=1e-9)


def test_threshold_sets_inference_energy_and_f1_from_the_modes_table():
    low = Wearable(
        config(capacity_mah=100.0, personalization="never", threshold_params={"th": 0.0})
    )
    high = Wearable(
        config(capacity_mah=100.0, personalization="never", threshold_params={"th": 1.0})
    )
    r_low, r_high = low.advance(DAY), high.advance(DAY)
    assert r_low.easy_share == 1.0 and r_high.easy_share == 0.0
    assert r_high.energy_j["inference"] == pytest.approx(2 * r_low.energy_j["inference"])
    assert (r_low.f1, r_high.f1) == (pytest.approx(0.90), pytest.approx(0.98))


def test_battery_full_helper_rejects_a_bad_soc():
    with pytest.raises(ValueError, match="initial soc"):
        Battery.full(BatterySpec(10.0), soc=1.5)

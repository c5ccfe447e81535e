"""Training windows arrive along the daily schedule (fedhar.wearable.arrival)."""

from __future__ import annotations

import numpy as np

from fedhar.wearable.arrival import Arrival
from fedhar.wearable.schedule import DAY_S, DailySchedule

CLASSES = ["walking", "sitting", "jogging"]
SCHEDULE = DailySchedule.from_pairs(
    [[0, "sitting"], [8, "walking"], [9, "jogging"], [9.5, "sitting"]]
)


def _arrival(y: np.ndarray, every_s: float = 600.0, days: int = 5) -> Arrival:
    return Arrival.along(y, CLASSES, SCHEDULE, every_s, days * DAY_S)


def test_day_one_holds_only_what_day_one_sensed() -> None:
    y = np.repeat([0, 1, 2], 20)  # 20 windows of each class, in recording order
    a = _arrival(y)
    day1 = a.order[: a.count_at(DAY_S)]
    # one window every 10 minutes: 6 walking (8-9 h), 3 jogging (9-9.5 h), the rest sitting
    assert np.bincount(y[day1], minlength=3).tolist() == [6, 20, 3]
    assert a.count_at(DAY_S) == 29 and a.count_at(0.0) == 0
    # each class is taken in recording order, and a window is stored once
    assert a.order[np.isin(a.order, np.flatnonzero(y == 0))][:6].tolist() == list(range(6))
    assert len(set(a.order.tolist())) == len(a.order)
    assert np.all(np.diff(a.times_s) >= 0)


def test_rare_activities_fill_in_over_days_then_stop() -> None:
    y = np.repeat([0, 1, 2], 20)
    a = _arrival(y, days=10)
    by_day = [np.bincount(y[a.order[: a.count_at(d * DAY_S)]], minlength=3) for d in (1, 3, 7)]
    assert [b[2] for b in by_day] == [3, 9, 20]  # jogging: 3 a day until its 20 are stored
    assert len(a.order) == 60  # all of TR_i, nothing twice


def test_unscheduled_classes_never_arrive() -> None:
    y = np.array([0, 1, 2, 2, 1])
    s = DailySchedule.from_pairs([[0, "sitting"]])
    a = Arrival.along(y, CLASSES, s, 600.0, DAY_S)
    assert sorted(a.order.tolist()) == [1, 4]


def test_holdout_split_keeps_every_kth_stored_window() -> None:
    a = _arrival(np.repeat([0, 1, 2], 20))
    train, held = a.split(12, 4)
    assert held.tolist() == a.order[[0, 4, 8]].tolist()
    assert sorted(train.tolist() + held.tolist()) == sorted(a.order[:12].tolist())
    assert a.split(12, 0)[1].size == 0

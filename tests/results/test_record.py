"""The one per-client record: its JSON and Flower forms are lossless, and NaN is caught."""

from __future__ import annotations

import json
import math

import pytest
from flwr.app import MetricRecord

from fedhar.enums import Mode, Status
from fedhar.results.record import (
    BatteryRecord,
    ClientRecord,
    ModeRecord,
    from_flower,
    non_finite,
    to_flower,
)


def _record() -> ClientRecord:
    none = ModeRecord(0.5, 0.6, 0.55, [[3, 1, 0], [0, 2, 2], [1, 0, 3]], f1_deployed=0.48)
    full = ModeRecord(
        0.9,
        0.91,
        0.92,
        [[4, 0, 0], [0, 4, 0], [1, 0, 3]],
        f1_deployed=0.89,
        memory_bytes={"parameters": 4000, "stored_samples": 1200, "total": 9100},
        ops={"macs": 123456789012, "adds": 5, "bytes_moved": 7},
        cycles=1.5e9,
        seconds=18.75,
        energy_j=0.3125,
        curve={"loss": [1.25, 0.75, 0.5], "f1": [0.5, 0.75, 0.875]},
        curve_on="holdout",
    )
    return ClientRecord(
        user="1609",
        fold="loso-1609",
        n_train=136,
        n_test=140,
        round=2,
        modes_round=2,
        modes={Mode.NONE: none, Mode.FULL: full},
        payload_bytes_down=10840,
        payload_bytes_up=10840,
        battery=BatteryRecord(0.42, {"sensor": 1.0, "training": 0.3125}, {"full": 1, "tl": 0}),
    )


def test_flower_form_is_lossless_and_typed() -> None:
    record = _record()
    metrics, config = to_flower(record)
    assert metrics["modes.full.memory_bytes.total"] == 9100
    assert metrics["modes.full.confusion"] == [4, 0, 0, 0, 4, 0, 1, 0, 3]
    assert config["status"] == "ok" and config["user"] == "1609"
    assert metrics["modes.full.curve.loss"] == [1.25, 0.75, 0.5]
    assert config["modes.full.curve_on"] == "holdout"
    back = from_flower(metrics, config)
    assert back == record
    assert back.status is Status.OK and list(back.modes) == [Mode.NONE, Mode.FULL]


def test_json_form_is_lossless_and_leaves_out_an_unset_battery() -> None:
    record = _record()
    assert ClientRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    bare = ClientRecord("2", "kfold-1", 10, 5, status=Status.DECLINED, reason="does not fit")
    data = bare.to_dict()
    assert "battery" not in data and data["status"] == "declined" and data["modes"] == {}
    assert ClientRecord.from_dict(data) == bare


def test_modes_come_back_in_report_order_whatever_the_order_sent() -> None:
    data = _record().to_dict()
    data["modes"] = dict(reversed(list(data["modes"].items())))
    assert list(ClientRecord.from_dict(data).modes) == [Mode.NONE, Mode.FULL]


def test_unknown_keys_are_refused() -> None:
    data = {**_record().to_dict(), "f1": {"none": 0.5}}
    with pytest.raises(ValueError, match="unknown client record keys \\['f1'\\]"):
        ClientRecord.from_dict(data)


def test_non_finite_names_every_bad_key() -> None:
    metrics, _ = to_flower(_record())
    values = dict(metrics.items())
    values["modes.full.f1"] = math.nan
    values["modes.none.confusion"] = [1.0, math.inf]
    assert non_finite(MetricRecord(values)) == ["modes.full.f1", "modes.none.confusion"]
    assert non_finite(metrics) == []


def test_records_of_earlier_formats_read_f1_int8_as_f1_deployed() -> None:
    data = _record().to_dict()
    for mode in data["modes"].values():
        mode["f1_int8"] = mode.pop("f1_deployed")
    back = ClientRecord.from_dict(data)
    assert back.modes[Mode.NONE].f1_deployed == 0.48
    assert back.modes[Mode.FULL].f1_deployed == 0.89

"""MCU profiles: loading, provenance, validation errors, and cost arithmetic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fedhar.mcu import BASES, OP_CLASSES, list_profiles, load_profile
from fedhar.mcu.profile import PROFILE_DIR
from fedhar.ondevice.estimator import OpCounts
from fedhar.schema.base import SchemaError


def test_five_bundled_profiles_load() -> None:
    assert list_profiles() == [
        "esp32",
        "pulpissimo_quentin",
        "stm32l496zg",
        "stm32l496zg_fedhar",
        "stm32l552",
    ]
    l496 = load_profile("stm32l496zg")
    assert l496.clock_hz == 80e6
    assert l496.sram_bytes == 320 * 1024
    assert l496.flash_bytes == 1024 * 1024
    assert load_profile("stm32l552").sram_bytes == 256 * 1024
    quentin = load_profile("pulpissimo_quentin")
    assert quentin.clock_hz == 205.1e6 and quentin.supply_v == 0.54
    assert quentin.sram_bytes == 520 * 1024
    assert load_profile("esp32").clock_hz == 240e6


@pytest.mark.parametrize(
    "alias, name",
    [
        ("stm32l496", "stm32l496zg"),
        ("STM32L496ZG", "stm32l496zg"),
        ("quentin", "pulpissimo_quentin"),
        ("l552", "stm32l552"),
    ],
)
def test_aliases(alias: str, name: str) -> None:
    assert load_profile(alias).name == name


def test_unknown_profile_lists_choices() -> None:
    with pytest.raises(SchemaError, match="unknown MCU profile 'stm32f4'.*stm32l496zg"):
        load_profile("stm32f4")


@pytest.mark.parametrize("name", ["esp32", "pulpissimo_quentin", "stm32l496zg", "stm32l552"])
def test_every_number_has_basis_and_source(name: str) -> None:
    profile = load_profile(name)
    fields = {key for key, _ in profile.provenance}
    assert {f"cycles_float32.{k}" for k in OP_CLASSES} <= fields
    assert {"clock_hz", "supply_v", "sram_bytes", "flash_bytes"} <= fields
    for _, sourced in profile.provenance:
        assert sourced.basis in BASES
        assert len(sourced.source) > 20


def test_power_from_current_per_mhz() -> None:
    l552 = load_profile("stm32l552")
    # 62 uA/MHz x 110 MHz x 3.3 V
    assert l552.active_watts == pytest.approx(62e-6 * 110 * 3.3)
    # 3.16 uA x 3.3 V
    assert l552.sleep_watts == pytest.approx(3.16e-6 * 3.3)


def test_cost_arithmetic_by_hand() -> None:
    p = load_profile("stm32l552")
    c = p.costs
    ops = OpCounts(
        macs=1000, adds=100, muls=10, divs=2, exps=3, cmps=50, bytes_moved=400, bitops=70
    )
    cycles = (
        1000 * c.mac
        + 100 * c.add
        + 10 * c.mul
        + 2 * c.div
        + 3 * c.exp
        + 50 * c.cmp
        + 400 * c.byte_moved
        + 70 * c.bitop
    )
    assert p.cycles(ops) == pytest.approx(cycles)
    assert p.seconds(ops) == pytest.approx(cycles / 110e6)
    assert p.joules(ops) == pytest.approx(cycles / 110e6 * p.active_watts)
    assert sum(c.breakdown(ops).values()) == pytest.approx(cycles)
    batch = p.cost(ops)
    assert (batch.cycles, batch.seconds, batch.joules) == pytest.approx(
        (cycles, cycles / 110e6, cycles / 110e6 * p.active_watts)
    )
    job = p.job_cost(ops, batches_per_epoch=7, epochs=3)
    assert job.cycles == pytest.approx(21 * cycles)
    assert job.joules == pytest.approx(21 * batch.joules)
    assert p.epoch_cost(ops, 0).seconds == 0
    assert p.sleep_joules(10.0) == pytest.approx(10.0 * p.sleep_watts)
    with pytest.raises(ValueError, match="epochs"):
        p.job_cost(ops, 1, -1)


def test_cost_with_exact_numbers(tmp_path: Path) -> None:
    data = yaml.safe_load((PROFILE_DIR / "stm32l496zg.yaml").read_text())
    data["name"] = "board"
    for k, v in zip(OP_CLASSES, (2, 1, 1, 14, 100, 1, 0.25, 1), strict=True):
        data["cycles_float32"][k]["value"] = v
    data["clock_hz"]["value"] = 1_000_000
    data["active_power_w"]["value"] = 0.5
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(data))
    p = load_profile(path)
    ops = OpCounts(macs=100_000, adds=10, muls=10, divs=1, exps=1, cmps=6, bytes_moved=4, bitops=9)
    # 200000 + 10 + 10 + 14 + 100 + 6 + 1 + 9 = 200150 cycles -> 0.20015 s -> 0.100075 J
    assert p.cycles(ops) == 200_150
    assert p.seconds(ops) == pytest.approx(0.20015)
    assert p.joules(ops) == pytest.approx(0.100075)
    assert p.fits(320 * 1024) and not p.fits(320 * 1024 + 1)


def _write(tmp_path: Path, mutate: Callable[[dict[str, Any]], object]) -> Path:
    data = yaml.safe_load((PROFILE_DIR / "esp32.yaml").read_text())
    data["name"] = "bad"
    mutate(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda d: d["cycles_float32"]["mac"].update(value=-1),
            "cycles_float32.mac.value: expected a finite number >= 0, got -1",
        ),
        (
            lambda d: d["cycles_float32"]["mac"].update(value="six"),
            "cycles_float32.mac.value: expected a finite number >= 0, got 'six'",
        ),
        (
            lambda d: d["cycles_float32"]["div"].pop("source"),
            "cycles_float32.div.source: missing required key, expected a non-empty string",
        ),
        (
            lambda d: d["clock_hz"].update(basis="folklore"),
            "clock_hz.basis: expected one of 'datasheet', 'paper', 'derived', 'calibrated', "
            "'assumed', got 'folklore'",
        ),
        (
            lambda d: d.pop("clock_hz"),
            "clock_hz: missing required key, expected a mapping with keys value, basis, source",
        ),
        (
            lambda d: d["cycles_float32"].pop("exp"),
            "cycles_float32.exp: missing required key, expected a mapping with keys value, basis, "
            "source",
        ),
        (
            lambda d: d.update(run_current_ua_per_mhz=d["sleep_current_ua"]),
            "active_power_w: expected exactly one of active_power_w or run_current_ua_per_mhz, "
            "got active_power_w and run_current_ua_per_mhz",
        ),
        (
            lambda d: d["sram_bytes"].update(value=1000.5),
            "sram_bytes.value: expected an integer > 0, got 1000.5",
        ),
        (lambda d: d.update(name="other"), "name: expected the file stem 'bad', got 'other'"),
        (
            lambda d: d.update(clock=1),
            "clock: unknown key, expected one of: name, aliases, core, description, clock_hz, "
            "supply_v, sram_bytes, flash_bytes, active_power_w, run_current_ua_per_mhz, "
            "sleep_power_w, sleep_current_ua, cycles_float32, cycles_instruction, notes",
        ),
        (
            lambda d: d["supply_v"].update(value=0),
            "supply_v.value: expected a finite number > 0, got 0",
        ),
        (
            lambda d: d["supply_v"].update(value=float("inf")),
            "supply_v.value: expected a finite number > 0, got inf",
        ),
    ],
)
def test_validation_errors_name_file_key_expected_and_found(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], object], message: str
) -> None:
    path = _write(tmp_path, mutate)
    with pytest.raises(SchemaError) as info:
        load_profile(path)
    assert info.value.lines == [f"{path}: {message}"]


def test_every_problem_of_a_profile_is_reported_at_once(tmp_path: Path) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["clock_hz"]["value"] = -1
        d["cycles_float32"]["mac"].pop("source")
        d["cycles_float32"].pop("exp")
        d["clock"] = 1

    path = _write(tmp_path, mutate)
    with pytest.raises(SchemaError) as info:
        load_profile(path)
    assert [line.removeprefix(f"{path}: ").split(":")[0] for line in info.value.lines] == [
        "clock_hz.value",
        "cycles_float32.mac.source",
        "cycles_float32.exp",
        "clock",
    ]


def test_every_source_is_kept_on_one_line() -> None:
    profile = load_profile("stm32l496zg")
    mac = profile.source("cycles_float32.mac")
    assert mac.basis == "calibrated" and "\n" not in mac.source
    assert mac.source.startswith("Calibrated on craighero2023 Table III row (60, 3)")


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SchemaError, match="broken.yaml: line 2, column 1: invalid YAML"):
        load_profile(bad)
    with pytest.raises(SchemaError, match="absent.yaml: file not found"):
        load_profile(tmp_path / "absent.yaml")
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n")
    with pytest.raises(SchemaError, match="expected a mapping of keys at the top level"):
        load_profile(top)

"""Scenario validation: every problem is one line naming the file, the key path, what was
expected and what was found, all of a file's problems at once; renamed keys still load under
their old names; the shipped scenarios are valid; docs/scenario.md is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedhar.schema.base import SchemaError
from fedhar.schema.docs import schema_markdown
from fedhar.schema.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
GOOD = "name: t\ndata:\n  dataset: synthetic\n"


def _errors(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(SchemaError) as info:
        load_scenario(path)
    assert str(info.value) == "\n".join(info.value.lines)
    assert all(line.startswith(f"{path}: ") for line in info.value.lines)
    return [line.removeprefix(f"{path}: ") for line in info.value.lines]


def _error(tmp_path: Path, text: str) -> str:
    (message,) = _errors(tmp_path, text)
    return message


@pytest.mark.parametrize(
    "name", ["quickstart", "wisdm_loso", "wisdm2019_loso", "wisdm2019_loso_daghero", "hapt_loso"]
)
def test_shipped_scenarios_are_valid(name: str) -> None:
    scenario = load_scenario(REPO / "scenarios" / f"{name}.yaml")
    assert scenario.name == name


def test_defaults(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(GOOD)
    s = load_scenario(path)
    assert (s.data.window, s.data.stride, s.split.method, s.model.name) == (100, 50, "loso", "cnn3")
    assert s.personalization.lr == 0.01 and s.personalization.batch_size == 32
    assert s.personalization.warmup_epochs == 2 and s.personalization.tl_layers == 2
    assert s.mcu.profile == "stm32l496zg" and s.federation.engine == "inprocess"


def test_wrong_type(tmp_path: Path) -> None:
    msg = _error(tmp_path, GOOD + "pretrain:\n  lr: fast\n")
    assert msg == "pretrain.lr: expected a finite number > 0, got 'fast'"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    msg = _error(tmp_path, GOOD + "foo: 1\n")
    assert msg.startswith("foo: unknown key, expected one of: name, seed, data, split, model,")


def test_unknown_nested_key(tmp_path: Path) -> None:
    msg = _error(tmp_path, GOOD + "  windw: 100\n")
    assert msg.startswith("data.windw: unknown key, expected one of: dataset, data_dir, classes,")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = "data:\n  dataset: synthetic\n  windw: 100\npretrain:\n  lr: fast\n"
    assert _errors(tmp_path, text) == [
        "name: missing required key, expected a non-empty string",
        "data.windw: unknown key, expected one of: dataset, data_dir, classes, channels, "
        "recording_device, target_fs, window, stride, train_fraction, options",
        "pretrain.lr: expected a finite number > 0, got 'fast'",
    ]


BATTERY = """\
  capacity_mah: 1
  modes: {clock_hz: 1.0e6, rows: [{th: 0, f1: 0.5, p_easy: 1, cycles_avg: 1, energy_uj_avg: 1}]}
"""


def test_battery_policies_are_checked_at_load_with_their_key_paths(tmp_path: Path) -> None:
    text = (
        GOOD
        + "battery:\n"
        + BATTERY
        + (
            "  charging: {name: nighty}\n"
            "  personalization: {name: energy_budget, params: {reserve: 0.1}}\n"
            "  threshold: {name: stepwise, params: {steps: [[0.1, 0.5], [0.05, 1.0]]}}\n"
            "  update_bytes: {full: 3, half: 2}\n"
        )
    )
    assert _errors(tmp_path, text) == [
        "battery.update_bytes.half: expected one of 'full', 'tl', got 'half'",
        "battery.charging.name: expected one of 'never', 'nightly', 'random', got 'nighty'",
        "battery.personalization.params.reserve: unknown key, expected one of: reserve_soc, "
        "budget_share",
        "battery.threshold.params.steps: expected soc_min strictly increasing from 0, got "
        "[0.1, 0.05]",
    ]
    missing = GOOD + "battery:\n  capacity_mah: 1\n  modes: {clock_hz: 1.0e6}\n"
    assert _error(tmp_path, missing) == "battery.modes: expected csv or rows, got neither"
    partial = GOOD + "battery:\n" + BATTERY + "  threshold: {name: linear, params: {th_min: 0}}\n"
    assert _error(tmp_path, partial) == (
        "battery.threshold.params.th_max: missing required key, expected a finite number"
    )


def test_old_key_names_load_the_same_scenario(tmp_path: Path) -> None:
    new, old = tmp_path / "new.yaml", tmp_path / "old.yaml"
    new.write_text(
        GOOD + "  recording_device: watch\nbattery:\n" + BATTERY + "  cell: {model: coulomb}\n"
    )
    old.write_text(GOOD + "  device: watch\ndevice:\n" + BATTERY + "  battery: {model: coulomb}\n")
    scenario = load_scenario(new)
    assert scenario == load_scenario(old)
    assert scenario.data.recording_device == "watch"
    assert scenario.battery is not None and scenario.battery.cell.model == "coulomb"
    assert _error(tmp_path, GOOD + "  device: watch\n  recording_device: watch\n") == (
        "data.device: old name of 'recording_device', which is also given: keep one"
    )


def test_missing_required(tmp_path: Path) -> None:
    msg = _error(tmp_path, "name: t\ndata:\n  window: 100\n")
    assert msg.startswith("data.dataset: missing required key, expected one of 'wisdm',")


def test_out_of_range_and_choice(tmp_path: Path) -> None:
    assert _error(tmp_path, GOOD + "  window: 500\n") == (
        "data.window: expected an integer >= 20 and <= 200, got 500"
    )
    assert _error(tmp_path, GOOD + "personalization:\n  modes: [none, fancy]\n") == (
        "personalization.modes.1: expected one of 'none', 'tl', 'full', 'no_pretrain', got 'fancy'"
    )


def test_c_engine_with_a_batchnorm_model_is_refused_at_load(tmp_path: Path) -> None:
    text = GOOD + "model:\n  name: daghero\npretrain:\n  engine: c\n"
    assert _error(tmp_path, text) == (
        "pretrain.engine: expected torch or auto for a model with BatchNorm layers (the C "
        "library trains BatchNorm with frozen statistics), got c with model daghero"
    )
    assert (
        load_scenario(_written(tmp_path, GOOD + "pretrain:\n  engine: c\n")).pretrain.engine == "c"
    )


def _written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ok.yaml"
    path.write_text(text)
    return path


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    msg = _error(tmp_path, GOOD + "split:\n  method: [loso\n")
    assert msg.startswith("line 6, column 1: invalid YAML: ")


def test_not_a_mapping(tmp_path: Path) -> None:
    assert _error(tmp_path, "- a\n- b\n").startswith("expected a mapping of keys")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="absent.yaml: file not found"):
        load_scenario(tmp_path / "absent.yaml")


def test_docs_are_current_and_cover_every_file() -> None:
    text = schema_markdown()
    assert (REPO / "docs" / "scenario.md").read_text() == text
    for heading in (
        "### `battery`",
        "### `battery.cell`",
        "### `battery.modes.rows[]`",
        "### `battery.training`",
        "### `adaptive`",
        "### `study`",
        "### `replay`",
        "#### `stepwise`",
        "### `cycles_float32`",
    ):
        assert f"\n{heading}\n" in text, heading
    assert "| run, adaptive | `data.recording_device` | `device` |" in text

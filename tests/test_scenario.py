"""Scenario validation: every problem is one line naming the file, the key path and the
expectation; the shipped scenarios are valid; docs/scenario.md is current."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedhar.schema.scenario import ScenarioError, load_scenario, schema_markdown

REPO = Path(__file__).resolve().parents[1]
GOOD = "name: t\ndata:\n  dataset: synthetic\n"


def _error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


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
    assert msg == "pretrain.lr: expected a number > 0, got 'fast'"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    msg = _error(tmp_path, GOOD + "foo: 1\n")
    assert msg.startswith("unknown key 'foo' (allowed: name, seed, data, split, model,")


def test_unknown_nested_key(tmp_path: Path) -> None:
    msg = _error(tmp_path, GOOD + "  windw: 100\n")
    assert msg.startswith("data: unknown key 'windw' (allowed: dataset, data_dir, classes,")


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


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    msg = _error(tmp_path, GOOD + "split:\n  method: [loso\n")
    assert msg.startswith("line ") and "invalid YAML" in msg


def test_not_a_mapping(tmp_path: Path) -> None:
    assert _error(tmp_path, "- a\n- b\n").startswith("expected a mapping of keys")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="file not found"):
        load_scenario(tmp_path / "absent.yaml")


def test_docs_are_current() -> None:
    assert (REPO / "docs" / "scenario.md").read_text() == schema_markdown()

"""Deployed bytes (Table 3 accounting) and the adaptive scenario section."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedhar.adaptive.memory import (
    adaptive_bytes,
    bn_overhead_fraction,
    private_bytes,
    static_bytes,
    weight_bytes,
)
from fedhar.adaptive.slim import build_slim
from fedhar.models.spec import daghero_cnn
from fedhar.schema.adaptive import AdaptiveConfig, load_adaptive_scenario
from fedhar.schema.base import SchemaError

REPO = Path(__file__).resolve().parents[2]


def test_bytes_by_hand() -> None:
    net = build_slim(
        daghero_cnn(3, 16, 5, channels=(8, 8, 16), kernels=(7, 7, 7)), (0.25, 1.0), seed=0
    )
    weights = 8 * 3 * 7 + 8 * 8 * 7 + 16 * 8 * 7 + 5 * 16
    assert weight_bytes(net) == weights
    assert private_bytes(net, 1.0) == 9 * (8 + 8 + 16) + 8 * 5
    assert private_bytes(net, 0.25) == 9 * (2 + 2 + 4) + 8 * 5
    assert static_bytes(net) == weights + 9 * 32 + 40 + 4
    assert adaptive_bytes(net, (0.25, 1.0)) == static_bytes(net) + 9 * 8 + 40
    assert bn_overhead_fraction(net, (0.25, 1.0)) == pytest.approx(112 / static_bytes(net))


def test_scenario_file_parses() -> None:
    scenario, cfg = load_adaptive_scenario(REPO / "scenarios" / "wisdm2019_adaptive.yaml")
    assert scenario.data.dataset == "wisdm2019" and scenario.data.target_fs == 20
    assert cfg.small_widths == [0.25, 0.5] and cfg.thresholds == 100


def test_bad_adaptive_section_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ndata: {dataset: synthetic}\nadaptive: {grid_kernels: [8]}\n")
    with pytest.raises(SchemaError, match=r"s.yaml: adaptive.grid_kernels: expected odd"):
        load_adaptive_scenario(path)
    path.write_text("name: x\ndata: {dataset: synthetic}\nadaptive: {bogus: 1}\n")
    with pytest.raises(SchemaError, match=r"adaptive.bogus: unknown key"):
        load_adaptive_scenario(path)
    with pytest.raises(ValueError):
        AdaptiveConfig(grid_channels=[[3, 8, 8]])

"""Fixtures of the federation tests: a tiny synthetic scenario and a small-SRAM device."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from fedhar.mcu.profile import resolve_profile_name

REPO = Path(__file__).resolve().parents[2]

TINY = """\
name: tiny-federation
seed: 0
data:
  dataset: synthetic
  options: {{n_users: {n_users}, seconds_per_activity: 24}}
  window: 40
  stride: 20
pretrain: {{epochs: 2, patience: 1, val_fraction: 0.0}}
personalization:
  modes: {modes}
  epochs: {epochs}
  lr: {lr}
federation: {{rounds: {rounds}, aggregation: {aggregation}, payload: {payload}{bits}{federation}}}
"""


def write_scenario(
    directory: Path,
    *,
    n_users: int = 3,
    modes: str = "[none, tl, full]",
    epochs: int = 1,
    lr: float = 0.01,
    rounds: int = 1,
    aggregation: str = "none",
    payload: str = "int8",
    bits: str = "",
    federation: str = "",
) -> Path:
    """A synthetic scenario small enough for a test (seconds per run); ``bits`` is the flow
    mapping of a ``mixed`` payload's ``federation.bits``; ``federation`` more keys of that
    section, as flow-mapping text (``, compression: qat``)."""
    path = directory / "tiny.yaml"
    path.write_text(
        TINY.format(
            n_users=n_users, modes=modes, epochs=epochs, lr=lr, rounds=rounds,
            aggregation=aggregation, payload=payload, bits=f", bits: {bits}" if bits else "",
            federation=federation,
        )
    )  # fmt: skip
    return path


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Pretraining and parse caches in a directory shared by this session's tests only."""
    cache = tmp_path_factory.getbasetemp() / "fedhar-cache"
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(cache))
    os.environ.setdefault("CI", "true")


@pytest.fixture()
def tiny_scenario(tmp_path: Path) -> Path:
    return write_scenario(tmp_path)


@pytest.fixture()
def small_sram_profile(tmp_path: Path) -> Path:
    """The STM32L496 profile with 48 KB of SRAM: too small to train cnn3 on 40x3 windows."""
    source = REPO / "fedhar" / "mcu" / "profiles" / f"{resolve_profile_name('stm32l496zg')}.yaml"
    text = source.read_text()
    text = re.sub(r"(?m)^name: .*$", "name: small_sram", text)
    text = re.sub(r"(?m)^aliases: .*$", "aliases: []", text)
    text = re.sub(r"(sram_bytes:\n  value: )\d+", r"\g<1>49152", text)
    path = tmp_path / "small_sram.yaml"
    path.write_text(text)
    return path


def battery_scenario(
    directory: Path, name: str, n_users: int, federation: dict, battery: dict
) -> Path:
    """``scenarios/quickstart_battery.yaml`` cut to test size: ``n_users`` synthetic users
    with short recordings, one epoch of Full (no warm-up), never charged, no low-battery skip;
    ``federation`` replaces its section and ``battery`` updates its section."""
    raw = yaml.safe_load((REPO / "scenarios" / "quickstart_battery.yaml").read_text())
    raw["name"] = name
    raw["data"].update(window=40, stride=20)
    raw["data"]["options"] = {"n_users": n_users, "seconds_per_activity": 24}
    raw["pretrain"].update(epochs=2, patience=1, val_fraction=0.0)
    raw["personalization"] = {"modes": ["none", "full"], "epochs": 1, "warmup_epochs": 0}
    raw["federation"] = federation
    raw["battery"].pop("skip_below_soc")
    raw["battery"].update(charging={"name": "never"}, **battery)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path

"""The device's local data and hardware: which user a node holds, and on which MCU.

A node's ``partition-id`` indexes the scenario's participating users in dataset order, as
:func:`fedhar.studies.pipeline.prepare` lists them. The prepared windows of a scenario are read once
per process and shared read-only by the nodes that process hosts (the in-process engine hosts them
all); each node takes only its own user's TR_i and TS_i.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from flwr.app import UserConfig

from clients.personalize import UserData
from fedhar.mcu import McuProfile, load_profile
from fedhar.models.spec import ModelSpec
from fedhar.schema.scenario import BatteryDeviceConfig, load_scenario
from fedhar.studies.pipeline import prepared


@dataclass(frozen=True)
class Device:
    """One simulated MCU and its user's raw windows.

    Attributes:
        user: user id.
        spec: the model the device trains.
        profile: the device's MCU profile.
        x_train: ``[N_tr, C, T]`` float32 TR_i, sensor units.
        y_train: ``[N_tr]`` class indices.
        x_test: ``[N_ts, C, T]`` float32 TS_i, sensor units.
        y_test: ``[N_ts]`` class indices.
        battery: the scenario's ``device:`` section (None: no battery).
        scenario_dir: directory of the scenario file (relative paths of ``battery``).
        seed: the scenario's seed.
    """

    user: str
    spec: ModelSpec
    profile: McuProfile
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    battery: BatteryDeviceConfig | None = None
    scenario_dir: Path = Path(".")
    seed: int = 0

    def normalized(self, mean: list[float], std: list[float]) -> UserData:
        """The windows standardized per channel with the fold's normalizer (mean, std ``[C]``)."""
        m = np.asarray(mean, dtype=np.float64)[None, :, None]
        s = np.asarray(std, dtype=np.float64)[None, :, None]
        if m.shape[1] != self.x_train.shape[1]:
            raise ValueError(
                f"normalizer has {m.shape[1]} channels, the windows have {self.x_train.shape[1]}"
            )
        return UserData(
            x_train=((self.x_train - m) / s).astype(np.float32),
            y_train=self.y_train,
            x_test=((self.x_test - m) / s).astype(np.float32),
            y_test=self.y_test,
            n_classes=self.spec.n_classes,
        )


def load_device(run_config: UserConfig, node_config: UserConfig) -> Device:
    """The device of a node: run config ``scenario`` (and optional ``data-dir``), node config
    ``partition-id`` (and optional ``mcu-profile``, a profile name or YAML path).

    Raises:
        ValueError: a missing or out-of-range ``partition-id``.
    """
    scenario_path = str(run_config["scenario"])
    data_dir = str(run_config.get("data-dir", "")) or None
    if "partition-id" not in node_config:
        raise ValueError("node config lacks 'partition-id' (start the node with one)")
    pid = int(node_config["partition-id"])
    data = prepared(scenario_path, data_dir)
    users = list(data.users)
    if not 0 <= pid < len(users):
        raise ValueError(
            f"partition-id {pid} is out of range: scenario {scenario_path} has {len(users)} "
            f"users (0..{len(users) - 1})"
        )
    scenario = load_scenario(scenario_path)
    profile_name = str(node_config.get("mcu-profile", "")) or scenario.mcu.profile
    local = data.users[users[pid]]
    return Device(
        user=local.user,
        spec=data.spec,
        profile=_profile(profile_name),
        x_train=local.train.x,
        y_train=local.train.y,
        x_test=local.test.x,
        y_test=local.test.y,
        battery=scenario.device,
        scenario_dir=Path(scenario_path).parent,
        seed=scenario.seed,
    )


@lru_cache(maxsize=16)
def _profile(name: str) -> McuProfile:
    return load_profile(name)

"""What a Flower node holds: which users' data, and on which MCU.

A node's ``partition-id`` p and ``num-partitions`` n pick its users among the scenario's
participating users in dataset order (as :func:`fedhar.studies.pipeline.prepare` lists them):
p, p + n, p + 2n, ... With one node per user (the engines' default) each node holds one user.
The prepared windows of a scenario are read once per process and shared read-only by the
nodes that process hosts (the in-process engine hosts them all); each client takes only its
own user's TR_i and TS_i.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from flwr.app import UserConfig

from clients.personalize import NormalizedData
from fedhar.mcu import McuProfile, load_profile
from fedhar.models.spec import ModelSpec
from fedhar.schema.scenario import BatteryConfig, Scenario, load_scenario
from fedhar.studies.pipeline import prepared
from fedhar.wearable.devices import assign_devices
from fedhar.wire.protocol import run_paths

APP_DIR = Path(__file__).resolve().parents[1]
"""The Flower app's directory (the repository, or where a SuperNode unpacked the app)."""


@dataclass(frozen=True)
class LocalUser:
    """One user's raw windows on a node, and the MCU that personalizes for that user.

    Attributes:
        user: user id.
        spec: the model the MCU trains.
        profile: the MCU's profile.
        x_train: ``[N_tr, C, T]`` float32 TR_i, sensor units.
        y_train: ``[N_tr]`` class indices.
        x_test: ``[N_ts, C, T]`` float32 TS_i, sensor units.
        y_test: ``[N_ts]`` class indices.
        battery: the scenario's ``battery:`` section (None: no battery).
        scenario_dir: directory of the scenario file (relative paths of ``battery``).
        seed: the scenario's seed.
        capacity_mah: the user's battery capacity, mAh (0 without a battery).
    """

    user: str
    spec: ModelSpec
    profile: McuProfile
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    battery: BatteryConfig | None = None
    scenario_dir: Path = Path(".")
    seed: int = 0
    capacity_mah: float = 0.0

    def normalized(self, mean: list[float], std: list[float]) -> NormalizedData:
        """The windows standardized per channel with the fold's normalizer (mean, std ``[C]``)."""
        m = np.asarray(mean, dtype=np.float64)[None, :, None]
        s = np.asarray(std, dtype=np.float64)[None, :, None]
        if m.shape[1] != self.x_train.shape[1]:
            raise ValueError(
                f"normalizer has {m.shape[1]} channels, the windows have {self.x_train.shape[1]}"
            )
        return NormalizedData(
            x_train=((self.x_train - m) / s).astype(np.float32),
            y_train=self.y_train,
            x_test=((self.x_test - m) / s).astype(np.float32),
            y_test=self.y_test,
            n_classes=self.spec.n_classes,
        )


def node_users(run_config: UserConfig, node_config: UserConfig) -> list[str]:
    """The users a node holds: with node config ``partition-id`` p and ``num-partitions`` n
    (default: one node per user), the scenario's users p, p + n, p + 2n, ... in dataset order.
    So any number of nodes serves every user once; a node past the last user holds none.

    Raises:
        ValueError: a missing or negative ``partition-id``, or ``num-partitions`` < 1.
    """
    paths = run_paths(run_config, APP_DIR)
    users = list(prepared(paths.scenario, paths.data_dir).users)
    if "partition-id" not in node_config:
        raise ValueError("node config lacks 'partition-id' (start the node with one)")
    pid = int(node_config["partition-id"])
    n = int(node_config.get("num-partitions", len(users)))
    if pid < 0 or n < 1:
        raise ValueError(
            f"node config: expected partition-id >= 0 and num-partitions >= 1, got {pid}, {n}"
        )
    return users[pid::n]


def load_user(run_config: UserConfig, node_config: UserConfig, user: str) -> LocalUser:
    """``user``'s data on this node and the MCU it runs on (:func:`node_profile`).

    Raises:
        ValueError: the node does not hold ``user``.
    """
    if user not in node_users(run_config, node_config):
        raise ValueError(f"message for user {user!r} reached a node that does not hold it")
    paths = run_paths(run_config, APP_DIR)
    data = prepared(paths.scenario, paths.data_dir)
    scenario = _scenario(paths.scenario)
    local = data.users[user]
    device = assign_devices(scenario, list(data.users))[user]
    return LocalUser(
        user=local.user,
        spec=data.spec,
        profile=node_profile(run_config, node_config, device.profile),
        x_train=local.train.x,
        y_train=local.train.y,
        x_test=local.test.x,
        y_test=local.test.y,
        battery=scenario.battery,
        scenario_dir=Path(paths.scenario).parent,
        seed=scenario.seed,
        capacity_mah=device.capacity_mah,
    )


def node_profile(run_config: UserConfig, node_config: UserConfig, assigned: str = "") -> McuProfile:
    """The MCU of this node's clients: node config ``mcu-profile`` (a profile name or YAML
    path), else the user's ``assigned`` profile (:func:`fedhar.wearable.devices.assign_devices`),
    else the scenario's ``mcu.profile``."""
    name = str(node_config.get("mcu-profile", "")) or assigned
    return _profile(name or _scenario(run_paths(run_config, APP_DIR).scenario).mcu.profile)


@lru_cache(maxsize=16)
def _profile(name: str) -> McuProfile:
    return load_profile(name)


@lru_cache(maxsize=4)
def _scenario(path: str) -> Scenario:
    """The scenario, read once per process (as :func:`~fedhar.studies.pipeline.prepared`
    reads its data), not on every message."""
    return load_scenario(path)

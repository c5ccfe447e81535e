"""Which device each user wears, and how long a federation round takes on it.

A scenario's ``battery:`` section may give the users different batteries
(``capacities_mah``) and MCU profiles (``profiles``), by list or by a seeded draw
(``assign``); :func:`assign_devices` says who gets what. The server and the clients call it
with the same scenario and users, so both sides agree without telling each other.

A client's round time (:func:`round_seconds`) is its job's MCU time (counted cycles over the
profile's clock) plus its transfers over the scenario's radio link, at the link's effective
throughput (``fedhar/wearable/data/links.yaml``, each rate with its source).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import yaml

from fedhar.schema.scenario import Scenario

LINKS_FILE = Path(__file__).with_name("data") / "links.yaml"


@dataclass(frozen=True)
class Device:
    """One user's device.

    Attributes:
        profile: MCU profile name.
        capacity_mah: battery capacity, mAh (0 without a battery section).
    """

    profile: str
    capacity_mah: float


def assign_devices(scenario: Scenario, users: Sequence[str]) -> dict[str, Device]:
    """user → :class:`Device`, for ``users`` in dataset order.

    With ``assign: list`` the i-th user takes item ``i mod len`` of each list; with ``draw``
    each user draws one item of each list uniformly, from a generator seeded by the
    scenario's seed and the user id (so adding a user changes no one else's device).
    """
    battery = scenario.battery
    profiles = (battery.profiles if battery else None) or [scenario.mcu.profile]
    capacities = (battery.capacities_mah if battery else None) or [
        battery.capacity_mah if battery else 0.0
    ]
    out: dict[str, Device] = {}
    for i, user in enumerate(users):
        if battery is not None and battery.assign == "draw":
            rng = np.random.default_rng([scenario.seed, zlib.crc32(user.encode())])
            p, c = int(rng.integers(len(profiles))), int(rng.integers(len(capacities)))
        else:
            p, c = i % len(profiles), i % len(capacities)
        out[user] = Device(profile=str(profiles[p]), capacity_mah=float(capacities[c]))
    return out


@lru_cache(maxsize=4)
def link_bytes_per_s(name: str, path: Path = LINKS_FILE) -> float:
    """The effective throughput of link ``name`` in ``path``, bytes per second.

    Raises:
        KeyError: no such link in the file.
    """
    links = yaml.safe_load(path.read_text(encoding="utf-8"))
    if name not in links:
        raise KeyError(f"{path}: no link {name!r}; expected one of {sorted(links)}")
    return float(links[name]["bytes_per_s"])


def round_seconds(job_s: float, bytes_down: int, bytes_up: int, bytes_per_s: float) -> float:
    """A client's round time, s: ``job_s`` (its job's counted cycles over its MCU clock) plus
    the ``bytes_down + bytes_up`` it moved at ``bytes_per_s``."""
    return float(job_s) + (int(bytes_down) + int(bytes_up)) / float(bytes_per_s)

"""The power rail: loads drawing on a battery in SimPy time.

Each load (sensor, inference, training, radio, sleep) sets its power in W; the charger
sets a negative power. Between changes the power is constant, so the rail integrates the
battery in closed form and books ``power · dt`` to each load: the energy booked to the
loads is exactly the energy the battery delivered. A timer armed at every change fires
when the available charge crosses the cut-off (the rail then cuts the device off) or, on a
dead device, the restart level (the device comes back).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import simpy

from fedhar.wearable.battery import Battery
from fedhar.wearable.loads import LOADS

RAIL_HORIZON_S = 6 * 3600.0
"""The default KiBaM look-ahead of :class:`PowerRail` (s): a control tick re-arms the timer
every few minutes, so a pending timer that fires early is kept and checks rarely."""


class PowerRail:
    """Loads and charger on one battery.

    Args:
        env: the SimPy environment.
        battery: the battery, advanced in place.
        alive: whether the device is on at ``env.now``.
        on_cutoff: called when the available charge reaches the cut-off.
        on_revive: called when a cut-off device's available charge reaches the restart level.
        horizon_s: for KiBaM, look this far ahead (s) for a crossing before searching for it
            exactly; without one in sight, the timer only checks again at the horizon. A
            longer horizon fires fewer timers and searches more often near a crossing.
    """

    def __init__(
        self,
        env: simpy.Environment,
        battery: Battery,
        alive: bool,
        on_cutoff: Callable[[], None],
        on_revive: Callable[[], None],
        horizon_s: float = RAIL_HORIZON_S,
    ) -> None:
        self.env = env
        self.battery = battery
        self.alive = alive
        self.watts: dict[str, float] = dict.fromkeys(LOADS, 0.0)
        self.charger_w = 0.0
        self.energy_j: dict[str, float] = dict.fromkeys(LOADS, 0.0)
        self.charged_j = 0.0
        self.dead_s = 0.0
        self._on_cutoff = on_cutoff
        self._on_revive = on_revive
        self._horizon_s = horizon_s
        spec = battery.spec
        full_available = spec.available_fraction * spec.capacity_c
        self._cutoff_c = spec.cutoff_soc * full_available
        self._restart_c = spec.restart_soc * full_available
        # Crossing times are floats: a crossing within this charge (C) counts as reached.
        self._tol_c = 1e-9 * spec.capacity_c
        self._last_t = env.now
        self._token = 0
        self._due = math.inf  # when the pending timer fires (s), math.inf when none is
        self._rearm()

    @property
    def current_a(self) -> float:
        """Net battery current in A (> 0 drains)."""
        return (sum(self.watts.values()) + self.charger_w) / self.battery.spec.voltage_v

    def settle(self) -> None:
        """Advances the battery and the energy books to ``env.now``."""
        dt = self.env.now - self._last_t
        if dt <= 0:
            return
        self.battery.step(self.current_a, dt)
        for name, w in self.watts.items():
            if w:
                self.energy_j[name] += w * dt
        self.charged_j -= self.charger_w * dt
        if not self.alive:
            self.dead_s += dt
        self._last_t = self.env.now

    def set(self, loads: Mapping[str, float]) -> None:
        """Sets the power of some loads, in W, from now on."""
        self.settle()
        for name, w in loads.items():
            if name not in self.watts:
                raise ValueError(f"load: expected one of {LOADS}, got {name!r}")
            self.watts[name] = w
        self._rearm()

    def set_charger(self, watts: float) -> None:
        """Sets the charging power in W (>= 0) from now on."""
        self.settle()
        self.charger_w = -watts
        self._rearm()

    def _rearm(self) -> None:
        """Makes sure a timer fires no later than the next crossing. A pending timer that
        fires earlier is kept: it checks, and re-arms, when it fires."""
        level = self._cutoff_c if self.alive else self._restart_c
        if self._reached():
            delay = 0.0
        elif self.battery.spec.model == "kibam":
            delay = self._kibam_delay(level)
        else:
            delay = self.battery.time_to_available(level, self.current_a)
        due = self.env.now + delay
        if self._due <= due:
            return
        self._token += 1
        token = self._token
        self._due = due
        if math.isinf(delay):
            return
        self.env.timeout(delay).callbacks.append(lambda _event: self._check(token))

    def _kibam_delay(self, level: float) -> float:
        ahead = self.battery.available_after(self.current_a, self._horizon_s)
        crossed = ahead <= level if self.alive else ahead >= level
        if not crossed:
            return self._horizon_s
        return self.battery.time_to_available(level, self.current_a)

    def _check(self, token: int) -> None:
        if token != self._token:
            return
        self._due = math.inf
        self.settle()
        if self._reached():
            self.alive = not self.alive
            if self.alive:
                self._on_revive()
            else:
                self._on_cutoff()
        self._rearm()

    def _reached(self) -> bool:
        """Whether the available charge is at the cut-off (alive) or restart level (dead)."""
        available = self.battery.available_c
        if self.alive:
            return available <= self._cutoff_c + self._tol_c
        return available >= self._restart_c - self._tol_c

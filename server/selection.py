"""Choosing each round's participants from what the clients reported.

The server knows of a client only what the client told it at the end of its last round
(:class:`Report`): its state of charge, whether its device was on, and, once it has trained,
its last training loss, its TR_i size and what its round cost in energy. Round 1 has no
reports: every device counts as full (state of charge 1), on, with no loss or energy figure.

Strategies (``federation.selection.strategy``, :data:`STRATEGIES`):

* ``all``: every client;
* ``random``: ``k`` clients uniformly at random;
* ``battery_threshold``: every client that is on with a state of charge >= ``soc_min``;
* ``soc_weighted``: ``k`` clients that are on, drawn without replacement with probability
  proportional to the state of charge;
* ``utility``, in the spirit of EAFL (Arouj & Abdelmoniem 2022, arXiv:2208.04505): score
  ``u_i = s_i / max_j s_j - w E_i / E_left_i`` with statistical utility ``s_i = L_i sqrt(n_i)``
  (``L_i`` the last reported training loss, ``n_i`` the TR_i windows; a client not yet heard
  from takes the largest ``s`` seen, or 1), ``E_i`` the training and radio energy of its last
  round in the federation (J, 0 when unknown) and ``E_left_i = soc_i x capacity`` (J); clients
  that are off or would run dry (``E_i >= E_left_i``) are left out, and the ``k`` best are
  taken (ties: user order). ``w`` is ``energy_weight``.

Draws come from a generator seeded by the scenario's seed and the round, so a resumed run
chooses the same clients.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from fedhar.enums import Status
from fedhar.results.record import ClientRecord
from fedhar.schema.scenario import SelectionConfig


@dataclass(frozen=True)
class Report:
    """What a client last told the server.

    Attributes:
        soc: state of charge at the end of its last round, a fraction (1 before any report).
        on: whether its device was on then.
        capacity_j: its battery's energy when full, J (0 without a battery).
        loss: its last training loss (mean batch cross-entropy of its last epoch), None
            before it trained.
        n_train: its TR_i windows, None before it trained.
        energy_j: training and radio energy of its last round in the federation, J (None
            before it trained).
    """

    soc: float = 1.0
    on: bool = True
    capacity_j: float = 0.0
    loss: float | None = None
    n_train: int | None = None
    energy_j: float | None = None


def report_of(last: ClientRecord | None, trained: ClientRecord | None, capacity_j: float) -> Report:
    """The :class:`Report` of a client from its ``last`` record with a battery and its last
    ``trained`` (``ok``) record, either None before it sent one."""
    soc, on = 1.0, True
    if last is not None and last.battery is not None:
        soc, on = last.battery.soc_end, last.battery.alive
    if trained is None or trained.status != Status.OK:
        return Report(soc, on, capacity_j)
    losses = [m.curve["loss"][-1] for m in trained.modes.values() if m.curve.get("loss")]
    energy = None
    if trained.battery is not None:
        spent = trained.battery.energy_j_by_load
        energy = spent.get("training", 0.0) + spent.get("radio", 0.0)
    loss = losses[-1] if losses else None
    return Report(soc, on, capacity_j, loss, trained.n_train, energy)


Rule = Callable[[SelectionConfig, Mapping[str, Report], np.random.Generator], list[str]]


def _all(
    cfg: SelectionConfig, reports: Mapping[str, Report], rng: np.random.Generator
) -> list[str]:
    return list(reports)


def _random(
    cfg: SelectionConfig, reports: Mapping[str, Report], rng: np.random.Generator
) -> list[str]:
    users = list(reports)
    k = min(int(cfg.k or len(users)), len(users))
    return [users[i] for i in sorted(rng.choice(len(users), size=k, replace=False))]


def _threshold(
    cfg: SelectionConfig, reports: Mapping[str, Report], rng: np.random.Generator
) -> list[str]:
    return [u for u, r in reports.items() if r.on and r.soc >= cfg.soc_min]


def _soc_weighted(
    cfg: SelectionConfig, reports: Mapping[str, Report], rng: np.random.Generator
) -> list[str]:
    users = [u for u, r in reports.items() if r.on and r.soc > 0]
    k = min(int(cfg.k or len(users)), len(users))
    if k == 0:
        return []
    weights = np.array([reports[u].soc for u in users], dtype=np.float64)
    picked = rng.choice(len(users), size=k, replace=False, p=weights / weights.sum())
    return [users[i] for i in sorted(picked)]


def utility_scores(reports: Mapping[str, Report], energy_weight: float) -> dict[str, float]:
    """user → ``u_i`` (module docstring) for the clients that are on and would not run dry."""
    stat = {
        u: r.loss * math.sqrt(r.n_train)
        for u, r in reports.items()
        if r.loss is not None and r.n_train is not None
    }
    top = max(stat.values(), default=1.0) or 1.0
    scores: dict[str, float] = {}
    for user, r in reports.items():
        left_j = r.soc * r.capacity_j
        spend_j = r.energy_j or 0.0
        if not r.on or left_j <= 0 or spend_j >= left_j:
            continue
        scores[user] = stat.get(user, top) / top - energy_weight * spend_j / left_j
    return scores


def _utility(
    cfg: SelectionConfig, reports: Mapping[str, Report], rng: np.random.Generator
) -> list[str]:
    scores = utility_scores(reports, cfg.energy_weight)
    order = list(reports)
    best = sorted(scores, key=lambda u: (-scores[u], order.index(u)))[: int(cfg.k or 0)]
    return [u for u in order if u in best]


STRATEGIES: dict[str, Rule] = {
    "all": _all,
    "random": _random,
    "battery_threshold": _threshold,
    "soc_weighted": _soc_weighted,
    "utility": _utility,
}


def select(
    cfg: SelectionConfig, round_number: int, seed: int, reports: Mapping[str, Report]
) -> list[str]:
    """The participants of ``round_number`` among ``reports`` (user → :class:`Report`, in user
    order), in that order."""
    rng = np.random.default_rng([seed, round_number])
    return STRATEGIES[cfg.strategy](cfg, reports, rng)


def not_selected_reason(cfg: SelectionConfig) -> str:
    """The reason recorded for a client the strategy did not choose."""
    detail = {
        "random": f"k {cfg.k}",
        "soc_weighted": f"k {cfg.k}",
        "utility": f"k {cfg.k}, energy_weight {cfg.energy_weight:g}",
        "battery_threshold": f"soc_min {cfg.soc_min:g}",
    }.get(cfg.strategy, "")
    return f"not selected: strategy {cfg.strategy}" + (f" ({detail})" if detail else "")

"""Every round of a run, per user: the order of the records, which one is each user's last,
and the battery's figures over the rounds.

The federation logs one :class:`~fedhar.results.record.ClientRecord` per (round, user)
outcome. :func:`user_key` orders users (numeric ids numerically), :func:`last_round_of`
names each user's highest round, and :func:`battery_section` sums a battery run's energy by
load per round and over the run, and lists each user's state of charge per round, jobs and
skipped rounds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fedhar.enums import Status
from fedhar.results.record import ClientRecord


def user_key(user: str) -> tuple[int, int, str]:
    """Sort key of a user id: numeric ids first, numerically, then the others by name."""
    return (0, int(user), "") if user.isdigit() else (1, 0, user)


def ordered_rounds(rounds: Iterable[ClientRecord]) -> list[ClientRecord]:
    """``rounds`` by user (:func:`user_key`), then round."""
    return sorted(rounds, key=lambda r: (user_key(r.user), r.round))


def last_round_of(rounds: Iterable[ClientRecord]) -> dict[str, int]:
    """user → the highest round logged for that user."""
    last: dict[str, int] = {}
    for r in rounds:
        last[r.user] = max(r.round, last.get(r.user, r.round))
    return last


def _add(total: dict[str, float], energy_j: dict[str, float]) -> None:
    for load, joules in energy_j.items():
        total[load] = total.get(load, 0.0) + joules


def battery_section(rounds: Iterable[ClientRecord]) -> dict[str, Any] | None:
    """A battery run's figures over its rounds (None when no round carries a battery).

    Returns:
        ``energy_j_by_load``: ``total`` (J by load, all users and rounds) and ``by_round``
        (round → J by load over the users that ran it); ``users``: user →
        ``energy_j_by_load`` (J by load over the user's rounds), ``soc_end`` (round → state
        of charge at its end, a fraction), ``jobs`` (personalization jobs by mode over the
        rounds) and ``skipped_rounds`` (the rounds the server skipped the user, low battery).
        Rounds are string keys, as JSON has them.
    """
    rounds = ordered_rounds(rounds)
    if not any(r.battery is not None for r in rounds):
        return None
    total: dict[str, float] = {}
    by_round: dict[str, dict[str, float]] = {}
    users: dict[str, dict[str, Any]] = {}
    for r in rounds:
        user = users.setdefault(
            r.user, {"energy_j_by_load": {}, "soc_end": {}, "jobs": {}, "skipped_rounds": []}
        )
        if r.status == Status.SKIPPED:
            user["skipped_rounds"].append(r.round)
        if r.battery is None:
            continue
        _add(total, r.battery.energy_j_by_load)
        _add(by_round.setdefault(str(r.round), {}), r.battery.energy_j_by_load)
        _add(user["energy_j_by_load"], r.battery.energy_j_by_load)
        user["soc_end"][str(r.round)] = r.battery.soc_end
        for mode, n in r.battery.jobs.items():
            user["jobs"][mode] = user["jobs"].get(mode, 0) + n
    return {"energy_j_by_load": {"total": total, "by_round": by_round}, "users": users}

"""Every round of a run, per user: the order of the records, which one is each user's last,
and the battery's figures over the rounds.

The federation logs one :class:`~fedhar.results.record.ClientRecord` per (round, user)
outcome. :func:`user_key` orders users (numeric ids numerically), :func:`last_round_of`
names each user's highest round, and :func:`battery_section` sums a battery run's energy by
load per round and over the run, lists each user's state of charge per round, jobs and
skipped rounds, and each round's participants, stragglers, drop-outs, mean state of charge and
the F1 of the model held for the users not yet joined.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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


def _mean_f1(f1: Mapping[str, float], users: list[str]) -> dict[str, Any]:
    """``mean`` F1 over ``users``, ``n_users`` and ``users`` (user → F1, in user order)."""
    values = [f1[u] for u in users]
    return {
        "mean": sum(values) / len(values) if values else None,
        "n_users": len(values),
        "users": {u: f1[u] for u in sorted(users, key=user_key)},
    }


def _round_figures(rows: list[ClientRecord], scores: Mapping[str, Any] | None) -> dict[str, Any]:
    """One round's line of :func:`battery_section`'s ``by_round`` from its ``rows``."""
    chosen = [r for r in rows if r.status != Status.SKIPPED]
    socs = [r.battery.soc_end for r in rows if r.battery is not None]
    energy: dict[str, float] = {}
    for r in rows:
        if r.battery is not None:
            _add(energy, r.battery.energy_j_by_load)
    line: dict[str, Any] = {
        "participants": [r.user for r in chosen],
        "updates": [r.user for r in chosen if r.status == Status.OK and not r.missed],
        "stragglers": [r.user for r in rows if r.missed == "deadline"],
        "dropouts": [r.user for r in rows if r.missed == "battery"],
        "not_chosen": [r.user for r in rows if r.status == Status.SKIPPED],
        "devices_off": [r.user for r in rows if r.battery is not None and not r.battery.alive],
        "energy_j_by_load": energy,
        "mean_soc": sum(socs) / len(socs) if socs else None,
    }
    if scores is not None:
        line["global_f1"] = _mean_f1(scores["f1"], list(scores["f1"]))
        line["unjoined_f1"] = _mean_f1(scores["f1"], scores["unjoined"])
    return line


def battery_section(
    rounds: Iterable[ClientRecord], global_f1: Mapping[int, Mapping[str, Any]] | None = None
) -> dict[str, Any] | None:
    """A battery run's figures over its rounds (None when no round carries a battery).

    Args:
        rounds: every logged (round, user) record.
        global_f1: round → ``{"f1": {user: F1}, "unjoined": [user, ...]}``: the macro-F1 on
            each user's TS_i of the model the server held for that user after the round, and
            the users not yet joined (never sent a model so far); the journal's
            ``OUT/global/round-<r>.json``.

    Returns:
        ``energy_j_by_load``: ``total`` (J by load, all users and rounds) and ``by_round``
        (round → J by load over the users that ran it); ``users``: user →
        ``energy_j_by_load`` (J by load over the user's rounds), ``soc_end`` (round → state
        of charge at its end, a fraction), ``jobs`` (personalization jobs by mode over the
        rounds) and ``skipped_rounds`` (the rounds the server skipped the user: low battery
        or not chosen); ``by_round``: round → ``participants`` (users sent the model),
        ``updates`` (those whose update reached the round on time), ``stragglers`` (past the
        deadline), ``dropouts`` (cut off by their battery before finishing a job),
        ``not_chosen`` (skipped), ``devices_off`` (off at the round's end),
        ``energy_j_by_load`` (J, all users), ``mean_soc`` (mean state of charge at its end)
        and, with ``global_f1``, ``global_f1`` (over every user) and ``unjoined_f1`` (over
        the users not yet joined), each ``mean``, ``n_users`` and ``users``;
        ``first_depletion_s``: the simulated time of the fleet's first cut-off (s, None:
        never). Rounds are string keys, as JSON has them.
    """
    rounds = ordered_rounds(rounds)
    if not any(r.battery is not None for r in rounds):
        return None
    per_round: dict[int, list[ClientRecord]] = {}
    for r in rounds:
        if r.round > 0:
            per_round.setdefault(r.round, []).append(r)
    by_round_lines = {
        str(n): _round_figures(rows, global_f1.get(n) if global_f1 else None)
        for n, rows in sorted(per_round.items())
    }
    depletions = [
        r.battery.first_depletion_s
        for r in rounds
        if r.battery is not None and r.battery.first_depletion_s is not None
    ]
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
    return {
        "energy_j_by_load": {"total": total, "by_round": by_round},
        "users": users,
        "by_round": by_round_lines,
        "first_depletion_s": min(depletions) if depletions else None,
    }

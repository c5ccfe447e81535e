"""What the server knows and keeps of its clients' devices from round to round.

:class:`Fleet` holds, per user, the device (MCU profile and battery,
:func:`fedhar.wearable.devices.assign_devices`), the state of its wearable that the client
replied with last (sent back with the next message, so no node keeps it), the last record it
reported (what selection reads, :mod:`server.selection`) and the updates of stragglers to be
aggregated one round late. Every outcome passes :meth:`Fleet.judge` before it is logged, which
names drop-outs and stragglers, then :meth:`Fleet.keep`; a resumed run passes the logged
outcomes through :meth:`Fleet.keep` again and so stands where the interrupted run stood.

* A **drop-out** is a client chosen for the round whose device was cut off (battery depleted)
  during it and finished no job: it could not deliver, so its record is ``failed`` (reason
  ``battery depleted``, ``missed: battery``) with the battery figures of the round kept and the
  job's figures and update dropped.
* A **straggler** is a client whose round time (:func:`fedhar.wearable.devices.round_seconds`
  of its job and transfers) passed ``federation.deadline_s``: ``missed: deadline``. Its record
  stays (it personalized, and spent the energy); its update is dropped, or with
  ``stragglers: late`` aggregated with the next round's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from fedhar.enums import Mode, Status
from fedhar.results.record import ClientOutcome, ClientRecord
from fedhar.schema.scenario import Scenario
from fedhar.wearable.devices import assign_devices, link_bytes_per_s, round_seconds
from server.selection import Report, report_of
from server.strategy import RoundUpdates

JOULES_PER_MAH_V = 3.6
"""J per mAh at 1 V."""


class Fleet:
    """The server's books of its clients' devices.

    Args:
        scenario: the run's scenario.
        users: every user of the dataset, in dataset order (device assignment order).
        present: the users that take part, in order.
    """

    def __init__(self, scenario: Scenario, users: Sequence[str], present: Sequence[str]) -> None:
        fed, battery = scenario.federation, scenario.battery
        self.present = list(present)
        self.devices = assign_devices(scenario, users)
        volts = battery.cell.voltage_v if battery is not None else 0.0
        self.capacity_j = {
            u: self.devices[u].capacity_mah * JOULES_PER_MAH_V * volts for u in self.present
        }
        self.skip_below_soc = battery.skip_below_soc if battery is not None else None
        self.deadline_s = fed.deadline_s
        self.late = fed.stragglers == "late"
        self.bytes_per_s = link_bytes_per_s(fed.link)
        self.device: dict[str, str] = {u: "" for u in self.present} if battery else {}
        self.previous: dict[str, ClientRecord] = {}
        self.current: dict[str, ClientRecord] = {}
        self._last: dict[str, ClientRecord] = {}
        self._trained: dict[str, ClientRecord] = {}
        self._carry: list[ClientOutcome] = []
        self.joined: set[str] = set()
        """Users the server has sent a model to (any outcome but ``skipped``) so far."""

    def start_round(self, updates: RoundUpdates) -> None:
        """A round starts: the last round's records become :attr:`previous`, and the late
        updates of its stragglers join ``updates``."""
        self.previous, self.current = self.current, {}
        for outcome in self._carry:
            updates.add(outcome)
        self._carry = []

    def reports(self) -> dict[str, Report]:
        """user → what the client last reported, for every present user, in order."""
        return {
            u: report_of(self._last.get(u), self._trained.get(u), self.capacity_j[u])
            for u in self.present
        }

    def judge(self, outcome: ClientOutcome, update_mode: str) -> ClientOutcome:
        """``outcome`` with its drop-out or straggler verdict (module docstring); others as
        they are."""
        r = outcome.record
        if r.status != Status.OK:
            return outcome
        if r.battery is not None and sum(r.battery.jobs.values()) == 0 and r.battery.dead_s > 0:
            reason = (
                f"battery depleted: the device was cut off for {r.battery.dead_s:.0f} s of "
                f"round {r.round} and finished no job"
            )
            dropped = replace(r, status=Status.FAILED, reason=reason, missed="battery", modes={})
            return ClientOutcome(dropped, device=outcome.device)
        if self.deadline_s is None:
            return outcome
        trained = [m for m in r.modes.values() if m.seconds > 0]
        job = r.modes.get(Mode(update_mode)) if update_mode else None
        job_s = job.seconds if job is not None else max((m.seconds for m in trained), default=0.0)
        took = round_seconds(job_s, r.payload_bytes_down, r.payload_bytes_up, self.bytes_per_s)
        if took <= self.deadline_s:
            return replace(outcome, record=replace(r, round_s=took))
        record = replace(r, round_s=took, missed="deadline")
        if self.late:
            return replace(outcome, record=record)
        return ClientOutcome(record, device=outcome.device)

    def keep(self, outcome: ClientOutcome, updates: RoundUpdates) -> None:
        """Books a logged outcome: its device's state, its report, and its update (this
        round's aggregation, the next one's for a late straggler, or none)."""
        r = outcome.record
        self.current[r.user] = r
        if r.status != Status.SKIPPED:
            self.joined.add(r.user)
        if outcome.device is not None:
            self.device[r.user] = outcome.device
        if r.battery is not None:
            self._last[r.user] = r
        if r.status == Status.OK and r.modes:
            self._trained[r.user] = r
        if r.missed == "deadline":
            if self.late and outcome.update is not None:
                self._carry.append(outcome)
            return
        updates.add(outcome)

"""The simulated wearable: a SimPy model of one device living through simulated time.

Four actors share the device's power rail (:mod:`fedhar.wearable.rail`):

- **sensing and inference** wakes at every control tick (``control_s``), lets the threshold
  policy pick a mode for the tick from the state of charge, and draws the exact energy of
  every window sensed until the next tick as one constant power (event aggregation: the
  windows are all decided and booked, in one step);
- **personalization** waits for a job, runs it epoch by epoch, and after a cut-off resumes
  it from its last completed epoch;
- **radio** downloads the round's model and uploads the update after a job;
- **charger** plugs in along the user's charging habit and charges at constant current, then
  constant voltage until the termination current; a terminated charger restarts below the
  recharge state of charge.

:meth:`Wearable.advance` runs the device to the end of a federation round and leaves its
state as plain data (:meth:`Wearable.state_dict`), fit for Flower's ``Context.state``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Protocol

import numpy as np
import simpy

from fedhar.enums import WEARABLE_JOBS, WEARABLE_MODELS
from fedhar.wearable.battery import Battery, BatterySpec
from fedhar.wearable.charging import DAY_S, ChargingHabit
from fedhar.wearable.loads import LOADS, WearableCosts
from fedhar.wearable.modes import Mode, ModesTable
from fedhar.wearable.policies import JobView, PersonalizationPolicy, ThresholdPolicy
from fedhar.wearable.rail import PowerRail
from fedhar.wearable.replay import Replay


@dataclass(frozen=True)
class WearableConfig:
    """What a device is and how it behaves.

    Attributes:
        battery: the battery and charger.
        costs: what each load costs.
        modes: the modes table of the general model (``"none"``) and of the TL- and
            Full-personalized models (``"tl"``, ``"full"``).
        threshold: threshold policy.
        personalization: personalization policy.
        charging: charging habit.
        epochs: epochs per personalization job.
        payload_bytes: model download per round, bytes.
        update_bytes: update upload after a job, bytes, by mode.
        window_s: one window (one inference) every this many s.
        control_s: policies run and loads are set every this many s.
        charge_step_s: the charger re-reads the state of charge every this many s.
        trace_s: state of charge is sampled every this many s (0: no trace).
        seed: seed of the charging habit's draws.
    """

    battery: BatterySpec
    costs: WearableCosts
    modes: Mapping[str, ModesTable]
    threshold: ThresholdPolicy
    personalization: PersonalizationPolicy
    charging: ChargingHabit
    epochs: int = 5
    payload_bytes: int = 0
    update_bytes: Mapping[str, int] = field(default_factory=lambda: {"full": 0, "tl": 0})
    window_s: float = 10.0
    control_s: float = 600.0
    charge_step_s: float = 300.0
    trace_s: float = 3600.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("window_s", "control_s", "charge_step_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: expected > 0 s, got {getattr(self, name)}")
        if self.epochs < 1:
            raise ValueError(f"epochs: expected >= 1, got {self.epochs}")
        missing = [m.value for m in WEARABLE_MODELS if m not in self.modes]
        if missing:
            raise ValueError(
                f"modes: expected tables {[m.value for m in WEARABLE_MODELS]}; missing {missing}"
            )


@dataclass
class Job:
    """A personalization job.

    Attributes:
        round_end_s: end of the round that asked for it, s.
        mode: ``"full"`` or ``"tl"`` once started; ``None`` while waiting.
        epochs_done: completed epochs.
        epoch_elapsed_s: seconds already run of the current epoch (kept across rounds,
            reset by a cut-off).
        parent: with a :class:`JobRunner`, the model the job started from.
        n_windows: with a :class:`JobRunner`, the local windows stored when it started (its
            data).
        cut_offs: cut-offs that stopped it.
    """

    round_end_s: float
    mode: str | None = None
    epochs_done: int = 0
    epoch_elapsed_s: float = 0.0
    parent: str | None = None
    n_windows: int = 0
    cut_offs: int = 0


@dataclass(frozen=True)
class Spend:
    """Time and energy of a piece of work on the device: ``seconds`` s at ``watts`` W."""

    seconds: float
    watts: float

    @property
    def joules(self) -> float:
        return self.seconds * self.watts


@dataclass(frozen=True)
class Verdict:
    """How a finished job ended (see :meth:`JobRunner.finish`).

    Attributes:
        model: the model the device serves from now on.
        deployed: whether that is the job's result (False: the guard kept the old model).
        reason: why, in words.
        candidate_score: the job's model's score on the guard's windows (None unguarded).
        deployed_score: the old model's score there (None unguarded).
        n_check: windows the guard scored.
    """

    model: str
    deployed: bool
    reason: str
    candidate_score: float | None = None
    deployed_score: float | None = None
    n_check: int = 0


class JobRunner(Protocol):
    """Jobs that really train: a device with one runs each personalization job on its stored
    windows and serves the model the job produced. Models are named by strings; the general
    model is ``"none"``."""

    guarded: bool
    """Whether a finished job is checked (:meth:`check`) before its model is deployed."""

    def start(self, job: Job, t_s: float, model: str) -> None:
        """A ``job.mode`` job starts at ``t_s`` from ``model``: fixes its data and parent."""
        ...

    def estimate(self, mode: str, t_s: float) -> Spend:
        """What a whole ``mode`` job on the windows stored by ``t_s`` would cost."""
        ...

    def epoch(self, job: Job) -> Spend:
        """The cost of the job's next epoch (number ``job.epochs_done``)."""
        ...

    def check(self, job: Job, th: float) -> Spend:
        """The cost of the guard's check of the finished job at threshold ``th``."""
        ...

    def finish(self, job: Job, model: str, th: float) -> Verdict:
        """The finished job's outcome for a device serving ``model`` at threshold ``th``."""
        ...


@dataclass
class Totals:
    """Running totals of a device (since its start).

    Attributes:
        energy_j: energy drawn by load, J.
        charged_j: energy put in by the charger, J.
        inferences: windows classified.
        easy: windows decided by the small model.
        f1_sum: sum over windows of the modes table's F1 at the mode in use.
        confusion: ``[K, K]`` counts (true, predicted) when real windows are replayed.
        full_jobs: completed Full jobs.
        tl_jobs: completed TL jobs.
        interrupted_jobs: completed jobs that a cut-off stopped at least once.
        rejected_jobs: completed jobs whose model the guard did not deploy.
        verdicts: with a :class:`JobRunner`, one record per completed job: its end time,
            mode, data and :class:`Verdict`.
        epochs_lost: epochs cut off by the battery before they completed.
        dead_s: seconds spent cut off.
        depletions: cut-offs.
    """

    energy_j: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LOADS, 0.0))
    charged_j: float = 0.0
    inferences: int = 0
    easy: int = 0
    f1_sum: float = 0.0
    confusion: list[list[int]] = field(default_factory=list)
    full_jobs: int = 0
    tl_jobs: int = 0
    interrupted_jobs: int = 0
    rejected_jobs: int = 0
    verdicts: list[dict[str, object]] = field(default_factory=list)
    epochs_lost: int = 0
    dead_s: float = 0.0
    depletions: int = 0

    def snapshot(self) -> Totals:
        """A copy that later changes to these totals leave alone (verdicts are appended,
        never changed, so their records are shared)."""
        return replace(
            self,
            energy_j=dict(self.energy_j),
            confusion=[list(r) for r in self.confusion],
            verdicts=list(self.verdicts),
        )


@dataclass
class WearableState:
    """Everything that changes as a device lives; plain data through :func:`asdict`.

    Attributes:
        t_s: simulated time, s.
        battery: the battery's wells (:meth:`Battery.to_dict`).
        alive: whether the device is on.
        model: the model in use: ``"none"`` (general), or ``"tl"`` / ``"full"`` for the model
            of the most recent completed job (a round's download is the next job's starting
            point; the device keeps serving its personalized model until a job replaces it).
        threshold_level: memory of the threshold policy.
        job: the pending or running personalization job.
        totals: running totals.
        first_depletion_s: time of the first cut-off, s.
        trace: ``[t_s, soc]`` samples.
    """

    t_s: float
    battery: dict[str, float]
    alive: bool = True
    model: str = "none"
    threshold_level: int | None = None
    job: Job | None = None
    totals: Totals = field(default_factory=Totals)
    first_depletion_s: float | None = None
    trace: list[list[float]] = field(default_factory=list)


def macro_f1(confusion: np.ndarray) -> float:
    """Macro F1 over the classes that occur (true or predicted) in a ``[K, K]`` confusion."""
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1) + confusion.sum(axis=0)
    present = support > 0
    if not present.any():
        return float("nan")
    return float(np.mean(2 * tp[present] / support[present]))


@dataclass
class RoundReport:
    """What a device reports for one call of :meth:`Wearable.advance`.

    Attributes:
        t_end_s: simulated time at the end, s.
        soc_end: state of charge at the end.
        alive: whether the device is on at the end.
        model: model in use at the end.
        energy_j: energy drawn in the period, by load, J.
        charged_j: energy charged in the period, J.
        inferences: windows classified in the period.
        easy_share: share of those decided by the small model.
        f1: F1 over the period's windows (measured macro F1 when real windows are replayed,
            else the modes table's F1 averaged over windows); NaN without windows.
        full_jobs: Full jobs completed in the period.
        tl_jobs: TL jobs completed in the period.
        dead_s: seconds cut off in the period.
    """

    t_end_s: float
    soc_end: float
    alive: bool
    model: str
    energy_j: dict[str, float]
    charged_j: float
    inferences: int
    easy_share: float
    f1: float
    full_jobs: int
    tl_jobs: int
    dead_s: float

    def to_dict(self) -> dict[str, object]:
        """Plain data for reports and Flower metric records."""
        return asdict(self)


class Wearable:
    """One simulated wearable.

    Args:
        config: the device.
        state: where it stands; a fresh device (full battery at time 0) when omitted.
        replay: the user's real windows and models; without it, accuracy and easy share
            come from the modes tables.
        jobs: jobs that really train; without it, a job costs the configured
            personalization cost per epoch and its model is the mode's (``"tl"``,
            ``"full"``). With it, model names are the runner's, and every model uses the
            general modes table (its thresholds and their prices).
    """

    def __init__(
        self,
        config: WearableConfig,
        state: WearableState | None = None,
        replay: Replay | None = None,
        jobs: JobRunner | None = None,
    ) -> None:
        self.config = config
        self.replay = replay
        self.jobs = jobs
        self.state = state or WearableState(t_s=0.0, battery=Battery.full(config.battery).to_dict())
        if replay is not None and not self.state.totals.confusion:
            k = len(replay.classes)
            self.state.totals.confusion = [[0] * k for _ in range(k)]

    def state_dict(self) -> dict[str, object]:
        """The state as plain data (JSON-able)."""
        return asdict(self.state)

    @classmethod
    def from_state_dict(
        cls, config: WearableConfig, data: Mapping[str, object], replay: Replay | None = None
    ) -> Wearable:
        """Inverse of :meth:`state_dict`."""
        d = dict(data)
        job = d.pop("job")
        totals = d.pop("totals")
        state = WearableState(
            **d,  # type: ignore[arg-type]
            job=Job(**job) if job else None,  # type: ignore[arg-type]
            totals=Totals(**totals),  # type: ignore[arg-type]
        )
        return cls(config, state, replay)

    @property
    def battery(self) -> Battery:
        """The battery at the state's time."""
        return Battery.from_dict(self.config.battery, self.state.battery)

    def advance(self, until_s: float, new_round: bool = True) -> RoundReport:
        """Runs the device to ``until_s`` (s). With ``new_round``, a federation round starts
        now: the device downloads the model and a personalization job waits for its policy."""
        if until_s < self.state.t_s:
            raise ValueError(f"until_s: expected >= device time {self.state.t_s} s, got {until_s}")
        before = self.state.totals.snapshot()
        if until_s > self.state.t_s:
            _Run(self, until_s, new_round).run()
        return self._report(before)

    def _report(self, before: Totals) -> RoundReport:
        now, was = self.state.totals, before
        n = now.inferences - was.inferences
        if self.replay is not None:
            f1 = macro_f1(np.array(now.confusion) - np.array(was.confusion))
        else:
            f1 = (now.f1_sum - was.f1_sum) / n if n else float("nan")
        return RoundReport(
            t_end_s=self.state.t_s,
            soc_end=self.battery.soc,
            alive=self.state.alive,
            model=self.state.model,
            energy_j={k: now.energy_j[k] - was.energy_j[k] for k in LOADS},
            charged_j=now.charged_j - was.charged_j,
            inferences=n,
            easy_share=(now.easy - was.easy) / n if n else float("nan"),
            f1=f1,
            full_jobs=now.full_jobs - was.full_jobs,
            tl_jobs=now.tl_jobs - was.tl_jobs,
            dead_s=now.dead_s - was.dead_s,
        )


@dataclass
class _Tick:
    """The windows of one control tick and what they cost."""

    k0: int
    k1: int
    model: str
    th: float
    f1: float
    p_easy: float
    joules: float
    busy_s: float
    n_easy: int
    index: np.ndarray | None  # the replayed windows' indices into the replay's windows


class _Run:
    """The SimPy actors of one :meth:`Wearable.advance` call."""

    def __init__(self, device: Wearable, until_s: float, new_round: bool) -> None:
        self.device = device
        self.cfg = device.config
        self.state = device.state
        self.until_s = until_s
        self.new_round = new_round
        self.env = simpy.Environment(initial_time=self.state.t_s)
        self.battery = Battery.from_dict(self.cfg.battery, self.state.battery)
        self.rail = PowerRail(
            self.env,
            self.battery,
            self.state.alive,
            on_cutoff=self._cut_off,
            on_revive=self._revive,
        )
        self.revived = self.env.event()
        self.job_go = self.env.event()
        self.drawing: set[simpy.Process] = set()
        self.charging = False
        self.training = False
        self.tick_sleep_w = 0.0
        self.epoch_started_s: float | None = None
        self.tick: _Tick | None = None
        self.confusion = np.array(self.state.totals.confusion, dtype=np.int64)
        self.th = 1.0  # the threshold in use; set by every control tick
        self.nearest: dict[tuple[str, float], Mode] = {}
        # the replayed windows classified, unbooked: index arrays by (model, threshold)
        self.booked: dict[tuple[str, float], list[np.ndarray]] = {}

    def run(self) -> None:
        env = self.env
        env.process(self.charger())
        env.process(self.sense_and_infer())
        env.process(self.personalize())
        if self.new_round:
            env.process(self.round_start())
        if self.cfg.trace_s > 0:
            env.process(self.trace())
        env.run(until=self.until_s)
        self.rail.settle()
        self._book()

    # --- the actors -------------------------------------------------------------------

    def sense_and_infer(self):
        """Every control tick: choose the mode, then sense and classify until the next tick."""
        env, cfg = self.env, self.cfg
        while True:
            if not self.rail.alive:
                yield self.revived
            self.maybe_start_job()
            t0 = env.now
            t1 = min((math.floor(t0 / cfg.control_s) + 1) * cfg.control_s, self.until_s)
            tick = self.plan_tick(t0, t1)
            self.tick_sleep_w = cfg.costs.sleep_w * max(0.0, 1.0 - tick.busy_s / (t1 - t0))
            self.drawing.add(env.active_process)
            self.rail.set(
                {
                    "sensor": cfg.costs.sensor.watts,
                    "inference": tick.joules / (t1 - t0),
                    "sleep": self.sleep_w(),
                }
            )
            self.tick = tick
            try:
                yield env.timeout(t1 - t0)
                self.book_windows(tick, tick.k1)
            except simpy.Interrupt:
                self.book_windows(tick, self.first_window(env.now))
                self.rail.set({"sensor": 0.0, "inference": 0.0, "sleep": 0.0})
            finally:
                self.tick = None
                self.drawing.discard(env.active_process)

    def personalize(self):
        """Runs the waiting job once its policy says go; resumes after cut-offs from the
        last completed epoch."""
        env, cfg = self.env, self.cfg
        while True:
            job = self.state.job
            if job is None or job.mode is None:
                yield self.job_go
                self.job_go = env.event()
                continue
            runner = self.device.jobs
            while job.epochs_done < cfg.epochs:
                if not self.rail.alive:
                    yield self.revived
                if runner is None:
                    cost = cfg.costs.personalization[job.mode]
                    spend = Spend(cost.seconds_per_epoch, cost.watts)
                else:
                    spend = runner.epoch(job)
                if (yield from self.work(job, spend)):
                    job.epochs_done += 1
                else:
                    self.state.totals.epochs_lost += 1
            while runner is not None and runner.guarded:
                if not self.rail.alive:
                    yield self.revived
                if (yield from self.work(job, runner.check(job, self.th))):
                    break
            self.finish_job(job)
            env.process(self.transfer("tx", cfg.update_bytes[job.mode]))

    def work(self, job: Job, spend: Spend):
        """Runs ``spend`` of the job's work (resuming ``job.epoch_elapsed_s`` already done);
        returns True when it completed, False when a cut-off stopped it."""
        env = self.env
        self.training = True
        self.epoch_started_s = env.now
        self.drawing.add(env.active_process)
        self.rail.set({"training": spend.watts, "sleep": 0.0})
        try:
            yield env.timeout(max(0.0, spend.seconds - job.epoch_elapsed_s))
            return True
        except simpy.Interrupt:
            job.cut_offs += 1
            return False
        finally:
            job.epoch_elapsed_s = 0.0
            self.epoch_started_s = None
            self.training = False
            self.drawing.discard(env.active_process)
            self.rail.set({"training": 0.0, "sleep": self.sleep_w()})

    def round_start(self):
        """A round starts: download the model, then a personalization job waits."""
        yield from self.transfer("rx", self.cfg.payload_bytes)
        job = self.state.job
        if job is None or job.mode is None:
            self.state.job = Job(round_end_s=self.until_s)
        else:
            job.round_end_s = self.until_s

    def transfer(self, direction: str, nbytes: int):
        """Sends (``"tx"``) or receives (``"rx"``) ``nbytes`` over BLE; a cut-off restarts it."""
        env, radio = self.env, self.cfg.costs.radio
        if nbytes <= 0:
            return
        per_byte = radio.joules_per_byte_tx if direction == "tx" else radio.joules_per_byte_rx
        watts = per_byte * radio.bytes_per_s
        while True:
            if not self.rail.alive:
                yield self.revived
            self.drawing.add(env.active_process)
            self.rail.set({"radio": self.rail.watts["radio"] + watts})
            try:
                yield env.timeout(nbytes / radio.bytes_per_s)
                return
            except simpy.Interrupt:
                pass
            finally:
                self.drawing.discard(env.active_process)
                self.rail.set({"radio": max(0.0, self.rail.watts["radio"] - watts)})

    def charger(self):
        """Plugs in along the charging habit; constant current, then constant voltage until
        the termination current (:meth:`Battery.charge_current_a`). Once terminated, the
        charger stays off for the rest of the session unless the state of charge falls below
        ``recharge_soc`` (the IC's automatic recharge); a new session starts a new cycle."""
        env, cfg, rail = self.env, self.cfg, self.rail
        volts = cfg.battery.voltage_v
        day = max(0, math.floor(env.now / DAY_S) - 1)
        while day * DAY_S < self.until_s:
            for start, end in cfg.charging.sessions(day, cfg.seed):
                if end <= env.now:
                    continue
                if start > env.now:
                    yield env.timeout(start - env.now)
                self.charging = True
                terminated = False
                while env.now < end:
                    step = min(cfg.charge_step_s, end - env.now)
                    rail.settle()
                    if terminated and self.battery.soc < cfg.battery.recharge_soc:
                        terminated = False
                    charge_a = 0.0 if terminated else self.battery.charge_current_a()
                    terminated = charge_a == 0.0
                    room_a = (cfg.battery.capacity_c - self.battery.charge_c) / step
                    loads_a = sum(rail.watts.values()) / volts
                    amps = min(charge_a, room_a + loads_a)
                    rail.set_charger(max(0.0, amps) * volts)
                    yield env.timeout(step)
                rail.set_charger(0.0)
                self.charging = False
            day += 1

    def trace(self):
        """Samples the state of charge every ``trace_s``."""
        env, step = self.env, self.cfg.trace_s
        while True:
            if env.now % step == 0:
                self.rail.settle()
                self.state.trace.append([env.now, self.battery.soc])
            yield env.timeout(step - env.now % step)

    # --- decisions and books ----------------------------------------------------------

    def maybe_start_job(self) -> None:
        job = self.state.job
        if job is None or job.mode is not None:
            return
        cfg = self.cfg
        self.rail.settle()
        spec, runner, now = cfg.battery, self.device.jobs, self.env.now
        if runner is None:
            costs = cfg.costs.personalization
            job_j = {m: c.joules_per_epoch * cfg.epochs for m, c in costs.items()}
            job_s = {m: c.seconds_per_epoch * cfg.epochs for m, c in costs.items()}
        else:
            whole = {m.value: runner.estimate(m.value, now) for m in WEARABLE_JOBS}
            job_j = {m: w.joules for m, w in whole.items()}
            job_s = {m: w.seconds for m, w in whole.items()}
        view = JobView(
            soc=self.battery.soc,
            charging=self.charging,
            seconds_left=max(0.0, job.round_end_s - now),
            battery_j=self.battery.charge_c * spec.voltage_v,
            capacity_j=spec.capacity_j,
            job_j=job_j,
            job_s=job_s,
        )
        mode = cfg.personalization.choose(view)
        if mode is not None:
            job.mode = mode
            if runner is not None:
                runner.start(job, now, self.state.model)
            self.job_go.succeed()

    def plan_tick(self, t0: float, t1: float) -> _Tick:
        cfg, st = self.cfg, self.state
        self.rail.settle()
        th_wanted, st.threshold_level = cfg.threshold.choose(self.battery.soc, st.threshold_level)
        table = "none" if self.device.jobs is not None else st.model
        if (table, th_wanted) not in self.nearest:
            self.nearest[table, th_wanted] = cfg.modes[table].nearest(th_wanted)
        mode = self.nearest[table, th_wanted]
        self.th = mode.th
        k0, k1 = self.first_window(t0), self.first_window(t1)
        inf = cfg.costs.inference
        index = None
        replay = self.device.replay
        if replay is None:
            n_easy = self.easy_count(k0, k1, mode.p_easy)
        else:
            index = replay.picks(k0, k1, cfg.window_s)
            n_easy = replay.easy_at(k0, k1, cfg.window_s, st.model, mode.th)
        n_hard = (k1 - k0) - n_easy
        joules = n_easy * inf.easy.joules_per_inference + n_hard * inf.hard.joules_per_inference
        busy = n_easy * inf.easy.seconds_per_inference + n_hard * inf.hard.seconds_per_inference
        return _Tick(k0, k1, st.model, mode.th, mode.f1, mode.p_easy, joules, busy, n_easy, index)

    def first_window(self, t: float) -> int:
        """Index of the first window sensed at or after ``t`` s."""
        return math.ceil(t / self.cfg.window_s - 1e-9)

    @staticmethod
    def easy_count(k0: int, k1: int, p_easy: float) -> int:
        """Easy windows among ``k0 .. k1 - 1`` when a share ``p_easy`` is easy, spread
        evenly (error diffusion) so any split of the range gives the same total."""
        return math.floor(k1 * p_easy + 0.5) - math.floor(k0 * p_easy + 0.5)

    def book_windows(self, tick: _Tick, k_end: int) -> None:
        totals = self.state.totals
        n = max(0, k_end - tick.k0)
        if n == 0:
            return
        totals.inferences += n
        totals.f1_sum += n * tick.f1
        if tick.index is None:
            totals.easy += self.easy_count(tick.k0, tick.k0 + n, tick.p_easy)
            return
        index = tick.index
        if n == tick.k1 - tick.k0:
            totals.easy += tick.n_easy
        else:  # a cut-off stopped the tick
            index = index[:n]
            totals.easy += self.device.replay.easy_in(index, tick.model, tick.th)
        self.booked.setdefault((tick.model, tick.th), []).append(index)

    def sleep_w(self) -> float:
        return 0.0 if self.training or not self.rail.alive else self.tick_sleep_w

    def finish_job(self, job: Job) -> None:
        totals = self.state.totals
        if job.mode == "full":
            totals.full_jobs += 1
        else:
            totals.tl_jobs += 1
        totals.interrupted_jobs += job.cut_offs > 0
        runner = self.device.jobs
        if runner is None:
            self.state.model = job.mode  # serve the most recently personalized model
        else:
            verdict = runner.finish(job, self.state.model, self.th)
            totals.rejected_jobs += not verdict.deployed
            totals.verdicts.append(
                {
                    "t_s": self.env.now,
                    "mode": job.mode,
                    "n_windows": job.n_windows,
                    "cut_offs": job.cut_offs,
                    **asdict(verdict),
                }
            )
            self.state.model = verdict.model
        self.state.job = None

    def _cut_off(self) -> None:
        totals = self.state.totals
        totals.depletions += 1
        if self.state.first_depletion_s is None:
            self.state.first_depletion_s = self.env.now
        for process in list(self.drawing):
            process.interrupt("cut-off")

    def _revive(self) -> None:
        self.revived.succeed()
        self.revived = self.env.event()

    def _book(self) -> None:
        st, rail = self.state, self.rail
        if self.tick is not None:  # the tick ending at until_s: its timeout is not processed
            self.book_windows(self.tick, self.tick.k1)
        job = st.job
        if job is not None and self.epoch_started_s is not None:
            job.epoch_elapsed_s += self.until_s - self.epoch_started_s
        st.t_s = self.until_s
        st.alive = rail.alive
        st.battery = self.battery.to_dict()
        totals = st.totals
        for name in LOADS:
            totals.energy_j[name] += rail.energy_j[name]
        totals.charged_j += rail.charged_j
        totals.dead_s += rail.dead_s
        if self.booked:
            self.confusion += self.device.replay.confusion(self.booked)
        totals.confusion = self.confusion.tolist()

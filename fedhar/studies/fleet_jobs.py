"""The jobs of one fleet user's device: real training through the C library, shared across
every configuration of the grid that runs the same job.

A job is fixed by its inputs: the model it starts from, its mode, the windows stored when it
started and whether the guard holds some out. Its epochs are memoized by those inputs and the
epoch number (:class:`JobMemo`), so configurations whose devices run the same job on the same
data from the same model train it once. Models are named by the hash of that lineage, so equal
names mean equal tensors.

:class:`FleetJobs` is the :class:`~fedhar.wearable.simulation.JobRunner` of one device. The
cost of an epoch is the operations the C library counted while running it, priced by the MCU
profile; the guard's check is the counted inference of both models on the held-out windows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fedhar.adaptive.device_train import Checkpoint, EpochResult, SlimJob, SlimState, slim_net
from fedhar.adaptive.device_train import width_spec as _width_spec
from fedhar.adaptive.modes import Outputs, collect_outputs
from fedhar.adaptive.policy import AdaptiveClassifier, decide
from fedhar.adaptive.slim import SlimNet
from fedhar.mcu import McuProfile
from fedhar.metrics import score
from fedhar.ondevice.estimator import OpCounts, estimate_training
from fedhar.studies.adaptive import build_classifier
from fedhar.wearable.arrival import Arrival
from fedhar.wearable.simulation import Job, Spend, Verdict

GENERAL = "none"
"""The name of the general model, which every device starts with."""


@dataclass(frozen=True)
class UserWindows:
    """One user's normalized windows and their arrival.

    Attributes:
        user: the user's id.
        x_train: ``[N, C, T]`` float32 TR_i, in recording order per class.
        y_train: ``[N]`` int64 labels.
        x_test: ``[M, C, T]`` float32 TS_i.
        y_test: ``[M]`` int64 labels.
        arrival: when each TR_i window is stored.
    """

    user: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    arrival: Arrival


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class JobMemo:
    """Everything one user's devices computed, shared across the grid.

    Attributes:
        general: the user's general model.
        models: model name → tensors.
        epochs: (parent, mode, windows, holdout, epoch) → the epoch's result.
        checks: (model, threshold, windows, holdout) → the guard's score and its cost.
        step_costs: (mode, batch) → estimated seconds and joules of one step.
        job_costs: (mode, windows, holdout) → estimated cost of a whole job.
        trained: epochs trained; ``shared``: epoch requests answered from the memo.
    """

    general: SlimNet
    small_width: float
    models: dict[str, SlimState] = field(default_factory=dict)
    epochs: dict[tuple[str, str, int, int, int], EpochResult] = field(default_factory=dict)
    checks: dict[tuple[str, float, int, int], tuple[float, OpCounts]] = field(default_factory=dict)
    step_costs: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    job_costs: dict[tuple[str, int, int], Spend] = field(default_factory=dict)
    trained: int = 0
    shared: int = 0
    _classifiers: dict[str, AdaptiveClassifier] = field(default_factory=dict)
    _outputs: dict[tuple[str, str], Outputs] = field(default_factory=dict)

    def classifier(self, model: str) -> AdaptiveClassifier:
        """The deployed adaptive classifier (M_s, M_l in C) of a named model."""
        if model not in self._classifiers:
            self._classifiers[model] = build_classifier(
                slim_net(self.general, self.models[model]), self.small_width
            )
        return self._classifiers[model]

    def outputs(self, model: str, part: str, x: np.ndarray) -> Outputs:
        """M_s's and M_l's outputs of a named model on every window ``x`` of ``part``
        (``"holdout"``: the guard's TR_i windows, ``"test"``: TS_i), computed once per model
        and part: a decision at any threshold is then :func:`~fedhar.adaptive.policy.decide`
        on them."""
        key = (model, part)
        if key not in self._outputs:
            clf = self.classifier(model)
            self._outputs[key] = collect_outputs(clf.small, clf.large, x)
        return self._outputs[key]


def decide_at(out: Outputs, th: float) -> tuple[np.ndarray, np.ndarray]:
    """``(pred, easy)`` of the adaptive classifier at ``th`` from its outputs."""
    return decide(out.margin, out.pred_small, out.pred_large, th)


@dataclass(frozen=True)
class WindowCost:
    """What classifying one window costs: ``easy`` (M_s and the policy) or ``hard`` (M_s, the
    policy and M_l), from the C library's counted operations on the device's MCU profile."""

    easy: Spend
    hard: Spend

    def spend(self, n: int, n_easy: int) -> Spend:
        """Classifying ``n`` windows of which ``n_easy`` are easy, one after the other."""
        n_hard = n - n_easy
        seconds = n_easy * self.easy.seconds + n_hard * self.hard.seconds
        joules = n_easy * self.easy.joules + n_hard * self.hard.joules
        return Spend(seconds, joules / seconds if seconds > 0 else 0.0)


@dataclass(frozen=True)
class JobSettings:
    """How every job of the study trains.

    Attributes:
        epochs: epochs per job.
        batch_size: windows per step.
        lr: SGD rate by mode.
        momentum: SGD momentum.
        tl_layers: dense layers a TL job trains.
        holdout_every: with the guard on, every this-many-th stored window is held out.
        seed: seed of the batch order.
    """

    epochs: int
    batch_size: int
    lr: Mapping[str, float]
    momentum: float
    tl_layers: int
    holdout_every: int
    seed: int


class FleetJobs:
    """The :class:`~fedhar.wearable.simulation.JobRunner` of one device of one user.

    Args:
        data: the user's windows.
        memo: the user's memo, shared by every configuration of the user.
        settings: the study's job settings.
        profile: the MCU that runs the jobs.
        inference: what classifying a window costs on it.
        guarded: whether the guard judges each finished job.
    """

    def __init__(
        self,
        data: UserWindows,
        memo: JobMemo,
        settings: JobSettings,
        profile: McuProfile,
        inference: WindowCost,
        guarded: bool,
    ) -> None:
        self.data, self.memo, self.settings = data, memo, settings
        self.profile, self.inference, self.guarded = profile, inference, guarded
        self.holdout = settings.holdout_every if guarded else 0
        net = memo.general
        self._jobs = {
            mode: SlimJob(
                net,
                mode,
                lr=settings.lr[mode],
                momentum=settings.momentum,
                batch_size=settings.batch_size,
                tl_layers=settings.tl_layers,
            )
            for mode in ("full", "tl")
        }

    # -- data ---------------------------------------------------------------------------------

    def windows(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """TR_i indices ``(train, held out)`` of the first ``n`` stored windows."""
        return self.data.arrival.split(n, self.holdout)

    @staticmethod
    def model_name(parent: str, mode: str, n: int, holdout: int, epochs: int) -> str:
        """The name of the model a job produces: its mode and the hash of its lineage."""
        return f"{mode}-{_digest(f'{parent}|{mode}|{n}|{holdout}|{epochs}')}"

    def result_name(self, job: Job) -> str:
        """The name of the model ``job`` produces."""
        assert job.parent is not None and job.mode is not None
        return self.model_name(
            job.parent, job.mode, job.n_windows, self.holdout, self.settings.epochs
        )

    # -- JobRunner ----------------------------------------------------------------------------

    def start(self, job: Job, t_s: float, model: str) -> None:
        job.parent = model
        job.n_windows = self.data.arrival.count_at(t_s)

    def _batch(self, mode: str, batch: int) -> tuple[float, float]:
        """Estimated ``(seconds, joules)`` of one step of ``batch`` windows, both widths (the
        profile's price is linear in the counts, so steps add up)."""
        key = (mode, batch)
        if key not in self.memo.step_costs:
            total = OpCounts()
            for w in self.memo.general.widths:
                est = estimate_training(
                    _width_spec(self.memo.general, w),
                    mode,
                    batch,
                    tl_layers=self.settings.tl_layers,
                    n_stored_samples=self.settings.batch_size,
                    momentum=self.settings.momentum > 0,
                )
                total = total + est.ops_total_per_batch
            cost = self.profile.cost(total)
            self.memo.step_costs[key] = (cost.seconds, cost.joules)
        return self.memo.step_costs[key]

    def estimate(self, mode: str, t_s: float) -> Spend:
        """The estimator's cost of a whole job on the windows stored by ``t_s``: what the
        device's policy can know before it runs the job."""
        key = (mode, self.data.arrival.count_at(t_s), self.holdout)
        if key not in self.memo.job_costs:
            n_train = self.windows(key[1])[0].size
            full, rest = divmod(n_train, self.settings.batch_size)
            seconds = joules = 0.0
            for count, size in ((full, self.settings.batch_size), (rest >= 2, rest)):
                if count:
                    s, j = self._batch(mode, size)
                    seconds, joules = seconds + count * s, joules + count * j
            e = self.settings.epochs
            self.memo.job_costs[key] = Spend(e * seconds, joules / seconds if seconds > 0 else 0.0)
        return self.memo.job_costs[key]

    def _spend(self, ops: OpCounts) -> Spend:
        cost = self.profile.cost(ops)
        return Spend(cost.seconds, cost.joules / cost.seconds if cost.seconds > 0 else 0.0)

    def _epoch(self, job: Job, epoch: int) -> EpochResult:
        assert job.parent is not None and job.mode is not None
        key = (job.parent, job.mode, job.n_windows, self.holdout, epoch)
        memo = self.memo
        if key in memo.epochs:
            memo.shared += 1
            return memo.epochs[key]
        sgd = self._jobs[job.mode]
        ckpt: Checkpoint = (
            sgd.start(memo.models[job.parent])
            if epoch == 0
            else self._epoch(job, epoch - 1).checkpoint
        )
        train, _ = self.windows(job.n_windows)
        seed = [self.settings.seed, job.n_windows, epoch, int(_digest(job.parent), 16)]
        order = np.random.default_rng(seed).permutation(train.size)
        result = sgd.epoch(ckpt, self.data.x_train[train], self.data.y_train[train], order)
        memo.epochs[key] = result
        memo.trained += 1
        return result

    def epoch(self, job: Job) -> Spend:
        """The counted cost of the next epoch; the epoch itself runs (or comes from the memo)
        now, and its checkpoint counts only once the device completes it."""
        if self.windows(job.n_windows)[0].size < 2:  # nothing to train on yet
            return Spend(0.0, 0.0)
        return self._spend(self._epoch(job, job.epochs_done).ops)

    def _candidate(self, job: Job) -> str:
        name = self.result_name(job)
        if name not in self.memo.models:
            if self.windows(job.n_windows)[0].size < 2:
                assert job.parent is not None
                self.memo.models[name] = self.memo.models[job.parent]
            else:
                last = self._epoch(job, self.settings.epochs - 1)
                self.memo.models[name] = last.checkpoint.state
        return name

    def _judge(self, model: str, th: float, n: int) -> tuple[float, Spend]:
        """The macro F1 of ``model`` at ``th`` on the held-out windows among the first ``n``
        stored, and what classifying them costs the device."""
        key = (model, th, n, self.holdout)
        if key not in self.memo.checks:
            _, held = self.windows(n)
            # the held-out windows of the first n are a prefix of those of all of TR_i
            every = self.windows(len(self.data.arrival.order))[1]
            out = self.memo.outputs(model, "holdout", self.data.x_train[every])
            pred, easy = decide_at(out, th)
            pred, easy = pred[: held.size], easy[: held.size]
            f1 = (
                score(self.data.y_train[held], pred, self.memo.general.spec.n_classes).macro_f1
                if held.size
                else float("nan")
            )
            self.memo.checks[key] = (f1, self.inference.spend(held.size, int(easy.sum())))
        return self.memo.checks[key]

    def check(self, job: Job, th: float) -> Spend:
        """Counted inference of the job's model and of the parent on the held-out windows."""
        assert job.parent is not None
        cand = self._candidate(job)
        _, new = self._judge(cand, th, job.n_windows)
        _, old = self._judge(job.parent, th, job.n_windows)
        seconds = new.seconds + old.seconds
        return Spend(seconds, (new.joules + old.joules) / seconds if seconds > 0 else 0.0)

    def finish(self, job: Job, model: str, th: float) -> Verdict:
        cand = self._candidate(job)
        if not self.guarded:
            return Verdict(cand, True, "no guard: deployed")
        new, _ = self._judge(cand, th, job.n_windows)
        old, _ = self._judge(model, th, job.n_windows)
        n_held = int(self.windows(job.n_windows)[1].size)
        if n_held == 0:
            return Verdict(model, False, "no held-out windows yet: kept the deployed model")
        if new > old:
            return Verdict(
                cand,
                True,
                f"beats the deployed model on {n_held} held-out windows",
                new,
                old,
                n_held,
            )
        return Verdict(
            model,
            False,
            f"does not beat the deployed model on {n_held} held-out windows: kept it",
            new,
            old,
            n_held,
        )

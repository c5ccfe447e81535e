"""Fleet studies: one simulated wearable per real user, living on its battery while its
training data arrives, its personalization jobs really train and its accuracy is measured.

For every user:

- its fold's **general model** (a two-width network, :class:`FleetScenario` ``fleet.model``)
  is trained in PyTorch on the other folds' users, and cached by content;
- its windows are split in time per activity: TR_i (the first ``data.train_fraction``) arrives
  along the daily schedule (:class:`~fedhar.wearable.arrival.Arrival`), TS_i is held out;
- every configuration of the grid (personalization policy × threshold policy × capacity ×
  charging habit × guard) simulates its device for ``study.days`` one-day rounds. Jobs train
  through the C library (:mod:`fedhar.studies.fleet_jobs`), and each day's TS_i windows are
  classified by the adaptive model the device holds at the threshold its policy chose, so F1
  and the easy share are measured (``accuracy_source: "measured"``).

Users run in parallel processes (``jobs``); each user's configurations share one memo of
jobs. ``run_fleet`` writes into ``DIR`` a journal ``rows.jsonl`` (resume skips what it holds),
``traces/``, ``study.json``, ``study.csv``, ``users.csv``, figures and ``report.html``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from fedhar.adaptive.artifact import load_model, save_model
from fedhar.adaptive.device_train import slim_state, width_spec
from fedhar.adaptive.memory import adaptive_bytes
from fedhar.adaptive.modes import collect_outputs, expected_cost
from fedhar.adaptive.policy import decide
from fedhar.adaptive.slim import build_slim, train
from fedhar.data.paths import user_cache_dir
from fedhar.data.preprocess import Normalizer
from fedhar.data.splits import kfold_users, split_chronological
from fedhar.data.types import WindowSet
from fedhar.files import write_atomic
from fedhar.mcu import McuProfile, load_profile
from fedhar.metrics import score
from fedhar.models.spec import daghero_cnn
from fedhar.models.training import numerical_environment
from fedhar.ondevice.ctrain import Trainer
from fedhar.results.journal import Journal, identity_sha256
from fedhar.schema.base import SchemaError, load_yaml_model
from fedhar.schema.fleet import FleetScenario
from fedhar.studies.adaptive import load_data_windows
from fedhar.studies.battery import device_fields, finite_or_none, summarize, winner_lines
from fedhar.studies.battery_grid import StudyRow
from fedhar.studies.fleet_jobs import (
    GENERAL,
    FleetJobs,
    JobMemo,
    JobSettings,
    UserWindows,
    WindowCost,
    decide_at,
)
from fedhar.studies.fleet_report import write_fleet_report
from fedhar.studies.pretrain import windows_fingerprint
from fedhar.wearable.arrival import Arrival
from fedhar.wearable.build import cell_spec
from fedhar.wearable.charging import make_charging
from fedhar.wearable.loads import (
    LOADS,
    PARTS_FILE,
    AdaptiveInferenceCost,
    InferenceCost,
    WearableCosts,
    load_parts,
)
from fedhar.wearable.modes import ModesTable
from fedhar.wearable.policies import make_personalization_policy, make_threshold_policy
from fedhar.wearable.replay import Replay
from fedhar.wearable.schedule import DailySchedule
from fedhar.wearable.simulation import Spend, Wearable, WearableConfig
from fedhar.workers import ignore_sigint

ROWS_FILE = "rows.jsonl"
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(21))
"""The thresholds a device offers (its modes table's rows)."""

Log = Callable[[str], None]


@dataclass(frozen=True)
class FleetPoint:
    """One configuration of one user."""

    personalization: str
    threshold: str
    capacity_mah: float
    charging: str
    guard: bool
    user: str

    @property
    def policy(self) -> str:
        base = f"{self.personalization}+{self.threshold}"
        return f"{base}+guard" if self.guard else base

    @property
    def key(self) -> str:
        return f"{self.policy}|{self.capacity_mah:g}mAh|{self.charging}|user {self.user}"


@dataclass
class FleetRow(StudyRow):
    """A :class:`~fedhar.studies.battery_grid.StudyRow` of a fleet device, plus:

    Attributes:
        guard: whether the guard judged its jobs.
        fold: the user's fold.
        interrupted_jobs: completed jobs a cut-off stopped at least once.
        rejected_jobs: completed jobs whose model the guard kept out.
        f1_general: macro F1 of the general model on all of TS_i at the final threshold.
        f1_final: macro F1 of the model held at the end on all of TS_i, same threshold.
        harmed: ``f1_final < f1_general``.
        final_model: name of the model held at the end.
        verdicts: one record per completed job.
    """

    guard: bool = False
    fold: int = 0
    interrupted_jobs: int = 0
    rejected_jobs: int = 0
    f1_general: float | None = None
    f1_final: float | None = None
    harmed: bool = False
    final_model: str = GENERAL
    verdicts: list[dict[str, object]] = field(default_factory=list)


def load_fleet_scenario(path: str | Path) -> FleetScenario:
    """Reads and validates a fleet scenario, and checks its MCU profile and parts file."""
    path = Path(path)
    scenario = load_yaml_model(path, FleetScenario)
    try:
        load_profile(scenario.fleet.profile)
    except (OSError, ValueError) as exc:
        raise SchemaError([f"{path}: fleet.profile: {exc}"]) from None
    parts = _parts_path(scenario, path.parent)
    if not parts.is_file():
        raise SchemaError([f"{path}: device.parts: {parts} does not exist"])
    for capacity in scenario.study.capacity_mah:
        try:
            cell_spec(scenario.device.cell, capacity)
        except ValueError as exc:
            raise SchemaError([f"{path}: device.cell: {exc}"]) from None
    return scenario


def _parts_path(scenario: FleetScenario, base_dir: Path) -> Path:
    return PARTS_FILE if scenario.device.parts is None else base_dir / scenario.device.parts


def grid(scenario: FleetScenario, users: list[str]) -> list[FleetPoint]:
    """Every configuration, in a fixed order (users innermost)."""
    s = scenario.study
    return [
        FleetPoint(p, t, c, h, g, u)
        for p in s.personalization
        for t in s.threshold
        for c in s.capacity_mah
        for h in s.charging
        for g in s.guard
        for u in users
    ]


# -- general models -------------------------------------------------------------------------


def general_spec(scenario: FleetScenario, c: int, t: int, n_classes: int):
    """M_l's spec: the daghero template at ``fleet.model``."""
    m = scenario.fleet.model
    return daghero_cnn(c, t, n_classes, tuple(m.channels), (m.kernel,) * len(m.channels), m.pool)


def _cache_file(key: str) -> Path:
    return user_cache_dir() / "fleet" / f"{key}.pt"


def general_model(scenario: FleetScenario, train_ws: WindowSet, n_classes: int, log: Log):
    """The fold's general network trained on ``train_ws`` (cached by content, with the torch
    version and CPU kernels that train it), and its normalizer."""
    _, c, t = train_ws.x.shape
    spec = general_spec(scenario, c, t, n_classes)
    widths = (scenario.fleet.model.small_width, 1.0)
    p = scenario.fleet.pretrain
    key = hashlib.sha256(
        json.dumps(
            {
                "windows": windows_fingerprint(train_ws),
                "spec": spec.to_dict(),
                "widths": widths,
                "pretrain": p.model_dump(),
                "seed": scenario.seed,
                "environment": numerical_environment(),
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()
    path = _cache_file(key)
    if path.is_file():
        net, _, norm = load_model(path)
        return net, norm
    norm = Normalizer().fit(train_ws.x)
    torch.set_num_threads(1)
    net = build_slim(spec, widths, scenario.seed)
    train(
        net,
        norm.transform(train_ws.x),
        train_ws.y,
        epochs=p.epochs,
        batch_size=p.batch_size,
        lr=p.lr,
        seed=scenario.seed,
    )
    net.eval()
    save_model(net, widths[0], norm, path)
    log(f"general model trained on {len(train_ws)} windows, cached in {path}")
    return net, norm


# -- one user -------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserTask:
    """What a worker needs to simulate one user's configurations."""

    scenario_path: str
    data_dir: str | None
    user: str
    fold: int
    points: list[FleetPoint]
    indices: list[int]
    share: bool = True


def _load(scenario: FleetScenario, data_dir: str | None):
    ds, ws = load_data_windows(scenario.data, scenario.seed, data_dir)
    users = scenario.fleet.users or sorted(set(ws.users.tolist()))
    return ds, ws, users


def _folds(scenario: FleetScenario, users: list[str]) -> dict[str, tuple[int, list[str]]]:
    """user → (fold index, that fold's training users)."""
    out = {}
    for i, (test, train_users) in enumerate(
        kfold_users(users, scenario.fleet.folds, scenario.seed)
    ):
        for u in test:
            out[u] = (i, train_users)
    return out


def user_windows(
    scenario: FleetScenario, ws: WindowSet, classes: list[str], user: str, norm: Normalizer
) -> UserWindows:
    """The user's TR_i and TS_i, normalized, and TR_i's arrival."""
    mine = ws.subset(ws.users == user)
    tr, ts = split_chronological(mine, scenario.data.train_fraction)
    schedule = DailySchedule.from_pairs(scenario.fleet.schedule)
    arrival = Arrival.along(
        tr.y,
        classes,
        schedule,
        scenario.fleet.label_every_s,
        scenario.study.days * scenario.study.round_s,
    )
    f32 = np.float32
    return UserWindows(
        user,
        np.ascontiguousarray(norm.transform(tr.x), dtype=f32),
        np.asarray(tr.y, dtype=np.int64),
        np.ascontiguousarray(norm.transform(ts.x), dtype=f32),
        np.asarray(ts.y, dtype=np.int64),
        arrival,
    )


def inference_costs(memo: JobMemo, profile: McuProfile) -> WindowCost:
    """Per-window cost of M_s + policy (easy) and of M_s + policy + M_l (hard), from the C
    library's counted operations priced by ``profile`` (the same for every model of the
    user: personalization changes weights, not shapes)."""
    clf = memo.classifier(GENERAL)
    cost = expected_cost(clf.small, clf.large, profile)
    easy, hard = cost.at(1.0), cost.at(0.0)
    return WindowCost(
        Spend(easy.seconds, easy.joules / easy.seconds),
        Spend(hard.seconds, hard.joules / hard.seconds),
    )


def modes_table(
    memo: JobMemo, x: np.ndarray, y: np.ndarray, inf: AdaptiveInferenceCost, clock_hz: float
):
    """The general model's modes at :data:`THRESHOLDS`, measured on windows ``x``, ``y`` (the
    fold's training windows): the thresholds a device offers and their prices."""
    clf = memo.classifier(GENERAL)
    out = collect_outputs(clf.small, clf.large, x)
    rows = []
    for th in THRESHOLDS:
        pred, easy = decide(out.margin, out.pred_small, out.pred_large, th)
        p = float(easy.mean())
        joules = p * inf.easy.joules + (1 - p) * inf.hard.joules
        seconds = p * inf.easy.seconds + (1 - p) * inf.hard.seconds
        rows.append(
            {
                "th": th,
                "f1": score(y, pred, memo.general.spec.n_classes).macro_f1,
                "p_easy": p,
                "cycles_avg": seconds * clock_hz,
                "energy_uj_avg": joules * 1e6,
            }
        )
    return ModesTable.from_rows(rows, "fleet modes")


def _final_f1(memo: JobMemo, data: UserWindows, model: str, th: float) -> float:
    pred, _ = decide_at(memo.outputs(model, "test", data.x_test), th)
    return score(data.y_test, pred, memo.general.spec.n_classes).macro_f1


def run_user(task: UserTask) -> list[tuple[int, dict[str, object], list[list[float]], dict]]:
    """Simulates one user's configurations; returns ``(index, row, trace, memo stats)`` each."""
    path = Path(task.scenario_path)
    scenario = load_fleet_scenario(path)
    ds, ws, users = _load(scenario, task.data_dir)
    _, train_users = _folds(scenario, sorted(set(ws.users.tolist())))[task.user]
    train_ws = ws.subset(np.isin(ws.users, train_users))
    net, norm = general_model(scenario, train_ws, len(ds.classes), lambda _: None)
    data = user_windows(scenario, ws, list(ds.classes), task.user, norm)
    profile = load_profile(scenario.fleet.profile)
    memo = JobMemo(net, scenario.fleet.model.small_width, models={GENERAL: slim_state(net)})
    fl, study, dev = scenario.fleet, scenario.study, scenario.device
    settings = JobSettings(
        epochs=fl.job.epochs,
        batch_size=fl.job.batch_size,
        lr={"full": fl.job.lr_full, "tl": fl.job.lr_tl},
        momentum=fl.job.momentum,
        tl_layers=fl.job.tl_layers,
        holdout_every=fl.holdout_every,
        seed=scenario.seed,
    )
    inference = inference_costs(memo, profile)
    rng = np.random.default_rng(scenario.seed)
    sample = rng.permutation(len(train_ws))[:2000]
    table = modes_table(
        memo,
        norm.transform(train_ws.x[sample]).astype(np.float32),
        train_ws.y[sample],
        inference,
        profile.clock_hz,
    )
    parts = load_parts(1, _parts_path(scenario, path.parent))
    costs = WearableCosts(
        inference=AdaptiveInferenceCost(
            easy=InferenceCost(inference.easy.joules, inference.easy.seconds),
            hard=InferenceCost(inference.hard.joules, inference.hard.seconds),
        ),
        personalization={},
        radio=parts.radio,
        sensor=parts.sensor,
        sleep_w=profile.sleep_watts,
        sources={
            **parts.sources,
            "inference": f"C-library counted ops of M_s/M_l priced by {profile.name}",
            "training": f"C-library counted ops of each epoch priced by {profile.name}",
            "sleep": f"sleep power of MCU profile {profile.name}",
        },
    )

    def replay_of(memo: JobMemo) -> Replay:
        return Replay(
            windows=WindowSet(
                data.x_test,
                data.y_test,
                np.full(len(data.y_test), task.user),
                np.arange(len(data.y_test)),
            ),
            classes=list(ds.classes),
            schedule=DailySchedule.from_pairs(fl.schedule),
            classifiers={},
            decide_all=lambda model, th: decide_at(memo.outputs(model, "test", data.x_test), th),
        )

    replay = replay_of(memo)
    out = []
    general = dict(memo.models)
    # a policy that never personalizes runs no job, so its guard twins are one simulation
    twins: dict[FleetPoint, tuple[dict[str, object], list[list[float]]]] = {}
    for index, point in zip(task.indices, task.points, strict=True):
        never = study.personalization[point.personalization].name == "never"
        twin = replace(point, guard=False) if task.share and never else None
        if twin in twins:
            row_data, trace = twins[twin]
            row_data = {**row_data, "key": point.key, "policy": point.policy, "guard": point.guard}
            out.append((index, row_data, trace, {"trained": memo.trained, "shared": memo.shared}))
            continue
        if not task.share:  # each configuration trains its own jobs (the benchmark's baseline)
            memo = JobMemo(net, memo.small_width, models=dict(general), trained=memo.trained)
            replay = replay_of(memo)
        config = WearableConfig(
            battery=cell_spec(dev.cell, point.capacity_mah),
            costs=costs,
            modes={"none": table, "tl": table, "full": table},
            threshold=make_threshold_policy(study.threshold[point.threshold]),
            personalization=make_personalization_policy(
                study.personalization[point.personalization]
            ),
            charging=make_charging(study.charging[point.charging]),
            epochs=fl.job.epochs,
            payload_bytes=0,
            update_bytes={"full": 0, "tl": 0},
            window_s=dev.window_s,
            control_s=dev.control_s,
            charge_step_s=dev.charge_step_s,
            trace_s=dev.trace_s,
            seed=charging_seed(study.seed, task.user),
        )
        runner = FleetJobs(data, memo, settings, profile, inference, point.guard)
        device = Wearable(config, replay=replay, jobs=runner)
        reports = [device.advance(day * study.round_s) for day in range(1, study.days + 1)]
        row = _row(point, task.fold, device, reports, study.days, study.round_s)
        th = (
            device.config.modes["none"]
            .nearest(
                device.config.threshold.choose(device.battery.soc, device.state.threshold_level)[0]
            )
            .th
        )
        row.f1_general = _final_f1(memo, data, GENERAL, th)
        row.f1_final = _final_f1(memo, data, device.state.model, th)
        row.harmed = row.f1_final < row.f1_general
        stats = {"trained": memo.trained, "shared": memo.shared if task.share else 0}
        out.append((index, asdict(row), device.state.trace, stats))
        if twin is not None:
            twins[twin] = (asdict(row), device.state.trace)
    return out


def charging_seed(seed: int, user: str) -> int:
    """The seed of ``user``'s charging draws from the study's ``seed``: every user plugs its
    wearable in at its own times (the same for all of that user's configurations)."""
    return int(hashlib.sha256(f"{seed}|{user}".encode()).hexdigest()[:8], 16)


def _row(
    point: FleetPoint, fold: int, device: Wearable, reports: list, days: int, round_s: float
) -> FleetRow:
    totals = device.state.totals
    return FleetRow(
        key=point.key,
        policy=point.policy,
        personalization=point.personalization,
        threshold=point.threshold,
        capacity_mah=point.capacity_mah,
        charging=point.charging,
        **device_fields(device, days, round_s, measured=True),
        accuracy_source="measured",
        user=point.user,
        f1_by_day=[finite_or_none(r.f1) for r in reports],
        easy_share_by_day=[finite_or_none(r.easy_share) for r in reports],
        guard=point.guard,
        fold=fold,
        interrupted_jobs=totals.interrupted_jobs,
        rejected_jobs=totals.rejected_jobs,
        final_model=device.state.model,
        verdicts=list(totals.verdicts),
    )


# -- the study ------------------------------------------------------------------------------


def fleet_identity(scenario: FleetScenario) -> dict[str, object]:
    """What a resumed journal must have been written for."""
    return {
        "scenario_sha256": identity_sha256(scenario.model_dump(mode="json")),
        "seed": scenario.seed,
    }


def _trace_file(out: Path, index: int) -> Path:
    return out / "traces" / f"{index:05d}.json"


def run_fleet(
    scenario_path: str | Path,
    out: str | Path,
    resume: bool = False,
    log: Log = print,
    data_dir: str | None = None,
    jobs: int | None = None,
    share: bool = True,
) -> dict[str, object]:
    """Runs (or resumes) the fleet study and writes every output; returns ``study.json``'s
    content. ``jobs``: worker processes (default: every core); ``share=False`` gives every
    configuration its own memo (same results, more training: the benchmark's baseline).
    Raises :class:`SchemaError` on an invalid scenario or data that cannot satisfy it."""
    scenario_path = Path(scenario_path)
    scenario = load_fleet_scenario(scenario_path)
    ds, ws, users = _load(scenario, data_dir)
    classes = list(ds.classes)
    unknown = sorted({a for _, a in scenario.fleet.schedule} - set(classes))
    if unknown:
        raise SchemaError(
            [
                f"{scenario_path}: fleet.schedule: activities {unknown} are not classes of the "
                f"data; expected some of {classes}"
            ]
        )
    missing = sorted(set(users) - set(ws.users.tolist()))
    if missing:
        raise SchemaError([f"{scenario_path}: fleet.users: {missing} are not users of the data"])
    if not 2 <= scenario.fleet.folds <= len(set(ws.users.tolist())):
        raise SchemaError(
            [
                f"{scenario_path}: fleet.folds: expected 2..{len(set(ws.users.tolist()))} (the "
                f"users), got {scenario.fleet.folds}"
            ]
        )
    all_users = sorted(set(ws.users.tolist()))
    folds = _folds(scenario, all_users)
    for i in sorted({f for f, _ in folds.values()}):
        train_users = next(t for f, t in folds.values() if f == i)
        general_model(scenario, ws.subset(np.isin(ws.users, train_users)), len(classes), log)
    out = Path(out)
    journal = Journal(out / ROWS_FILE, fleet_identity(scenario), resume=resume)
    (out / "traces").mkdir(parents=True, exist_ok=True)
    done = {r["key"]: r for r in journal.rows}
    points = grid(scenario, users)
    tasks = []
    for user in users:
        todo = [
            (i, p)
            for i, p in enumerate(points)
            if p.user == user and not (p.key in done and _trace_file(out, i).exists())
        ]
        if todo:
            tasks.append(
                UserTask(
                    str(scenario_path),
                    data_dir,
                    user,
                    folds[user][0],
                    [p for _, p in todo],
                    [i for i, _ in todo],
                    share,
                )
            )
    stats = {"jobs_trained": 0, "jobs_shared": 0}
    workers = max(1, min(jobs or os.cpu_count() or 1, len(tasks) or 1))
    pool_of = ProcessPoolExecutor(workers, initializer=ignore_sigint) if workers > 1 else None
    with pool_of if pool_of is not None else nullcontext() as pool:
        results = pool.map(run_user, tasks) if pool is not None else map(run_user, tasks)
        for task, result in zip(tasks, results, strict=True):
            _keep(task, result, out, journal, done, stats, log)
    rows = [FleetRow(**done[p.key]) for p in points]
    summary = summarize(rows)
    result = {
        "scenario": str(scenario_path),
        "name": scenario.name,
        "description": scenario.description,
        "accuracy_source": "measured",
        "users": users,
        "rows": [asdict(r) for r in rows],
        "summary": summary,
        "harm": harm_table(rows),
        "users_table": users_table(rows),
        "device": arena_bytes(scenario, ws.x.shape[1], ws.x.shape[2], len(classes)),
    }
    text = json.dumps(
        result, indent=2, allow_nan=False, sort_keys=True
    )  # journal rows come back key-sorted
    write_atomic(out / "study.json", text + "\n")
    write_csv(rows, out / "study.csv")
    # What this invocation trained and shared (a resumed run trains less): beside study.json,
    # which stays byte-identical.
    write_atomic(out / "memo.json", json.dumps(stats, indent=2) + "\n")
    traces = [json.loads(_trace_file(out, i).read_text()) for i in range(len(points))]
    write_fleet_report(scenario, points, result, traces, winner_lines(summary), stats, out)
    log(f"epochs trained {stats['jobs_trained']}, answered from the memo {stats['jobs_shared']}")
    return result


def _keep(
    task: UserTask, result, out: Path, journal: Journal, done: dict, stats: dict, log: Log
) -> None:
    """Writes one user's finished configurations (traces, then journal lines)."""
    for index, row, trace, _ in result:
        write_atomic(_trace_file(out, index), json.dumps(trace))
        journal.append(row)
        done[row["key"]] = row
    memo = result[-1][3]
    stats["jobs_trained"] += memo["trained"]
    stats["jobs_shared"] += memo["shared"]
    f1s = [r["mean_f1"] for _, r, _, _ in result if r["mean_f1"] is not None]
    log(
        f"user {task.user}: {len(result)} configurations, mean F1 {np.mean(f1s):.3f}; "
        f"epochs trained {memo['trained']}, answered from the memo {memo['shared']}"
    )


def harm_table(rows: list[FleetRow]) -> dict[str, dict[str, object]]:
    """Per policy: users harmed (final F1 below the general model's) in at least one of
    their configurations, and the share of configurations that harmed."""
    out: dict[str, dict[str, object]] = {}
    for r in rows:
        entry = out.setdefault(r.policy, {"configs": 0, "harmed_configs": 0, "users": set()})
        entry["configs"] += 1
        if r.harmed:
            entry["harmed_configs"] += 1
            entry["users"].add(r.user)
    return {
        p: {
            "configs": e["configs"],
            "harmed_configs": e["harmed_configs"],
            "harmed_users": sorted(e["users"]),
        }
        for p, e in out.items()
    }


def _mean(group: list[FleetRow], name: str) -> float | None:
    vals = [getattr(r, name) for r in group if getattr(r, name) is not None]
    return float(np.mean(vals)) if vals else None


def users_table(rows: list[FleetRow]) -> list[dict[str, object]]:
    """Per user and policy: mean F1, effective F1, final and general F1 over its configs."""
    groups: dict[tuple[str, str], list[FleetRow]] = {}
    for r in rows:
        groups.setdefault((r.user or "", r.policy), []).append(r)
    table = []
    for (user, policy), group in sorted(groups.items()):
        table.append(
            {
                "user": user,
                "policy": policy,
                "configs": len(group),
                "mean_f1": _mean(group, "mean_f1"),
                "f1_effective": _mean(group, "f1_effective"),
                "f1_general": _mean(group, "f1_general"),
                "f1_final": _mean(group, "f1_final"),
                "harmed_configs": sum(r.harmed for r in group),
                "jobs": sum(r.full_jobs + r.tl_jobs for r in group),
                "rejected_jobs": sum(r.rejected_jobs for r in group),
            }
        )
    return table


CSV_COLUMNS = [
    "key",
    "user",
    "fold",
    "policy",
    "personalization",
    "threshold",
    "guard",
    "capacity_mah",
    "charging",
    "days",
    "days_to_first_depletion",
    "fraction_time_dead",
    "mean_f1",
    "f1_effective",
    "easy_share",
    "f1_general",
    "f1_final",
    "harmed",
    *[f"energy_j_{load}" for load in LOADS],
    "charged_j",
    "full_jobs",
    "tl_jobs",
    "interrupted_jobs",
    "rejected_jobs",
    "epochs_lost",
    "depletions",
    "soc_min",
    "soc_end",
    "final_model",
    "accuracy_source",
]


def write_csv(rows: list[FleetRow], path: Path) -> None:
    """One line per configuration and user."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = asdict(row)
        flat.update({f"energy_j_{load}": row.energy_j[load] for load in LOADS})
        writer.writerow({k: "" if flat.get(k) is None else flat[k] for k in CSV_COLUMNS})
    write_atomic(path, buf.getvalue())


def arena_bytes(scenario: FleetScenario, c: int, t: int, n_classes: int) -> dict[str, int]:
    """SRAM the C library's arenas need for a job, by mode (both widths' contexts)."""
    from fedhar.adaptive.slim import SlimNet

    net = SlimNet(general_spec(scenario, c, t, n_classes), (scenario.fleet.model.small_width, 1.0))
    j = scenario.fleet.job
    return {
        mode: int(
            sum(
                Trainer.required_arena_bytes(
                    width_spec(net, w),
                    mode=mode,
                    tl_layers=j.tl_layers,
                    momentum=j.momentum,
                    n_stored_samples=j.batch_size,
                )
                for w in net.widths
            )
        )
        for mode in ("full", "tl")
    } | {"model_bytes": adaptive_bytes(net, net.widths)}

"""The Flower ServerApp: distributes each user's general model and records every reply.

Run config keys (strings; paths as :func:`fedhar.wire.protocol.run_paths` reads them):
``scenario`` (the scenario YAML), ``out`` (output directory), ``data-dir`` (optional),
``resume`` (``"true"`` to skip logged clients; the log must have been written for the same
scenario and seed), ``report`` (``"true"``: write ``report.json``, ``report.csv`` and the
pages at the end, as ``flwr run .`` does; ``fedhar run`` writes them itself) and ``jobs`` (the
processes that pretrain the folds not yet cached; default: every core. Under ``fedhar run`` the
folds are cached before the server starts, so this matters for ``flwr run .``).

Flow: a ``query`` round maps Flower's node ids to users (and before each later round, the nodes
that joined since are asked too, so a SuperNode restarted under a new node id gets its users
back: :meth:`server.strategy.PersonalizationStrategy.rejoin`); then, for each of the scenario's
``federation.rounds``, every user's node receives its own compressed model (its fold's general
model, or after aggregation the improved one) and config; each reply is logged as it arrives
(:class:`fedhar.results.journal.ResultLog`). The report is built from that log
(:mod:`fedhar.studies.run_report`). With a battery-powered device and ``battery.skip_below_soc``, a
client whose battery reported a low state of charge in the previous round is not sent the
round; it is logged as ``skipped`` with the reason (:func:`server.strategy.low_battery`). With
an integer network payload the server holds each user's folded float model: aggregation moves
it by the dequantized updates, and each round sends it re-quantized at the fold network's bits
and activation scales (PTQ with the same scales). In a battery run with aggregation, after each
round the server scores the model it holds for every user on that user's TS_i
(:func:`server.task.global_f1`) and keeps the scores, and which users have not yet joined
(never sent a model so far), in the journal (``OUT/global/round-<r>.json``).
"""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

from flwr.app import Context, UserConfig
from flwr.serverapp import Grid, ServerApp
from tqdm import tqdm

from fedhar.enums import MODES, WEARABLE_JOBS, Status
from fedhar.progress import progress_enabled
from fedhar.results.journal import ResultLog, scenario_identity
from fedhar.results.record import ClientOutcome, ClientRecord
from fedhar.schema.scenario import Scenario, load_scenario
from fedhar.studies.pipeline import prepared
from fedhar.studies.run_report import finish_report, general_report
from fedhar.wire.protocol import TrainConfig, run_paths
from server.fleet import Fleet
from server.selection import not_selected_reason, select
from server.strategy import (
    ClientPlan,
    PersonalizationStrategy,
    RoundUpdates,
    low_battery,
    not_ok,
)
from server.task import GeneralModel, aggregated_keys, general_models, global_f1

APP_DIR = Path(__file__).resolve().parents[1]
"""The Flower app's directory (the repository, or where Flower unpacked the app)."""
KILL_AT_ENV = "FEDHAR_KILL_AT"
"""Test only: the point where the server kills itself (:func:`kill_point`)."""


def _flag(value: object) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def update_mode(scenario: Scenario) -> str:
    """The mode whose personalized weights come back for aggregation (``""``: none)."""
    if scenario.federation.aggregation == "none":
        return ""
    for mode in WEARABLE_JOBS:
        if mode in scenario.personalization.modes:
            return mode.value
    return ""


def train_config(scenario: Scenario, round_number: int, model: GeneralModel) -> TrainConfig:
    """The config one user's node receives in one round."""
    p = scenario.personalization
    return TrainConfig(
        round=round_number,
        user=model.user,
        fold=model.fold,
        modes=[m for m in MODES if m in p.modes],
        epochs=p.epochs,
        lr=p.lr,
        batch_size=p.batch_size,
        momentum=p.momentum,
        warmup_epochs=p.warmup_epochs,
        tl_layers=p.tl_layers,
        seed=scenario.seed,
        norm_mean=list(model.norm_mean),
        norm_std=list(model.norm_std),
        update_mode=update_mode(scenario),
        guard_holdout_every=p.guard_holdout_every,
    )


def build_app(defaults: UserConfig | None = None) -> ServerApp:
    """A ServerApp whose run config falls back on ``defaults`` (the ``flwr run`` config, or
    the engine's settings when the engine passes no run config, as ``run_simulation``)."""
    server_app = ServerApp()

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        run(grid, {**(defaults or {}), **context.run_config})

    return server_app


def run(grid: Grid, rc: UserConfig) -> None:
    """Query round, then ``federation.rounds`` personalization rounds; logs every outcome."""
    paths = run_paths(rc, APP_DIR)
    scenario = load_scenario(paths.scenario)
    resume = _flag(rc.get("resume", "false"))
    log = ResultLog(paths.out, resume=resume, identity=scenario_identity(scenario))
    fed = scenario.federation
    jobs = int(rc.get("jobs", os.cpu_count() or 1))
    models = general_models(scenario, paths.scenario, paths.data_dir, jobs=jobs)
    spec = next(iter(models.values())).spec
    strategy = PersonalizationStrategy(
        spec, fed.payload, round_timeout_s=float(rc.get("round-timeout", 3600))
    )
    infos, failures = strategy.query(grid)
    node_of = {user: node_id for node_id, info in infos.items() for user in info.users}
    users = [u for u in models if fed.users is None or u in fed.users]
    missing = [u for u in users if u not in node_of]
    for user in missing:
        reasons = "; ".join(sorted(set(failures.values()))) or "no node holds this user"
        if log.resumed(0, user) is None:
            reason = f"no node answered for it ({reasons})"
            log.append(ClientOutcome(not_ok(user, models[user].fold, 0, Status.FAILED, reason)))
    present = [u for u in users if u not in missing]
    state = {u: models[u].state for u in users}
    keys = aggregated_keys(spec, fed.aggregation)
    fleet = Fleet(scenario, list(models), present)
    with tqdm(
        total=fed.rounds * len(present), desc="clients", disable=not progress_enabled(), leave=False
    ) as bar:
        for round_number in range(1, fed.rounds + 1):
            if round_number > 1:
                node_of = strategy.rejoin(grid, node_of)
            # Aggregation keeps each accepted update's delta as the update is logged; the
            # received and personalized weights are not held for the whole round.
            updates = RoundUpdates(keys if round_number < fed.rounds else [])
            fleet.start_round(updates)
            chosen = set(select(fed.selection, round_number, scenario.seed, fleet.reports()))
            plans = []
            for user in present:
                row = log.resumed(round_number, user)
                if row is not None:
                    fleet.keep(_from_log(log, row), updates)
                    bar.update()
                    continue
                reason = low_battery(
                    round_number, fleet.previous.get(user), fleet.skip_below_soc
                ) or ("" if user in chosen else not_selected_reason(fed.selection))
                config = train_config(scenario, round_number, models[user])
                if reason and scenario.battery is None:
                    record = not_ok(user, models[user].fold, round_number, Status.SKIPPED, reason)
                    log.append(ClientOutcome(record))
                    fleet.keep(ClientOutcome(record), updates)
                    bar.update()
                    continue
                plans.append(
                    ClientPlan(
                        node_of[user],
                        state[user],
                        replace(config, participate=not reason),
                        models[user].net,
                        fleet.device.get(user),
                        reason,
                    )
                )

            def take(
                outcome: ClientOutcome,
                updates: RoundUpdates = updates,
                taken: list[int] = [0],  # noqa: B006 - one list per round, bound here
                at: str = f"round-{round_number}-row-",
            ) -> None:
                outcome = fleet.judge(outcome, update_mode(scenario))
                log.append(outcome)
                fleet.keep(outcome, updates)
                bar.update()
                taken[0] += 1
                kill_point(f"{at}{taken[0]}")

            strategy.train_round(grid, round_number, plans, take)
            del plans
            kill_point(f"round-{round_number}-aggregation")
            if updates.keys:
                state = updates.apply(state)
            if scenario.battery is not None and keys:
                data = prepared(paths.scenario, paths.data_dir)
                scores = {u: global_f1(data, models[u], state[u]) for u in present}
                unjoined = [u for u in present if u not in fleet.joined]
                log.save_global(round_number, scores, unjoined)
            kill_point(f"round-{round_number}-end")
    log.mark_ended(fed.rounds)
    if _flag(rc.get("report", "false")):
        out = Path(paths.out)
        data = prepared(paths.scenario, paths.data_dir)
        finish_report(general_report(scenario, data, out, resume=True).writer, out)


def kill_point(name: str) -> None:
    """Test only: the process kills itself (SIGKILL, as a crash) when ``$FEDHAR_KILL_AT`` is
    ``name``: ``round-<r>-row-<i>`` (after the i-th reply of round r is logged),
    ``round-<r>-aggregation`` (every reply of round r logged, before its aggregation) or
    ``round-<r>-end`` (after it). The resume tests use it to crash a run at a known point."""
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


app = build_app()


def _from_log(log: ResultLog, row: dict) -> ClientOutcome:
    """A logged outcome with its kept update (for aggregation) and its device's state, after
    a resume."""
    record = ClientRecord.from_dict(row)
    device = log.load_device(record.round, record.user)
    kept = log.load_update(record.round, record.user)
    if record.status != Status.OK or kept is None:
        return ClientOutcome(record, device=device)
    received, update = kept
    return ClientOutcome(record, received=received, update=update, device=device)

"""``fedhar run SCENARIO --out DIR``: prepare data, pretrain each fold, run the federation.

For each fold it pretrains the general model (or loads it from the cache) and evaluates each of the
fold's users on their test set TS_i without personalization (mode ``none``). Each user's record is
written to ``DIR/report.json`` and ``DIR/report.csv`` as soon as it is known; ``--resume`` skips
users already in the report. Then the Flower federation runs on the chosen engine
(:mod:`fedhar.engines.runner`): every user's simulated MCU personalizes its compressed general model
in the scenario's modes, and each reply is logged to ``DIR/clients.jsonl`` as it arrives
(``--resume`` skips logged clients). The device figures are merged into the report, and the figures
and ``report.html`` are drawn. A scenario with a ``sweep`` runs once per window length into
``DIR/T<length>/`` and compares the runs in ``DIR/report.html``. Timing goes to ``DIR/run.json`` and
stdout, never into ``report.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fedhar import __version__
from fedhar.commands import add_data_dir
from fedhar.commands.scenario import ListScenarios

if TYPE_CHECKING:
    from fedhar.schema.scenario import Scenario

EPILOG = """\
A scenario is a YAML file with the sections name, seed, data, split, model, pretrain,
personalization, federation, mcu and (optional) battery, a battery-powered wearable whose
state of charge and energy by load each client reports; every key is documented in
docs/scenario.md
(python -m fedhar.schema.docs prints it). Unknown keys and wrong values are errors
(exit code 2, one line per problem naming the file, the key, what was expected and what
was found).

outputs:
  DIR/report.json  per-user records (user, fold, n_train, n_test, f1/accuracy/
                   balanced_accuracy/confusion per mode; from the device: status, reason,
                   f1 per mode, f1_deployed, memory_bytes, ops, cycles, seconds, energy_j,
                   learning curves, payload_bytes), every round's record (the last
                   marked), a battery run's energy by load per round and in total, and a
                   per-mode summary (mean, std, mean_deployed, share of users improved, cost);
                   byte-identical for the same scenario and seed on the default engine
  DIR/report.csv   one row per user, mode and round (tidy)
  DIR/clients.jsonl  every client's reply per round, appended as it arrives (a first
                   line names the run: --resume refuses another scenario's log)
  DIR/*.png, DIR/*.svg, DIR/report.html  figures and the one-page report
  DIR/run.json     wall times and cache hits of this invocation

Without --resume, an earlier run of the same scenario and seed in DIR is replaced;
another scenario's or seed's results are refused unless --force (files fedhar did not
write are never deleted).

exit codes: 0 done, 1 runtime error, 2 invalid input (scenario, arguments, a data file that
cannot be read, a value the data cannot satisfy, DIR holding another run), 130 interrupted.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``run`` sub-command."""
    parser = subparsers.add_parser(
        "run",
        help="run a scenario: pretrain per fold, run the federation, write the report",
        description="Prepare the data, pretrain the general model of each fold (cached), score "
        "every user on their test set without personalization, then run the Flower federation "
        "in which each user's simulated MCU personalizes its model.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "scenario",
        metavar="SCENARIO",
        help="scenario YAML file, or a shipped scenario's name (e.g. quickstart)",
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--list-scenarios", action=ListScenarios, help="list the shipped scenarios and exit"
    )
    add_data_dir(parser)
    parser.add_argument(
        "--resume", action="store_true", help="keep users already in DIR/report.json"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace the results of another scenario or seed in DIR (refused otherwise)",
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="pretrain again instead of using the cache"
    )
    parser.add_argument(
        "--engine",
        choices=("inprocess", "ray", "deployment"),
        help="Flower engine (default: the scenario's federation.engine): inprocess, ray "
        "(Flower simulation) or deployment (local SuperLink and SuperNodes, flwr run)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="torch CPU threads (default: 1; more threads only help on an idle machine)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="processes that pretrain the uncached folds at once, each on --threads threads, "
        "and that run the in-process engine's clients (default: all cores, %(default)s here); "
        "the results do not depend on it",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Runs the command; returns the exit code."""
    # Imported here so that `fedhar run --help` does not pay for torch.
    import torch

    from fedhar.commands import print_error
    from fedhar.errors import InputError
    from fedhar.schema.base import SchemaError
    from fedhar.schema.scenario import load_scenario
    from fedhar.schema.shipped import resolve_scenario

    started = time.perf_counter()
    args.scenario = resolve_scenario(args.scenario)
    try:
        scenario = load_scenario(args.scenario)
    except SchemaError as exc:
        print_error(exc)
        return 2
    for flag in ("threads", "jobs"):
        if getattr(args, flag) < 1:
            got = getattr(args, flag)
            print(f"error: --{flag}: expected an integer >= 1, got {got}", file=sys.stderr)
            return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: --out: expected a directory, found a file")
    torch.set_num_threads(args.threads)
    if scenario.sweep is None:
        return run_one(args, scenario, out, started)
    return run_sweep(args, scenario, out, started)


def run_sweep(args: argparse.Namespace, scenario: Scenario, out: Path, started: float) -> int:
    """Runs the scenario once per ``sweep.window`` into ``out/T<window>/``, then writes the
    Table II-style comparison (``out/report.json``, ``out/table2.png``, ``out/report.html``)."""
    from fedhar.enums import PAPER_MODES
    from fedhar.files import write_atomic
    from fedhar.results.federation import sweep_row, write_pages

    if scenario.sweep is not None and scenario.sweep.selection is not None:
        return run_strategies(args, scenario, out, started)
    rows = []
    for window in scenario.sweep.window if scenario.sweep else []:
        stride = max(1, round(window * scenario.data.stride / scenario.data.window))
        raw = scenario.model_dump(mode="json")
        raw["data"].update(window=window, stride=stride)
        raw.update(name=f"{scenario.name}-T{window}", sweep=None)
        print(f"--- sweep: window {window}, stride {stride}", flush=True)
        code = _run_variant(args, raw, out / f"T{window}", f"sweep.window {window}")
        if code:
            return code
        rows.append(sweep_row(window, json.loads((out / f"T{window}" / "report.json").read_text())))
    payload = {"format": 1, "header": {"scenario": scenario.name, "sweep": "window"},
               "sweep": rows, "clients": [], "summary": {}}  # fmt: skip
    write_atomic(out / "report.json", json.dumps(payload, sort_keys=True, indent=1) + "\n")
    write_pages(out, rows)
    print("input     " + "".join(f"{m:>12}" for m in PAPER_MODES))
    for r in rows:
        cells = [r["mean"].get(m) for m in PAPER_MODES]
        print(f"({r['window']:>3},3)  " + "".join(
            f"{c:>12.3f}" if c is not None else f"{'-':>12}" for c in cells
        ))  # fmt: skip
    print(f"sweep wall time {time.perf_counter() - started:.1f} s; page: {out / 'report.html'}")
    return 0


def _run_variant(args: argparse.Namespace, raw: dict, out: Path, label: str) -> int:
    """Writes the sweep's variant ``raw`` (scenario data) to ``out/scenario.yaml`` and runs it
    into ``out``; returns the exit code (2, with one line naming ``label``, when it is
    invalid)."""
    import yaml

    from fedhar.commands import print_error
    from fedhar.files import write_atomic
    from fedhar.schema.base import SchemaError
    from fedhar.schema.scenario import load_scenario

    target = out / "scenario.yaml"
    write_atomic(target, yaml.safe_dump(raw, sort_keys=True))
    try:
        variant = load_scenario(target)
    except SchemaError as exc:
        print_error(exc, f"error: {label}: ")
        return 2
    return run_one(args, variant, out, time.perf_counter())


def run_strategies(args: argparse.Namespace, scenario: Scenario, out: Path, started: float) -> int:
    """Runs the scenario once per ``sweep.selection`` strategy and ``sweep.deadline_s`` into
    ``out/<strategy>-<deadline>/`` (:func:`fedhar.results.strategies.cell_name`), then writes
    their comparison (``out/strategies.json``, ``out/strategies.md``) and prints it."""
    from fedhar.files import write_atomic
    from fedhar.results.strategies import cell_name, strategies_markdown, strategy_row

    sweep = scenario.sweep
    assert sweep is not None and sweep.selection is not None
    deadlines = sweep.deadline_s or [scenario.federation.deadline_s]
    rows = []
    for selection in sweep.selection:
        for deadline in deadlines:
            cell = cell_name(selection.strategy, selection.k, deadline)
            raw = scenario.model_dump(mode="json")
            raw["federation"].update(selection=selection.model_dump(mode="json"))
            raw["federation"].update(deadline_s=deadline)
            raw.update(name=f"{scenario.name}-{cell}", sweep=None)
            print(f"--- sweep: {cell}", flush=True)
            code = _run_variant(args, raw, out / cell, f"sweep {cell}")
            if code:
                return code
            rows.append(strategy_row(cell, json.loads((out / cell / "report.json").read_text())))
    payload = {"format": 1, "scenario": scenario.name, "rows": rows}
    write_atomic(out / "strategies.json", json.dumps(payload, sort_keys=True, indent=1) + "\n")
    table = strategies_markdown(rows)
    write_atomic(out / "strategies.md", table)
    print(table, end="")
    print(f"sweep wall time {time.perf_counter() - started:.1f} s; table: {out / 'strategies.md'}")
    return 0


def run_one(args: argparse.Namespace, scenario: Scenario, out: Path, started: float) -> int:
    """Runs one scenario (no sweep) into ``out``; returns the exit code."""
    import yaml

    from fedhar.engines.runner import EngineError, run_config, run_federation
    from fedhar.enums import Mode, Status
    from fedhar.errors import InputError, ScenarioValueError
    from fedhar.files import write_atomic
    from fedhar.progress import say
    from fedhar.results.federation import FederationFailure
    from fedhar.results.journal import CLIENTS_FILE
    from fedhar.results.record import ClientRecord
    from fedhar.results.report import left_out, summarize
    from fedhar.studies.pipeline import prepare
    from fedhar.studies.run_report import finish_report, general_report, refuse_foreign_results

    # The engines read a snapshot of the scenario, not the user's file: an edit during the run
    # changes nothing. It lives in DIR, so the battery section's file paths are anchored to the
    # scenario's folder.
    frozen = scenario
    if scenario.battery is not None:
        battery = scenario.battery.anchored(Path(args.scenario).resolve().parent)
        frozen = scenario.model_copy(update={"battery": battery})
    if not args.force:
        refuse_foreign_results(scenario, frozen, out)
    try:
        prepared = prepare(scenario, args.data_dir)
    except ScenarioValueError as exc:
        raise exc.in_file(args.scenario) from None
    except InputError:
        raise  # it names its own file (a bits.json)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    prepared_s = time.perf_counter() - started
    if not args.resume and (out / CLIENTS_FILE).exists():
        print(f"{out}: replacing the earlier run there (--resume continues it)", flush=True)
    print(
        f"{scenario.name}: {prepared.dataset.name}, {len(prepared.users)} users, "
        f"{prepared.n_classes} classes ({', '.join(prepared.dataset.classes)}), "
        f"windows {prepared.spec.input_length}x{prepared.spec.input_channels}, "
        f"{len(prepared.folds)} folds, model {prepared.spec.name} "
        f"({prepared.spec.trainable_count()} parameters)"
    )

    def show(record: ClientRecord) -> None:
        say(
            f"user {record.user:>6}  {record.fold:<12} n_train {record.n_train:>4}  "
            f"n_test {record.n_test:>4}  macro-F1 none {record.modes[Mode.NONE].f1:.3f}"
        )

    general = general_report(
        scenario,
        prepared,
        out,
        resume=args.resume,
        use_cache=not args.no_cache,
        jobs=args.jobs,
        threads=args.threads,
        on_record=show,
    )
    writer, hits, misses = general.writer, general.cache_hits, general.cache_misses
    timing = {
        "prepare_s": prepared_s,
        "load_s": prepared.load_s,
        "windows_s": prepared.windows_s,
        "pretrain_s": general.pretrain_s,
        "evaluate_s": general.evaluate_s,
    }
    engine = args.engine or scenario.federation.engine
    t0 = time.perf_counter()
    snapshot = out / "scenario.yaml"
    write_atomic(snapshot, yaml.safe_dump(frozen.model_dump(mode="json"), sort_keys=True))
    config = run_config(snapshot, out, args.data_dir, args.resume)
    try:
        run_federation(
            engine, config, n_nodes=len(prepared.users), seed=scenario.seed, jobs=args.jobs
        )
    except EngineError as exc:
        # The report says what the federation did before it failed, and that it failed.
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        fed = scenario.federation
        users = [r.user for r in writer.ordered() if fed.users is None or r.user in fed.users]
        finish_report(writer, out, FederationFailure(reason, users, fed.rounds))
        print(f"error: engine {engine}: {reason}", file=sys.stderr)
        return 1
    timing["federation_s"] = time.perf_counter() - t0
    finish_report(writer, out)
    records = writer.ordered()
    for record in records:
        if record.status != Status.OK:
            print(f"user {record.user:>6}  {record.status}: {record.reason}")
    left = left_out(records)
    if left:
        print(f"the summary leaves out the users {', '.join(left)} (not ok nor skipped)")
    for mode, s in summarize(records).items():
        extra = "" if s.mean_deployed is None else f", deployed {s.mean_deployed:.3f}"
        if s.improved is not None:
            extra += f", improved for {100 * s.improved:.0f}% of users"
        print(
            f"mean macro-F1 [{mode}] over {s.n_users} users: {s.mean:.3f} "
            f"(std {s.std:.3f}, min {s.min:.3f}, max {s.max:.3f}{extra})"
        )
    wall = time.perf_counter() - started
    run_info = {
        "wall_seconds": round(wall, 3),
        **{k: round(v, 3) for k, v in timing.items()},
        "pretrain_cache_hits": hits,
        "pretrain_cache_misses": misses,
        "pretrain_fold_train_s": general.fold_train_s,
        "pretrain_train_windows": general.train_windows,
        "threads": args.threads,
        "jobs": args.jobs,
        "engine": engine,
        "fedhar_version": __version__,
    }
    write_atomic(out / "run.json", json.dumps(run_info, indent=1, sort_keys=True) + "\n")
    print(
        f"wall time {wall:.1f} s (pretraining {timing['pretrain_s']:.1f} s, federation "
        f"{timing['federation_s']:.1f} s on {engine}; cache: {hits} hit(s), {misses} "
        f"miss(es)); report: {writer.json_path}"
    )
    return 0

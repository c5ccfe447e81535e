"""``fedhar run SCENARIO --out DIR``: prepare data, pretrain each fold, score every user.

For each fold it pretrains the general model (or loads it from the cache) and evaluates each
of the fold's users on their test set TS_i without personalization (mode ``none``). Each
user's record is written to ``DIR/report.json`` and ``DIR/report.csv`` as soon as it is known;
``--resume`` skips users already in the report. Timing goes to ``DIR/run.json`` and stdout,
never into ``report.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

from fedhar import __version__
from fedhar.data.paths import DatasetMissingError
from fedhar.pipeline import Prepared, evaluate_client, prepare, pretrain_fold
from fedhar.progress import progress
from fedhar.report import ReportError, ReportWriter, summarize
from fedhar.scenario import Scenario, ScenarioError, load_scenario

EPILOG = """\
A scenario is a YAML file with the sections name, seed, data, split, model, pretrain,
personalization, federation and mcu; every key is documented in docs/scenario.md
(python -m fedhar.scenario prints it). Unknown keys and wrong values are errors
(exit code 2, one line naming the file and the key).

outputs:
  DIR/report.json  per-user records (user, fold, n_train, n_test, f1/accuracy/
                   balanced_accuracy/confusion per mode) and a per-mode summary;
                   byte-identical for the same scenario and seed
  DIR/report.csv   one row per user
  DIR/run.json     wall times and cache hits of this invocation

exit codes: 0 done, 1 data or runtime error, 2 invalid scenario or arguments.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``run`` sub-command."""
    parser = subparsers.add_parser(
        "run",
        help="run a scenario: pretrain per fold, evaluate every user, write the report",
        description=__doc__.splitlines()[0].strip("`"),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", metavar="SCENARIO", help="scenario YAML file")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--data-dir",
        metavar="D",
        help="data directory (default: the scenario's data.data_dir, then $FEDHAR_DATA_DIR, "
        "then the user cache)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep users already in DIR/report.json"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="pretrain again instead of using the cache"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        metavar="N",
        help="torch CPU threads (default: 1; more threads only help on an idle machine)",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    """Runs the command; returns the exit code."""
    started = time.perf_counter()
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.threads < 1:
        print(f"error: --threads: expected an integer >= 1, got {args.threads}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    try:
        prepared = prepare(scenario, args.data_dir)
    except (DatasetMissingError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    prepared_s = time.perf_counter() - started
    try:
        writer = ReportWriter(args.out, report_header(scenario, prepared), resume=args.resume)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{scenario.name}: {prepared.dataset.name}, {len(prepared.users)} users, "
        f"{prepared.n_classes} classes ({', '.join(prepared.dataset.classes)}), "
        f"windows {prepared.spec.input_length}x{prepared.spec.input_channels}, "
        f"{len(prepared.folds)} folds, model {prepared.spec.name} "
        f"({prepared.spec.trainable_count()} parameters)"
    )
    timing = {"prepare_s": prepared_s, "pretrain_s": 0.0, "evaluate_s": 0.0}
    hits = misses = 0
    for fold in progress(prepared.folds, desc="folds", total=len(prepared.folds)):
        todo = [u for u in fold.test_users if not writer.done(u)]
        if not todo:
            continue
        t0 = time.perf_counter()
        result = pretrain_fold(prepared, fold, scenario, use_cache=not args.no_cache)
        timing["pretrain_s"] += time.perf_counter() - t0
        hits += result.from_cache
        misses += not result.from_cache
        t0 = time.perf_counter()
        for user in todo:
            record = evaluate_client(prepared, fold, prepared.users[user], result)
            writer.add(record)
            print(
                f"user {record.user:>6}  {record.fold:<12} n_train {record.n_train:>4}  "
                f"n_test {record.n_test:>4}  macro-F1 none {record.f1['none']:.3f}",
                flush=True,
            )
        timing["evaluate_s"] += time.perf_counter() - t0
    writer.write()
    records = writer.ordered()
    for mode, s in summarize(records).items():
        print(
            f"mean macro-F1 [{mode}] over {s.n_users} users: {s.mean:.3f} "
            f"(std {s.std:.3f}, min {s.min:.3f}, max {s.max:.3f})"
        )
    wall = time.perf_counter() - started
    run_info = {
        "wall_seconds": round(wall, 3),
        **{k: round(v, 3) for k, v in timing.items()},
        "pretrain_cache_hits": hits,
        "pretrain_cache_misses": misses,
        "threads": args.threads,
        "fedhar_version": __version__,
    }
    (Path(args.out) / "run.json").write_text(json.dumps(run_info, indent=1, sort_keys=True) + "\n")
    print(
        f"wall time {wall:.1f} s (pretraining {timing['pretrain_s']:.1f} s; "
        f"cache: {hits} hit(s), {misses} miss(es)); report: {writer.json_path}"
    )
    return 0


def report_header(scenario: Scenario, prepared: Prepared) -> dict[str, object]:
    """Identity of a run, stored in ``report.json``: resuming requires an equal header."""
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True)
    return {
        "scenario": scenario.name,
        "scenario_sha256": hashlib.sha256(canonical.encode()).hexdigest(),
        "dataset": prepared.dataset.name,
        "classes": list(prepared.dataset.classes),
        "seed": scenario.seed,
        "model": prepared.spec.name,
        "window": [prepared.spec.input_channels, prepared.spec.input_length],
        "modes": ["none"],
    }

"""Scale of the in-process engine: N synthetic clients for R rounds.

Runs the real ServerApp and ClientApp (C-library personalization, int8 payloads, FedAvg of the
feature layers between rounds) on ``N`` synthetic users, for several ``N``, and reports wall
time, peak resident memory and the wall time per client per round. Data preparation and
pretraining are done (and timed) first, so the federation timing holds only the federation.
Each ``N`` runs in its own process, so each peak memory is that run's own.

    python benchmarks/scale.py                       # N = 100, 300, 1000; 3 rounds
    python benchmarks/scale.py --clients 1000 --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIO = """\
name: scale-{n}
seed: 0
data:
  dataset: synthetic
  options: {{n_users: {n}, seconds_per_activity: 8}}
  window: 20
  stride: 20
split: {{method: kfold, k: 2}}
pretrain: {{epochs: 1, patience: 1, val_fraction: 0.0}}
personalization: {{modes: [none, tl], epochs: 1, warmup_epochs: 1, batch_size: 8}}
federation: {{rounds: {rounds}, aggregation: fedavg_features}}
"""


def measure(n_clients: int, rounds: int, workdir: Path) -> dict[str, float]:
    """One run in this process: returns timings (s) and peak RSS (bytes)."""
    from fedhar.engines.app import load_component, load_project
    from fedhar.engines.runner import run_config, run_federation
    from fedhar.enums import Status
    from fedhar.results.journal import read_rows
    from fedhar.schema.scenario import load_scenario
    from fedhar.studies.pipeline import prepared

    # The server's pretraining of the general models, imported from the app as the engine does.
    server_task = load_component("server.task:general_models", load_project().directory)

    path = workdir / f"scale-{n_clients}.yaml"
    path.write_text(SCENARIO.format(n=n_clients, rounds=rounds))
    t0 = time.perf_counter()
    data = prepared(str(path.resolve()), None)
    server_task.general_models(load_scenario(path), str(path.resolve()), None)
    prep_s = time.perf_counter() - t0
    out = workdir / f"out-{n_clients}"
    t0 = time.perf_counter()
    run_federation("inprocess", run_config(path, out, None, False), n_nodes=len(data.users))
    fed_s = time.perf_counter() - t0
    rows = read_rows(out / "clients.jsonl")
    ok = sum(r["status"] == Status.OK for r in rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "clients": len(data.users),
        "rounds": rounds,
        "replies_ok": ok,
        "replies": len(rows),
        "prepare_and_pretrain_s": round(prep_s, 2),
        "federation_s": round(fed_s, 2),
        "per_client_round_ms": round(1000 * fed_s / (len(data.users) * rounds), 2),
        "peak_rss_mb": round(peak / 2**20, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        with tempfile.TemporaryDirectory(prefix="fedhar-scale-") as tmp:
            print(json.dumps(measure(args.clients[0], args.rounds, Path(tmp))))
        return 0
    env = {**os.environ, "CI": "true"}
    results = []
    for n in args.clients:
        done = subprocess.run(
            [sys.executable, __file__, "--single", "--clients", str(n), "--rounds",
             str(args.rounds)],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps({"runs": results}))
        return 0
    print(
        "| clients | rounds | ok replies | prepare+pretrain (s) | federation (s) "
        "| per client per round (ms) | peak RSS (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['clients']} | {r['rounds']} | {r['replies_ok']}/{r['replies']} "
            f"| {r['prepare_and_pretrain_s']} | {r['federation_s']} "
            f"| {r['per_client_round_ms']} | {r['peak_rss_mb']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

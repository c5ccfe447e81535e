"""Scale of the in-process engine: N synthetic clients for R rounds.

Runs the real ServerApp and ClientApp (C-library personalization, int8 payloads, FedAvg of the
feature layers between rounds) on ``N`` synthetic users, for several ``N``, and reports wall
time, peak resident memory and the wall time per client per round. Data preparation and
pretraining are done (and timed) first, so the federation timing holds only the federation.
Each ``N`` runs in its own process, so each peak memory is that run's own: the engine's process
(``peak_rss_mb``, which also hosts worker 0's clients) and its largest client worker process
(``worker_peak_rss_mb``); ``total_peak_mb`` bounds what they held at once (the engine's peak
plus each other worker at the largest worker's peak).

Beside the time it prints the federation's training arithmetic rate: the multiply-adds the
clients' C library counted (every mode's ``ops.macs`` in the journal) over the federation's
wall time, as a share of this machine's all-core float32 sgemm rate measured in the same run.

    python benchmarks/scale.py                       # N = 100, 300, 1000; 3 rounds
    python benchmarks/scale.py --clients 1000 10000 --json
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import sgemm_macs_per_s  # noqa: E402

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


def measure(n_clients: int, rounds: int, workdir: Path, jobs: int) -> dict[str, float]:
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
    config = run_config(path, out, None, False)
    run_federation("inprocess", config, n_nodes=len(data.users), jobs=jobs)
    fed_s = time.perf_counter() - t0
    rows = read_rows(out / "clients.jsonl")
    ok = sum(r["status"] == Status.OK for r in rows)
    macs = sum(m.get("ops", {}).get("macs", 0) for r in rows for m in r.get("modes", {}).values())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {
        "jobs": jobs,
        "train_gmacs": round(macs / 1e9, 3),
        "gmac_per_s": round(macs / fed_s / 1e9, 3),
        "worker_peak_rss_mb": round(worker / 2**20, 1),
        "total_peak_mb": round((peak + (jobs - 1) * worker) / 2**20, 1),
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
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        with tempfile.TemporaryDirectory(prefix="fedhar-scale-") as tmp:
            print(json.dumps(measure(args.clients[0], args.rounds, Path(tmp), args.jobs)))
        return 0
    env = {**os.environ, "CI": "true"}
    results = []
    for n in args.clients:
        done = subprocess.run(
            [sys.executable, __file__, "--single", "--clients", str(n), "--rounds",
             str(args.rounds), "--jobs", str(args.jobs)],
            capture_output=True, text=True, env=env, check=True,
        )  # fmt: skip
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    peak = sgemm_macs_per_s()
    for r in results:
        r["of_sgemm"] = round(r["gmac_per_s"] * 1e9 / peak, 4)
    if args.json:
        print(json.dumps({"sgemm_gmac_per_s": peak / 1e9, "runs": results}))
        return 0
    print(f"sgemm on all {os.cpu_count()} cores: {peak / 1e9:.1f} GMAC/s")
    print(
        "| clients | rounds | jobs | ok replies | prepare+pretrain (s) | federation (s) "
        "| per client per round (ms) | GMAC/s (of sgemm) | peak RSS engine / worker / total (MB) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['clients']} | {r['rounds']} | {r['jobs']} | {r['replies_ok']}/{r['replies']} "
            f"| {r['prepare_and_pretrain_s']} | {r['federation_s']} "
            f"| {r['per_client_round_ms']} | {r['gmac_per_s']:.2f} ({100 * r['of_sgemm']:.1f}%) "
            f"| {r['peak_rss_mb']} / {r['worker_peak_rss_mb']} / {r['total_peak_mb']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

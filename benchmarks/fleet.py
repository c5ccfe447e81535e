"""Speed of the fleet study through sharing: the same study with the job memo shared by all of
a user's configurations (the default) and with a memo per configuration (every job trained
again), on a subset of users and days; the results must be identical, and the epochs trained, the
epoch requests answered from the memo and the wall times are printed with their ratio. With
``--full``, the whole scenario runs once more, cold (its general models trained in a fresh
cache), for the study's wall time.

    python benchmarks/fleet.py [SCENARIO] [--users N] [--days N] [--jobs N] [--full]
        [--data-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

from fedhar.studies.fleet import _load, load_fleet_scenario, run_fleet

REPO = Path(__file__).resolve().parents[1]


def _timed(
    scenario: Path, out: Path, jobs: int, share: bool, data_dir: str | None
) -> tuple[float, dict, bytes]:
    t0 = time.perf_counter()
    run_fleet(scenario, out, log=lambda _: None, data_dir=data_dir, jobs=jobs, share=share)
    wall = time.perf_counter() - t0
    memo = json.loads((out / "memo.json").read_text())
    return wall, memo, (out / "study.json").read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default=str(REPO / "scenarios/fleet_wisdm2019.yaml"))
    parser.add_argument("--users", type=int, default=1, help="users of the shared/unshared A/B")
    parser.add_argument("--days", type=int, default=10, help="days of the A/B's devices")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--full", action="store_true", help="also run the whole study, cold")
    parser.add_argument("--data-dir", metavar="DIR", help="dataset directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    scenario = Path(args.scenario)
    data = yaml.safe_load(scenario.read_text())
    _, _, users = _load(load_fleet_scenario(scenario), args.data_dir)
    results: dict[str, object] = {"scenario": str(scenario), "jobs": args.jobs}
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / "subset.yaml"
        data["fleet"]["users"] = users[: args.users]
        days = data["study"]["days"]
        data["study"]["days"] = args.days
        sub.write_text(yaml.safe_dump(data))
        shared = _timed(sub, Path(tmp) / "shared", args.jobs, True, args.data_dir)
        alone = _timed(sub, Path(tmp) / "alone", args.jobs, False, args.data_dir)
        rows = json.loads(shared[2])["rows"]
        n_configs = len(rows)
        results["ab"] = {
            "users": users[: args.users],
            "days": args.days,
            "configurations": n_configs,
            "identical_study_json": shared[2] == alone[2],
            "shared": {"wall_s": round(shared[0], 1), **shared[1]},
            "per_configuration": {"wall_s": round(alone[0], 1), **alone[1]},
            "epochs_trained_ratio": round(alone[1]["jobs_trained"] / shared[1]["jobs_trained"], 2),
            "wall_ratio": round(alone[0] / shared[0], 2),
        }
        data["study"]["days"] = days
        if args.full:
            os.environ["FEDHAR_CACHE_DIR"] = str(Path(tmp) / "cache")
            wall, memo, body = _timed(scenario, Path(tmp) / "full", args.jobs, True, args.data_dir)
            results["full"] = {
                "users": len(users),
                "configurations": len(json.loads(body)["rows"]),
                "wall_s": round(wall, 1),
                **memo,
            }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    ab = results["ab"]
    print(
        f"{scenario.name}: {ab['configurations']} configurations of users {ab['users']}, "
        f"{ab['days']} days"
    )
    for name in ("shared", "per_configuration"):
        r = ab[name]
        print(
            f"  memo {name:18s} {r['wall_s']:7.1f} s, epochs trained {r['jobs_trained']:6d}, "
            f"answered from the memo {r['jobs_shared']:6d}"
        )
    print(
        f"  sharing trains {ab['epochs_trained_ratio']}x fewer epochs, {ab['wall_ratio']}x "
        f"faster; identical study.json: {ab['identical_study_json']}"
    )
    if "full" in results:
        f = results["full"]
        print(
            f"whole study, cold: {f['users']} users, {f['configurations']} configurations in "
            f"{f['wall_s']:.1f} s; epochs trained {f['jobs_trained']}, answered from the memo "
            f"{f['jobs_shared']}"
        )


if __name__ == "__main__":
    main()

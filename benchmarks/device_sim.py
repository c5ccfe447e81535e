"""Device-simulation speed: 36 devices x 30 days with one inference every 10 s (about 9.3
million inferences), plus 1, 10 and 100 devices to show how the cost grows.

Every window is decided and booked: inference energy is aggregated per control tick, not
sampled. The benchmark checks that the booked inference energy equals, to float precision,
easy windows x easy cost + hard windows x hard cost.

    python benchmarks/device_sim.py [--json] [--days 30] [--devices 36] [--scaling 1,10,100]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fedhar.schema.policies import policy
from fedhar.studies.battery import load_study_scenario
from fedhar.wearable.build import build_wearable_config
from fedhar.wearable.simulation import Wearable

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "battery_policies.yaml"
DAY_S = 86400.0


def simulate(devices: int, days: int) -> dict[str, float]:
    """Runs ``devices`` devices for ``days`` one-day rounds; returns timing and counts."""
    scenario = load_study_scenario(SCENARIO)
    start = time.perf_counter()
    inferences = 0
    worst_rel_err = 0.0
    for seed in range(devices):
        config = build_wearable_config(
            scenario.battery,
            SCENARIO.parent,
            capacity_mah=30.0,
            charging=policy("charging", "random", probability=0.6),
            personalization=policy("personalization", "charging_full_else_tl"),
            threshold=policy("threshold", "stepwise", steps=[[0.0, 0.0], [0.3, 0.5], [0.6, 1.0]]),
            seed=seed,
        )
        device = Wearable(config)
        for day in range(1, days + 1):
            device.advance(day * DAY_S)
        totals = device.state.totals
        inferences += totals.inferences
        cost = config.costs.inference
        hard = totals.inferences - totals.easy
        expected = (
            totals.easy * cost.easy.joules_per_inference + hard * cost.hard.joules_per_inference
        )
        if expected:
            rel = abs(totals.energy_j["inference"] - expected) / expected
            worst_rel_err = max(worst_rel_err, rel)
    seconds = time.perf_counter() - start
    return {
        "devices": devices,
        "days": days,
        "inferences": inferences,
        "seconds": seconds,
        "inferences_per_s": inferences / seconds,
        "seconds_per_device_day": seconds / (devices * days),
        "inference_energy_rel_err": worst_rel_err,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--devices", type=int, default=36)
    parser.add_argument("--scaling", default="1,10,100", help="device counts, comma-separated")
    args = parser.parse_args(argv)
    main_run = simulate(args.devices, args.days)
    scaling = [simulate(int(n), args.days) for n in args.scaling.split(",") if n]
    result = {**main_run, "target_seconds": 60.0, "scaling": scaling}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{main_run['devices']} devices x {main_run['days']} days: "
        f"{main_run['inferences']:,} inferences in {main_run['seconds']:.2f} s "
        f"({main_run['inferences_per_s']:,.0f}/s; target <= 60 s); "
        f"inference energy rel. error {main_run['inference_energy_rel_err']:.1e}"
    )
    for row in scaling:
        print(
            f"  {row['devices']:>4} devices: {row['seconds']:7.2f} s, "
            f"{1000 * row['seconds_per_device_day']:.2f} ms per device-day"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

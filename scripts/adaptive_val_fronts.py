"""Prints the validation-side numbers of one ``fedhar adaptive`` run, by which training variants
are chosen without looking at the test split: the run's variable-width modes swept on the
validation windows and compared with the static grid's validation front (counted pricing on
the scenario's ``profile``), next to the test-side figures of its ``summary.json``.

    .venv/bin/python scripts/adaptive_val_fronts.py SCENARIO RUN_DIR [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fedhar.adaptive.artifact import load_model
from fedhar.adaptive.fronts import cycles_saving_at_equal_f1, max_gap_to_static_front
from fedhar.adaptive.modes import collect_outputs, expected_cost, sweep, thresholds
from fedhar.mcu import load_profile
from fedhar.schema.adaptive import load_adaptive_scenario
from fedhar.studies.adaptive import GRID_FILE, build_classifier, load_windows, split_users


def main() -> None:
    """Parses the arguments and prints one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--data-dir")
    args = parser.parse_args()
    scenario, cfg = load_adaptive_scenario(args.scenario)
    ds, ws = load_windows(scenario, args.data_dir)
    split = split_users(ds, ws, scenario, cfg)
    net, width, _ = load_model(args.run_dir / "model.pt")
    clf = build_classifier(net, width)
    costs = expected_cost(clf.small, clf.large, load_profile(cfg.profile))
    x, y = split.val
    ths = thresholds(cfg.thresholds, cfg.th_min)
    modes = sweep(y, collect_outputs(clf.small, clf.large, x), costs, ths, split.n_classes)
    lines = (args.run_dir / GRID_FILE).read_text().splitlines()[1:]
    grid = [json.loads(line) for line in lines]
    static_f1 = np.array([g["f1_val"] for g in grid])
    static_cycles = np.array([g["cycles"] for g in grid])
    mode_f1 = np.array([m.f1 for m in modes])
    mode_cycles = np.array([m.cycles_avg for m in modes])
    s = json.loads((args.run_dir / "summary.json").read_text())
    row = {
        "large_model": s["large_model"],
        "small_width": s["small_width"],
        "small_f1_val": s["small_f1_val"],
        "small_f1_test": s["small_f1_test"],
        "val_max_gap": max_gap_to_static_front(mode_f1, mode_cycles, static_f1, static_cycles),
        "val_saving": cycles_saving_at_equal_f1(mode_f1, mode_cycles, static_f1, static_cycles),
        "val_pareto_modes": sum(m.pareto for m in modes),
        "test_max_gap": s["max_gap_to_static_front"],
        "test_saving": s["cycles_saving_at_equal_f1"],
        "test_pareto_modes": s["pareto_modes"],
        "memory_static_over_adaptive": s["memory_ratio_static_over_adaptive"],
    }
    if "cascade" in s:
        row["memory_cascade_over_adaptive"] = s["cascade"]["memory_ratio_cascade_over_adaptive"]
    print(json.dumps(row))


if __name__ == "__main__":
    main()

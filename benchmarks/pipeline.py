"""End-to-end speed of ``fedhar run``: cold and cached LOSO, and the cold Table II sweep.

Each measured command is the real ``fedhar run`` in its own process, with its own empty
pretraining cache for a cold run (``FEDHAR_CACHE_DIR``), so nothing is shared with an earlier
run. The phases come from each run's ``run.json``: data loading and windowing (``prepare_s``),
pretraining (``pretrain_s``, with each fold's training seconds in its worker), scoring the
general models (``evaluate_s``), the federation (``federation_s``) and the rest (report).

Beside each time it prints the achieved rate of the pretraining's training arithmetic: the
training windows the folds stepped on (``pretrain_train_windows``) times the multiply-adds of
one Full training step of the model (forward and backward, counted by the estimator, equal to
the C library's own counters), over the pretraining wall time. The rate is given as a share of
this machine's float32 sgemm rate on all its cores (numpy's BLAS, 1024x1024), measured in the
same run, before the runs.

    python benchmarks/pipeline.py                 # table
    python benchmarks/pipeline.py --json          # one JSON object
    python benchmarks/pipeline.py --no-sweep      # LOSO only (about 2 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import sgemm_macs_per_s  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"


def macs_per_training_window(scenario_path: Path, window: int | None = None) -> int:
    """Multiply-adds of one Full training step of one window for the scenario's model (the
    estimator's forward and backward phases; the optimizer update is per batch, not counted)."""
    from fedhar.models.spec import build_spec
    from fedhar.ondevice.estimator import estimate_training
    from fedhar.schema.scenario import load_scenario

    scenario = load_scenario(scenario_path)
    classes = scenario.data.classes
    if classes is None:
        raise ValueError(f"{scenario_path}: data.classes must be listed to count the model")
    # Both measured scenarios read a tri-axial accelerometer.
    spec = build_spec(
        scenario.model.name,
        3,
        window or scenario.data.window,
        len(classes),
        **scenario.model.options,
    )
    est = estimate_training(spec, "full", batch=1, momentum=False)
    return sum(counts.macs for phase, counts in est.ops_per_phase.items() if phase != "update")


def run(scenario: Path, data_dir: Path, cache: Path, out: Path, jobs: int) -> float:
    """``fedhar run`` in a child process; returns its wall seconds."""
    env = dict(os.environ, FEDHAR_CACHE_DIR=str(cache), CI="true")
    cmd = [
        sys.executable, "-m", "fedhar.cli", "run", str(scenario), "--out", str(out),
        "--data-dir", str(data_dir), "--jobs", str(jobs),
    ]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def phases(run_json: Path) -> dict[str, object]:
    """The timing fields of one ``run.json``."""
    info = json.loads(run_json.read_text())
    keys = ("wall_seconds", "prepare_s", "pretrain_s", "evaluate_s", "federation_s")
    out: dict[str, object] = {k: info[k] for k in keys}
    out["load_s"], out["windows_s"] = info["load_s"], info["windows_s"]
    out["report_s"] = round(info["wall_seconds"] - sum(info[k] for k in keys[1:]), 3)
    out["pretrain_train_windows"] = info["pretrain_train_windows"]
    folds = info["pretrain_fold_train_s"]
    out["fold_train_s"] = {
        "n": len(folds),
        "mean": round(sum(folds.values()) / max(len(folds), 1), 3),
        "max": max(folds.values(), default=0.0),
        "each": folds,
    }
    return out


def rate(macs: float, seconds: float, peak: float) -> dict[str, float]:
    """``macs`` multiply-adds done in ``seconds``: the total, the rate and its share of ``peak``."""
    achieved = macs / seconds if seconds > 0 else 0.0
    return {"train_gmacs": macs / 1e9, "gmac_per_s": achieved / 1e9, "of_sgemm": achieved / peak}


def federation_rate(journal: Path, seconds: float, peak: float) -> dict[str, float]:
    """The clients' training MAC rate: every mode's C-library-counted ``ops.macs`` in the
    journal over the federation's wall ``seconds``, and its share of ``peak``."""
    macs = 0
    for line in journal.read_text().splitlines():
        row = json.loads(line)
        macs += sum(m.get("ops", {}).get("macs", 0) for m in row.get("modes", {}).values())
    return rate(macs, seconds, peak)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--no-sweep", action="store_true", help="skip the Table II sweep")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, metavar="DIR")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N")
    args = parser.parse_args(argv)

    peak = sgemm_macs_per_s()
    peak_one = sgemm_macs_per_s(1)
    result: dict[str, object] = {
        "cores": os.cpu_count(),
        "jobs": args.jobs,
        "sgemm_gmac_per_s_all_cores": peak / 1e9,
        "sgemm_gmac_per_s_one_core": peak_one / 1e9,
    }
    loso = REPO / "scenarios" / "wisdm2019_loso.yaml"
    with tempfile.TemporaryDirectory(prefix="fedhar-bench-") as tmp:
        work = Path(tmp)
        cache = work / "cache"
        for label in ("cold", "cached"):
            out = work / f"loso-{label}"
            wall = run(loso, args.data_dir, cache, out, args.jobs)
            info = phases(out / "run.json")
            info["process_wall_s"] = round(wall, 3)
            report = json.loads((out / "report.json").read_text())
            info["mean_f1_none"] = report["summary"]["none"]["mean"]
            info["federation_rate"] = federation_rate(
                out / "clients.jsonl", float(info["federation_s"]), peak
            )
            if label == "cold":
                info["pretrain_rate"] = rate(
                    int(info["pretrain_train_windows"]) * macs_per_training_window(loso),
                    float(info["pretrain_s"]),
                    peak,
                )
            result[f"loso_{label}"] = info
        if not args.no_sweep:
            table2 = REPO / "scenarios" / "wisdm2019_table2.yaml"
            out = work / "table2"
            wall = run(table2, args.data_dir, work / "cache-sweep", out, args.jobs)
            runs = sorted(out.glob("T*/run.json"), key=lambda p: int(p.parent.name[1:]))
            macs = sum(
                json.loads(p.read_text())["pretrain_train_windows"]
                * macs_per_training_window(table2, int(p.parent.name[1:]))
                for p in runs
            )
            pretrain_s = sum(json.loads(p.read_text())["pretrain_s"] for p in runs)
            result["table2_cold"] = {
                "process_wall_s": round(wall, 3),
                "runs": {p.parent.name: phases(p) for p in runs},
                "pretrain_rate": rate(macs, pretrain_s, peak),
            }
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(
        f"sgemm: {result['sgemm_gmac_per_s_all_cores']:.1f} GMAC/s on {result['cores']} cores, "
        f"{result['sgemm_gmac_per_s_one_core']:.1f} on one"
    )
    for label in ("loso_cold", "loso_cached", "table2_cold"):
        if label not in result:
            continue
        info = result[label]
        assert isinstance(info, dict)
        if label == "table2_cold":
            r = info["pretrain_rate"]
            print(
                f"{label}: {info['process_wall_s']:.1f} s; pretraining {r['train_gmacs']:.0f} "
                f"GMAC at {r['gmac_per_s']:.1f} GMAC/s ({100 * r['of_sgemm']:.0f}% of sgemm)"
            )
            for name, p in info["runs"].items():
                print(f"  {name}: {p['wall_seconds']:.1f} s (pretrain {p['pretrain_s']:.1f} s)")
            continue
        line = (
            f"{label}: {info['process_wall_s']:.1f} s (run {info['wall_seconds']:.1f}: prepare "
            f"{info['prepare_s']:.1f} [load {info['load_s']:.1f}, windows "
            f"{info['windows_s']:.1f}], pretrain {info['pretrain_s']:.1f}, evaluate "
            f"{info['evaluate_s']:.1f}, federation {info['federation_s']:.1f}, report "
            f"{info['report_s']:.1f}); No-Pers F1 {info['mean_f1_none']:.3f}"
        )
        f = info["federation_rate"]
        line += (
            f"\n  federation: {f['train_gmacs']:.0f} GMAC of client training at "
            f"{f['gmac_per_s']:.1f} GMAC/s = {100 * f['of_sgemm']:.0f}% of the sgemm rate"
        )
        if "pretrain_rate" in info:
            r = info["pretrain_rate"]
            folds = info["fold_train_s"]
            line += (
                f"\n  pretraining: {folds['n']} folds, {folds['mean']:.2f} s each (max "
                f"{folds['max']:.2f}), {r['train_gmacs']:.0f} GMAC at {r['gmac_per_s']:.1f} "
                f"GMAC/s = {100 * r['of_sgemm']:.0f}% of the all-core sgemm rate"
            )
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

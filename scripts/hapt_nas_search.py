"""The short zhou2024 search behind ``scenarios/hapt_nas_loso.yaml``'s model.

It searches a :class:`~fedhar.compress.nas.SuperNet` with :func:`~fedhar.compress.search.search`
on the 9-channel UCI-HAR view of ``scenarios/hapt_nas_loso_cnn3.yaml`` (50 Hz, 128-sample
windows, 50% overlap), on all windows of the search users only: the first ``--search-users``
users in the dataset's order, the last ``--val-users`` of them giving the architecture step's
validation batches. The LOSO folds of the other users are then honest (their test user took
no part in the search); for the search users' own folds the architecture has seen the user.

Its defaults are the search of ``scenarios/hapt_nas_loso.yaml``'s model: Adam on the
weights at the pretraining's 3e-3, the gates at 3e-3, and two stride-2 layers instead of
zhou2024's ``log2(128 / 4) = 5``. Tried first, with five (ten layers, no BatchNorm) and the
weights at 1e-3, the cross-entropy stayed at chance (ln 6 = 1.79) through 30 epochs at beta1
1 and at 0.1, and the hardware terms alone pruned the supernet to one sensor; without them it
was still 1.788 after 4 epochs. Two stride-2 layers at 3e-3 learn (1.79 to 1.66 in 3 epochs
without hardware terms).

It prints the trace, the found architecture as the ``model:`` section to paste into a run
scenario, and the estimator's parameters, MACs and training memory on ``--mcu``; with
``--out`` it also writes them to a JSON file.

    .venv/bin/python scripts/hapt_nas_search.py --data-dir ../shared/data \\
        --out runs/hapt_nas_search.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from fedhar.compress.nas import SuperNet
from fedhar.compress.search import SearchOptions, search
from fedhar.data.preprocess import Normalizer
from fedhar.mcu import load_profile
from fedhar.ondevice.estimate import estimate_row
from fedhar.ondevice.estimator import estimate_inference
from fedhar.schema.scenario import load_scenario
from fedhar.studies.found_model import model_section, model_yaml
from fedhar.studies.pipeline import prepare

HERE = Path(__file__).resolve().parents[1]


def main() -> int:
    """Runs the search and prints (and writes) its result; returns 0."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(HERE / "scenarios/hapt_nas_loso_cnn3.yaml"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--search-users", type=int, default=15)
    ap.add_argument("--val-users", type=int, default=3)
    ap.add_argument("--filters", type=int, default=32, help="filters of every candidate conv")
    ap.add_argument("--hidden", type=int, default=50, help="dense units after pooling (cnn3's)")
    ap.add_argument(
        "--n-stride2", type=int, default=2, help="stride-2 layers N (zhou2024: log2(T/4) = 5)"
    )
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lr-gates", type=float, default=0.003)
    ap.add_argument("--beta1", type=float, default=0.05, help="weight of the MMACs term")
    ap.add_argument("--beta2", type=float, default=1.0, help="weight of the memory penalty")
    ap.add_argument("--budget-kib", type=float, default=96.0)
    ap.add_argument("--mcu", default="stm32l552")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    scenario = load_scenario(args.scenario)
    prepared = prepare(scenario, args.data_dir)
    users = list(prepared.users)
    chosen = users[: args.search_users]
    val_users = chosen[-args.val_users :]
    train_users = chosen[: -args.val_users]
    w = prepared.windows
    train = w.subset(np.isin(w.users, train_users))
    val = w.subset(np.isin(w.users, val_users))
    norm = Normalizer().fit(train.x)
    _, c, t = w.x.shape
    net = SuperNet(
        c, t, prepared.n_classes, filters=args.filters, hidden=args.hidden,
        n_stride2=args.n_stride2, seed=args.seed,
    )  # fmt: skip
    options = SearchOptions(
        epochs=args.epochs,
        lr=args.lr,
        lr_gates=args.lr_gates,
        beta1=args.beta1,
        beta2=args.beta2,
        budget_bytes=args.budget_kib * 1024,
        seed=args.seed,
    )
    started = time.perf_counter()
    result = search(net, norm.transform(train.x), train.y, norm.transform(val.x), val.y, options)
    wall = time.perf_counter() - started
    for h in result.history:
        print(f"epoch {h['epoch']:3.0f}  tau {h['tau']:.3f}  loss {h['loss']:.4f}  "
              f"MACs {h['macs']:,.0f}")  # fmt: skip
    section = model_section(net, result.architecture, prepared.dataset.channels)
    profile = load_profile(args.mcu)
    rows = {
        mode: estimate_row(profile, mode=mode, spec=result.spec, tl_layers=2)
        for mode in ("tl", "full")
    }
    summary = {
        "scenario": args.scenario,
        "train_users": train_users,
        "val_users": val_users,
        "search_options": vars(options),
        "supernet": {
            "filters": args.filters,
            "hidden": args.hidden,
            "n_stride2": args.n_stride2,
            "channels": c,
            "length": t,
        },
        "wall_s": round(wall, 1),
        "model": section,
        "params": result.spec.trainable_count(),
        "macs": estimate_inference(result.spec).macs,
        "memory_total_bytes": {m: r.memory_bytes["total"] for m, r in rows.items()},
        "arena_bytes": {m: r.arena_bytes for m, r in rows.items()},
        "history": result.history,
    }
    print(model_yaml(section))
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

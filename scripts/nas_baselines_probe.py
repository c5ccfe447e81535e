"""Probe of zhou2024's first-stage search on DCL and TinyHAR on UCI HAPT's 9-channel UCI-HAR view
(50 Hz, windows of 128 samples every 64), beside zhou2024 Table II.

Split: the UCI-HAR test subjects (2 4 9 10 12 13 18 20 24, zhou2024 §V-A1) test; the other
users' windows split in time per user and class, the first 90 % train and the rest validate
(the validation windows pick the best epoch and drive the architecture step). Normalized on the
training windows. For each model: the unpruned baseline trained, then per beta1 a search
(:func:`fedhar.compress.nas_baselines.search_baseline`) and the found model fine-tuned from the
supernet's weights. Each finished run is a line of ``OUT`` (JSON), skipped when the script is
run again, so an interrupted probe resumes.

Usage: python scripts/nas_baselines_probe.py OUT.jsonl --models dcl tinyhar --betas 0.01 0.1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fedhar.compress.nas_baselines import macro_f1, search_baseline, train_baseline
from fedhar.compress.search import SearchOptions
from fedhar.data.preprocess import Normalizer, make_windows
from fedhar.data.registry import load_dataset
from fedhar.data.splits import split_chronological
from fedhar.models.baselines import build_baseline, count_macs, count_params

TEST_USERS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
"""UCI-HAR's test subjects (zhou2024 §V-A1, the dataset's default split)."""


def windows(data_dir: str | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Normalized ``train``, ``val`` and ``test`` windows ``[N, 9, 128]`` and labels."""
    ds = load_dataset("hapt", None if data_dir is None else Path(data_dir), channels="uci_har")
    ws = make_windows(ds, 128, 64)
    users = np.asarray([int(u) for u in ws.users])
    is_test = np.isin(users, TEST_USERS)
    train, val = split_chronological(ws.subset(~is_test), 0.9)
    test = ws.subset(is_test)
    norm = Normalizer().fit(train.x)
    return {
        name: (norm.transform(part.x).astype(np.float32), np.asarray(part.y, dtype=np.int64))
        for name, part in (("train", train), ("val", val), ("test", test))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="JSON-lines file of finished runs (appended)")
    parser.add_argument("--models", nargs="+", default=["dcl", "tinyhar"])
    parser.add_argument("--betas", nargs="+", type=float, default=[0.01, 0.1])
    parser.add_argument("--epochs", type=int, default=8, help="training / fine-tuning epochs")
    parser.add_argument("--search-epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-alpha", type=float, default=5e-3)
    parser.add_argument("--lr-gates", type=float, default=0.01)
    parser.add_argument("--tau-decay", type=float, default=0.3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lines = args.out.read_text().splitlines() if args.out.exists() else []
    done = {(row["model"], row["beta1"]) for row in map(json.loads, lines)}
    data = windows(args.data_dir)
    (x, y), (xv, yv), (xt, yt) = data["train"], data["val"], data["test"]
    n_classes, c, t = int(y.max()) + 1, x.shape[1], x.shape[2]
    print(f"{len(x)} train, {len(xv)} val, {len(xt)} test windows [{c}, {t}]", flush=True)

    def record(row: dict[str, object]) -> None:
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)

    fit = {"lr": args.lr, "batch_size": args.batch_size, "seed": args.seed}
    for name in args.models:
        if (name, None) not in done:
            start = time.perf_counter()
            torch.manual_seed(args.seed)
            model = build_baseline(name, c, t, n_classes)
            model = train_baseline(model, x, y, xv, yv, args.epochs, **fit)
            record({
                "model": name, "beta1": None, "params": count_params(model),
                "macs": count_macs(model, c, t), "f1": macro_f1(model, xt, yt, n_classes),
                "seconds": round(time.perf_counter() - start, 1),
            })  # fmt: skip
        for beta1 in args.betas:
            if (name, beta1) in done:
                continue
            start = time.perf_counter()
            options = SearchOptions(
                epochs=args.search_epochs, batch_size=args.batch_size, lr=args.lr,
                lr_alpha=args.lr_alpha, lr_gates=args.lr_gates, beta1=beta1,
                tau_decay=args.tau_decay, seed=args.seed,
            )  # fmt: skip
            found = search_baseline(name, x, y, xv, yv, n_classes, options)
            searched = time.perf_counter() - start
            f1_searched = macro_f1(found.module, xt, yt, n_classes)
            module = train_baseline(found.module, x, y, xv, yv, args.epochs, **fit)
            f1 = macro_f1(module, xt, yt, n_classes)
            record({
                "model": name, "beta1": beta1, "params": found.params, "macs": found.macs,
                "peak_memory_bytes": found.peak_memory_bytes, "f1": f1,
                "f1_before_finetune": f1_searched, "sensors": found.sensors,
                "kernels": found.kernels, "kept_filters": found.kept_filters,
                "search_seconds": round(searched, 1),
                "seconds": round(time.perf_counter() - start, 1),
            })  # fmt: skip


if __name__ == "__main__":
    main()

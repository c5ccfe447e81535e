"""How much of a found model's test F1 is the fine-tuning's draw: one search of a NAS study,
redone from the study's journaled warm-up, then fine-tuned once per seed; or, with
``--unpruned``, the study's base trained once per seed.

The search is the study's own (same warm-up, same seed), so the architecture matches the
journal's row; fine-tuning seed ``scenario.seed`` reproduces the row's F1, and the other seeds
change only the fine-tuning's batch order. An unpruned base's seed draws its initial weights and
its batch order, as the study's does. Prints one JSON line per seed, then the mean and standard
deviation of test and validation macro-F1.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/nas_finetune_seeds.py runs/hapt_nas \
        --base tinyhar --beta 0.05 20 --seeds 0 1 2 3 4 --data-dir ../shared/data
    OMP_NUM_THREADS=1 .venv/bin/python scripts/nas_finetune_seeds.py runs/hapt_nas \
        --base tinyhar --unpruned --seeds 1 2 --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from fedhar.results.journal import read_rows
from fedhar.schema.compress import load_compress_scenario
from fedhar.studies.adaptive import load_windows
from fedhar.studies.compress import split_data
from fedhar.studies.prune import FAMILIES, PRUNE_FILE, STATES_DIR, fine_tune, macro_f1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="output directory of `fedhar compress`")
    parser.add_argument("--scenario", default="scenarios/hapt_nas.yaml")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--base", default="tinyhar")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--beta", type=float, nargs=2, metavar=("B1", "B2"))
    which.add_argument("--unpruned", action="store_true", help="the base, trained per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    if len(args.seeds) < 2:
        parser.error("--seeds: expected at least 2 seeds (for a standard deviation)")
    torch.set_num_threads(1)
    scenario, cfg = load_compress_scenario(args.scenario)
    assert cfg.prune is not None
    own = cfg.prune.for_base(args.base)
    ds, ws = load_windows(scenario, args.data_dir)
    data = split_data(ws, list(ds.classes), scenario, cfg)
    family = FAMILIES[args.base](own)
    mine = [r for r in read_rows(args.study / PRUNE_FILE) if r.get("base") == args.base]
    test_f1, val_f1 = [], []

    def tuned(module: torch.nn.Module, sensors: list[int], epochs: int, seed: int) -> None:
        start = time.time()
        f1_val, epoch = fine_tune(
            module, data, sensors, epochs, own.finetune_lr, own.finetune_batch_size, seed
        )
        f1 = macro_f1(module, data.test[0][:, sensors], data.test[1], data.n_classes)
        test_f1.append(f1)
        val_f1.append(f1_val)
        print(json.dumps({"seed": seed, "f1": f1, "f1_val": f1_val, "best_epoch": epoch,
                          "seconds": round(time.time() - start)}), flush=True)  # fmt: skip

    if args.unpruned:
        (row,) = [r for r in mine if r["kind"] == "model" and r["label"] == "base"]
        print(json.dumps({"unpruned": args.base, "journal_f1": row["f1"]}), flush=True)
        c, t = data.train[0].shape[1:]
        for seed in args.seeds:
            found = family.base(c, t, data.n_classes, seed)
            tuned(found.module, found.sensors, own.base_epochs, seed)
    else:
        (warm_row,) = [r for r in mine if r["kind"] == "warmup"]
        (row,) = [r for r in mine if r["kind"] == "model" and r["beta"] == list(args.beta)]
        with np.load(args.study / STATES_DIR / f"{warm_row['key']}.npz") as z:
            warm = {k: z[k] for k in z.files}
        start = time.time()
        found = family.search(data, warm, tuple(args.beta), scenario.seed)
        assert found.arch == row["arch"], "the redone search differs from the journal's"
        print(json.dumps({"searched": row["label"], "macs": found.macs, "params": found.params,
                          "journal_f1": row["f1"], "seconds": round(time.time() - start)}),
              flush=True)  # fmt: skip
        searched = copy.deepcopy(found.module.state_dict())
        for seed in args.seeds:
            found.module.load_state_dict(searched)
            tuned(found.module, found.sensors, own.finetune_epochs, seed)
    print(json.dumps({
        "f1_mean": statistics.mean(test_f1), "f1_sd": statistics.stdev(test_f1),
        "f1_val_mean": statistics.mean(val_f1), "f1_val_sd": statistics.stdev(val_f1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()

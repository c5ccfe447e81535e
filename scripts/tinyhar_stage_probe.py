"""Probe of hand-built TinyHAR first stages in the search space of ``scenarios/hapt_nas.yaml``:
each stage trained from scratch on the scenario's split, alone or distilled from the trained
unpruned TinyHAR of a finished study (``--teacher-from DIR``, the ``--out`` of ``fedhar
compress``). It shows what the search's kernel and filter choices cost in F1, apart from the
search itself.

A stage is JSON: a list of ``[filters, kernel, stride]`` (valid padding), e.g. five stride-2
layers of 32 filters: ``[[32,5,2],[32,5,2],[32,5,2],[32,5,2],[32,3,2]]``. Every run appends a
JSON line to ``OUT`` (MACs, params, best epoch, validation and test macro-F1).

    .venv/bin/python scripts/tinyhar_stage_probe.py OUT.jsonl \\
        '[[32,5,2],[32,5,2],[32,5,2],[32,5,2],[32,3,2]]' --data-dir ../shared/data \\
        --teacher-from runs/hapt_nas --distill 0.5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fedhar.compress.training import SoftTargets
from fedhar.models.baselines import (
    ConvLayer,
    build_staged,
    count_macs,
    count_params,
)
from fedhar.results.journal import read_rows
from fedhar.schema.compress import PruneConfig, load_compress_scenario
from fedhar.studies.adaptive import load_windows
from fedhar.studies.compress import Data, split_data
from fedhar.studies.prune import (
    FAMILIES,
    PRUNE_FILE,
    STATES_DIR,
    fine_tune,
    macro_f1,
    teacher_targets,
)


def teacher_logits(study: Path, data: Data, prune: PruneConfig) -> SoftTargets:
    """The unpruned TinyHAR of ``study``'s journal, as logits on the training windows."""
    rows = read_rows(study / PRUNE_FILE)
    (row,) = [r for r in rows if r.get("base") == "tinyhar" and r.get("label") == "base"]
    with np.load(study / STATES_DIR / f"{row['key']}.npz") as z:
        state = {k: z[k] for k in z.files}
    return teacher_targets(FAMILIES["tinyhar"](prune), row, state, data, prune)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("stage", help="JSON list of [filters, kernel, stride]")
    parser.add_argument("--scenario", default="scenarios/hapt_nas.yaml")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--teacher-from", type=Path, default=None)
    parser.add_argument("--distill", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    scenario, cfg = load_compress_scenario(args.scenario)
    ds, ws = load_windows(scenario, args.data_dir)
    data = split_data(ws, list(ds.classes), scenario, cfg)
    c, t = data.train[0].shape[1:]
    stage = [ConvLayer(*layer) for layer in json.loads(args.stage)]
    soft = None
    if args.teacher_from is not None:
        own = cfg.prune.for_base("tinyhar").model_copy(
            update={"distill": args.distill, "distill_temperature": args.temperature}
        )
        soft = teacher_logits(args.teacher_from, data, own)
    torch.manual_seed(scenario.seed)
    model = build_staged("tinyhar", c, t, data.n_classes, stage, 64)
    start = time.time()
    f1_val, epoch = fine_tune(
        model, data, list(range(c)), args.epochs, args.lr, args.batch_size, scenario.seed, soft
    )
    row = {
        "stage": json.loads(args.stage),
        "distill": None if soft is None else [soft.weight, soft.temperature],
        "epochs": args.epochs,
        "macs": count_macs(model, c, t),
        "params": count_params(model),
        "f1_val": f1_val,
        "best_epoch": epoch,
        "f1": macro_f1(model, data.test[0], data.test[1], data.n_classes),
        "seconds": round(time.time() - start),
    }
    print(json.dumps(row))
    with args.out.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()

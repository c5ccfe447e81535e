"""Training speed of the C library against PyTorch eager, one thread, batch 32.

Both engines train the paper's CNN (``cnn3``, 6 classes) from the same initial weights on the
same data in the same order, with SGD (lr 0.01, momentum 0.9); the C engine trains each
block with one ``train_epoch`` call. Timing is interleaved in one
process: each repetition times one block of batches per engine, alternating which engine goes
first, and the reported throughput is the median over repetitions. The library's MAC rate
(MACs per batch from its own counters) is compared with a single-thread numpy sgemm measured in
the same run.

    python benchmarks/train_step.py [--json] [--reps 15] [--batches 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass

# One BLAS/OpenMP thread for the sgemm reference: must be set before numpy is imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from fedhar.models.spec import ModelSpec, cnn3  # noqa: E402
from fedhar.models.torch_model import build_torch  # noqa: E402
from fedhar.ondevice.ctrain import Trainer  # noqa: E402

BATCH = 32
LR = 0.01
MOMENTUM = 0.9
N_CLASSES = 6
INPUTS: tuple[tuple[int, int], ...] = ((20, 3), (100, 3))  # (T, C) as in the paper


@dataclass(frozen=True)
class EngineResult:
    """Median throughput of one engine on one input size.

    Attributes:
        samples_per_s: median over repetitions of samples trained per second.
        seconds_per_batch: the corresponding median time per batch, in s.
    """

    samples_per_s: float
    seconds_per_batch: float


def _data(spec: ModelSpec, n_batches: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = n_batches * BATCH
    x = rng.standard_normal((n, spec.input_channels, spec.input_length), dtype=np.float32)
    y = rng.integers(0, spec.n_classes, n).astype(np.int64)
    return x, y


def _torch_block(
    model: torch.nn.Module, opt: torch.optim.Optimizer, xt: torch.Tensor, yt: torch.Tensor
) -> float:
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for i in range(0, xt.shape[0], BATCH):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt[i : i + BATCH]), yt[i : i + BATCH])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def _c_block(trainer: Trainer, x: np.ndarray, y: np.ndarray) -> float:
    start = time.perf_counter()
    trainer.train_epoch(x, y, BATCH)  # one C call: the same batches, in order
    return time.perf_counter() - start


def sgemm_macs_per_s(n: int = 512, reps: int = 20) -> float:
    """Median MAC/s of a single-thread float32 numpy matmul of two n×n matrices."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return n**3 / statistics.median(times)


def bench_input(t: int, c: int, reps: int, batches: int) -> dict:
    """Interleaved timing of both engines on input (T, C); returns the results as data."""
    spec = cnn3(c, t, N_CLASSES)
    model = build_torch(spec, seed=0)
    state = {k: v.detach().numpy().copy() for k, v in model.spec_state_dict().items()}
    trainer = Trainer(spec, mode="full", lr=LR, momentum=MOMENTUM)
    trainer.load_state_dict(state)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    x, y = _data(spec, batches, seed=t)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    y32 = y.astype(np.int32)

    _c_block(trainer, x, y32)  # warm-up both engines once
    _torch_block(model, opt, xt, yt)
    trainer.reset_counts()
    c_times, torch_times = [], []
    for rep in range(reps):
        if rep % 2 == 0:
            c_times.append(_c_block(trainer, x, y32))
            torch_times.append(_torch_block(model, opt, xt, yt))
        else:
            torch_times.append(_torch_block(model, opt, xt, yt))
            c_times.append(_c_block(trainer, x, y32))
    counts = trainer.counts()
    macs = sum(row.macs for phases in counts.values() for row in phases.values())
    macs_per_batch = macs / (reps * batches)
    torch_state = model.spec_state_dict()
    c_state = trainer.state_dict()
    drift = max(
        float(np.max(np.abs(c_state[k] - v.detach().numpy()))) for k, v in torch_state.items()
    )
    c_batch = statistics.median(c_times) / batches
    torch_batch = statistics.median(torch_times) / batches
    return {
        "c": EngineResult(BATCH / c_batch, c_batch),
        "torch": EngineResult(BATCH / torch_batch, torch_batch),
        "macs_per_batch": macs_per_batch,
        "max_abs_param_diff": drift,
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark and prints text or one JSON object; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--reps", type=int, default=15, help="interleaved repetitions (15)")
    parser.add_argument("--batches", type=int, default=20, help="batches per timed block (20)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)

    sgemm = sgemm_macs_per_s()
    results = {f"{t}x{c}": bench_input(t, c, args.reps, args.batches) for t, c in INPUTS}
    sgemm_after = sgemm_macs_per_s()
    sgemm_rate = statistics.median([sgemm, sgemm_after])
    out = {
        "batch": BATCH,
        "optimizer": f"SGD lr {LR} momentum {MOMENTUM}",
        "threads": 1,
        "reps": args.reps,
        "batches_per_block": args.batches,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "cpu": _cpu_name(),
            "platform": platform.platform(),
        },
        "sgemm_macs_per_s": sgemm_rate,
        "speedup": {},
        "samples_per_s": {},
        "seconds_per_batch": {},
        "c_macs_per_s": {},
        "c_fraction_of_sgemm": {},
        "max_abs_param_diff_after_run": {},
    }
    for key, r in results.items():
        c_rate, t_rate = r["c"].samples_per_s, r["torch"].samples_per_s
        c_macs = r["macs_per_batch"] / r["c"].seconds_per_batch
        out["speedup"][key] = c_rate / t_rate
        out["samples_per_s"][key] = {"c": c_rate, "torch": t_rate}
        out["seconds_per_batch"][key] = {
            "c": r["c"].seconds_per_batch,
            "torch": r["torch"].seconds_per_batch,
        }
        out["c_macs_per_s"][key] = c_macs
        out["c_fraction_of_sgemm"][key] = c_macs / sgemm_rate
        out["max_abs_param_diff_after_run"][key] = r["max_abs_param_diff"]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"train step, cnn3, batch {BATCH}, one thread, {out['optimizer']}; "
        f"medians of {args.reps} interleaved blocks of {args.batches} batches"
    )
    print(
        f"{'input':<7}{'C samples/s':>13}{'torch samples/s':>17}{'speedup':>9}"
        f"{'C MAC/s':>11}{'of sgemm':>10}"
    )
    for key in results:
        s = out["samples_per_s"][key]
        print(
            f"{key:<7}{s['c']:>13,.0f}{s['torch']:>17,.0f}{out['speedup'][key]:>8.2f}x"
            f"{out['c_macs_per_s'][key] / 1e9:>9.2f} G{out['c_fraction_of_sgemm'][key]:>10.1%}"
        )
    print(f"single-thread numpy sgemm: {sgemm_rate / 1e9:.2f} GMAC/s; cpu: {_cpu_name()}")
    drift = ", ".join(f"{k} {v:.1e}" for k, v in out["max_abs_param_diff_after_run"].items())
    print(f"max |C - torch| parameter difference after the run (same steps, same data): {drift}")
    return 0


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())

"""Executed instructions of the C library on a Cortex-M4F, predicted from the layer shapes.

A training step of the library, as cross-built by ``emu/Makefile`` (arm-none-eabi-gcc -O2,
Cortex-M4F, hard float), runs a fixed loop nest per kernel call, so each instruction class
(:data:`fedhar.ondevice.isa.CLASSES`) and the taken branches of a kernel call are a linear
function of the call's loop trip counts: for a conv forward call ``a + b·to + c·to·f +
d·to·f·kc``, for instance. :func:`regions` lists, for a model, mode and batch, every
*region* the emulator harness measures (one per layer row and phase, the loss, and the glue
code between kernel calls), with its kernel *kind* and its feature vector (trip counts summed
over the region's calls). :func:`predict` multiplies them by the per-kind coefficients of
``data/m4_instructions.json``.

The coefficients are **fitted**: :func:`fit` solves them by least squares from emulator
runs of :func:`calibration_cases`, small random models that are not the grid the tests check
(``python -m fedhar.ondevice.instructions`` re-fits and rewrites the file). Where the features
are the true loop structure the fit is exact, and the file records each kind's largest
residual on its calibration regions. A rebuilt library with other code changes the counts;
the emulator test (``tests/emulator``) then fails until the file is re-fitted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fedhar.models.spec import LayerSpec, ModelSpec, SpecBuilder, build_spec
from fedhar.ondevice import emulator
from fedhar.ondevice.estimator import _bias_elems, _conv_geom, _ct, _weight_elems
from fedhar.ondevice.isa import CLASSES
from fedhar.ondevice.slim_format import ConvF32, ConvS8, DenseF32, DenseS8, SlimF32, SlimS8

__all__ = [
    "COEFFICIENTS_PATH",
    "TARGETS",
    "Region",
    "calibration_cases",
    "fit",
    "predict",
    "regions",
    "slim_cases",
    "slim_regions",
    "update_kind",
]

COEFFICIENTS_PATH = Path(__file__).resolve().parent / "data" / "m4_instructions.json"
TARGETS: tuple[str, ...] = (*CLASSES, "taken")
"""What is predicted per region: the instruction classes, then the taken branches."""

PHASE_INDEX = {"forward": 0, "backward_input": 1, "backward_weights": 2, "update": 3}
LOGITS_BASE = 1024


@dataclass(frozen=True)
class Region:
    """One measured region: harness id, what it is (``row/phase`` or ``glue``), the kernel
    kind whose coefficients price it, and its features (trip counts summed over its calls)."""

    rid: int
    name: str
    kind: str
    features: tuple[float, ...]


def _rid(row: int, phase: int, base: int) -> int:
    return base + 2 + 4 * row + phase


def update_kind(optimizer: str, momentum: float, weight_decay: float) -> str:
    """The update kernel's kind for an optimizer configuration."""
    if optimizer == "adam":
        return "adam_wd" if weight_decay else "adam"
    return "sgd" + ("_m" if momentum else "") + ("_wd" if weight_decay else "")


def _seq(layer: LayerSpec) -> tuple[int, int]:
    return _ct(layer.in_shape)


def _kernel_features(layer: LayerSpec, phase: str) -> tuple[str, tuple[float, ...]]:
    """(kind, per-call features) of one layer's kernel in a phase."""
    kind = layer.kind
    c, t = _seq(layer)
    n = c * t
    if kind in ("conv1d", "dense"):
        c, t_pad, f, to, kc = _conv_geom(layer)
        if phase == "forward":
            return "conv_fwd", (1, to, to * f, to * f * kc)
        if phase == "backward_input":
            return "conv_bwd_in", (1, t_pad * c, to, to * kc, to * kc * f)
        return "conv_bwd_w", (1, kc, kc * to, kc * to * f, f, f * to)
    if kind == "relu":
        return f"relu_{phase[:3]}", (1, n)
    if kind in ("avgpool1d", "maxpool1d"):
        to = _ct(layer.out_shape)[1]
        p = layer.kernel
        return f"{kind}_{phase[:3]}", (1, to, to * c, to * c * p, n)
    if kind in ("gap1d", "flatten"):
        return f"{kind}_{phase[:3]}", (1, c, t, n)
    if kind == "batchnorm1d":
        return f"bn_{phase}", (1, t, n)
    raise ValueError(f"layer {layer.name!r}: no instruction model for kind {kind!r}")


def _scaled(f: tuple[float, ...], k: float) -> tuple[float, ...]:
    return tuple(k * v for v in f)


def _forward_features(layer: LayerSpec, samples: int) -> tuple[str, tuple[float, ...]]:
    """A forward region over ``samples`` calls; a batch-norm adds its once-per-call fold."""
    kind, f = _kernel_features(layer, "forward")
    feats = _scaled(f, samples)
    if layer.kind == "batchnorm1d":
        feats = (*feats, 1, _seq(layer)[0])
    return kind, feats


def regions(
    spec: ModelSpec,
    trainable: Sequence[bool],
    batch: int,
    update: str = "sgd",
    logits_samples: int = 0,
) -> list[Region]:
    """The regions of one training step on a batch of ``batch`` samples (and, with
    ``logits_samples`` > 0, of one ``ft_logits`` call on that many samples)."""
    layers = spec.layers
    trained = [i for i, t in enumerate(trainable) if t]
    if not trained:
        raise ValueError("no trainable layer")
    s = trained[0]
    out: list[Region] = []
    n_bn = sum(layer.kind == "batchnorm1d" for layer in layers)
    for i, layer in enumerate(layers):
        kind, feats = _forward_features(layer, batch)
        if layer.kind == "maxpool1d" and i > s:
            kind = "maxpool1d_fwd_idx"
        out.append(Region(_rid(i, 0, 0), f"{layer.name}/forward", kind, feats))
    for i in range(len(layers) - 1, s - 1, -1):
        layer = layers[i]
        if layer.kind in ("conv1d", "dense", "batchnorm1d"):
            if trainable[i]:
                kind, f = _kernel_features(layer, "backward_weights")
                out.append(Region(_rid(i, 2, 0), f"{layer.name}/backward_weights", kind,
                                  _scaled(f, batch)))  # fmt: skip
            if i > s:
                kind, f = _kernel_features(layer, "backward_input")
                out.append(Region(_rid(i, 1, 0), f"{layer.name}/backward_input", kind,
                                  _scaled(f, batch)))  # fmt: skip
        else:
            kind, f = _kernel_features(layer, "backward_input")
            out.append(Region(_rid(i, 1, 0), f"{layer.name}/backward_input", kind,
                              _scaled(f, batch)))  # fmt: skip
    for i in trained:
        out.append(Region(_rid(i, 3, 0), f"{layers[i].name}/update", update,
                          (1, _grad_elems(layers[i]))))  # fmt: skip
    k = spec.n_classes
    out.append(Region(_rid(len(layers), 0, 0), "loss", "loss", (batch, batch * k)))
    n_in = spec.input_channels * spec.input_length
    grad = sum(_grad_elems(layers[i]) for i in trained)
    out.append(Region(1, "glue", "glue_train", (
        1, batch, batch * n_in, batch * len(layers), batch * (len(layers) - s), len(layers),
        grad, len(trained), n_bn, batch * _walk_cost(layers, s), int(update.startswith("adam")),
    )))  # fmt: skip
    if logits_samples:
        m = logits_samples
        for i, layer in enumerate(layers):
            kind, feats = _forward_features(layer, m)
            out.append(Region(_rid(i, 0, LOGITS_BASE), f"logits:{layer.name}", kind, feats))
        out.append(Region(LOGITS_BASE + 1, "logits:glue", "glue_logits",
                          (1, m, m * n_in, m * len(layers), len(layers), m * k, n_bn)))  # fmt: skip
    return out


def _grad_elems(layer: LayerSpec) -> int:
    return _weight_elems(layer) + _bias_elems(layer)


def _walk_cost(layers: Sequence[LayerSpec], s: int) -> int:
    """Layers of the backward walk whose case has two kernels (conv, dense, batchnorm)."""
    return sum(layers[i].kind in ("conv1d", "dense", "batchnorm1d") for i in range(s, len(layers)))


# ---- width-sliced inference (fh_slim.c) -------------------------------------------------------


def _same_taps(t: int, k: int) -> int:
    """In-bounds taps of one (input, output) channel pair of a same-padded conv over ``t``."""
    lo = (k - 1) // 2
    return sum(min(o - lo + k, t) - max(o - lo, 0) for o in range(t))


def slim_regions(model: SlimF32 | SlimS8, n: int) -> list[Region]:
    """The regions of ``fh_slim_forward_*`` on ``n`` samples and of the score-margin policy
    (rows: conv blocks, phase 0 the conv and 1 its max-pool; GAP; dense layers; policy)."""
    fmt = "s8" if isinstance(model, SlimS8) else "f32"
    t = model.in_length
    out: list[Region] = []
    walk = 0
    for i, conv in enumerate(model.convs):
        k = conv.weight.shape[2]
        taps = _same_taps(t, k) * conv.c_in * conv.c_out
        feats = (1, conv.c_out, conv.c_out * t, conv.c_out * t * conv.c_in, taps)
        out.append(Region(_rid(i, 0, 0), f"conv{i}", f"slim_conv_{fmt}", _scaled(feats, n)))
        walk += t
        if conv.pool > 1:
            to = t // conv.pool
            feats = (1, conv.c_out, conv.c_out * to, conv.c_out * to * conv.pool)
            out.append(Region(_rid(i, 1, 0), f"pool{i}", f"slim_maxpool_{fmt}", _scaled(feats, n)))
            t = to
    c = model.convs[-1].c_out
    row = len(model.convs)
    out.append(Region(_rid(row, 0, 0), "gap", f"slim_gap_{fmt}", _scaled((1, c, c * t), n)))
    for j, dense in enumerate(model.denses):
        last = j == len(model.denses) - 1
        kind = f"slim_dense_{fmt}" + ("_logits" if last and fmt == "s8" else "")
        kind += "_relu" if dense.relu else ""
        feats = (1, dense.n_out, dense.n_out * dense.n_in)
        out.append(Region(_rid(row + 1 + j, 0, 0), f"dense{j}", kind, _scaled(feats, n)))
    k = model.denses[-1].n_out
    policy = _rid(row + 1 + len(model.denses), 0, 0)
    out.append(Region(policy, "policy", "slim_policy", (1, n, n * k)))
    out.append(Region(1, "glue", "slim_glue", (
        1, n, n * walk, n * len(model.convs), n * len(model.denses), len(model.convs),
        len(model.denses), int(fmt == "s8"),
    )))  # fmt: skip
    return out


def _random_slim(rng: np.random.Generator, s8: bool) -> SlimF32 | SlimS8:
    c_in_full = int(rng.integers(1, 7))
    t = int(rng.integers(8, 64))
    convs: list[ConvF32 | ConvS8] = []
    c_prev_full, c_prev = c_in_full, c_in_full
    for _ in range(int(rng.integers(1, 4))):
        full = int(rng.integers(2, 24))
        c_out = int(rng.integers(1, full + 1))
        k = int(rng.choice([1, 3, 5, 7, 15]))
        pool = 2 if t >= 4 and rng.random() < 0.7 else 1
        w = rng.standard_normal((full, c_prev_full, k)).astype(np.float32)
        if s8:
            convs.append(ConvS8((w * 40).clip(-127, 127).astype(np.int8), c_prev, c_out, pool,
                                rng.integers(-500, 500, c_out).astype(np.int32),
                                rng.integers(1 << 29, 1 << 30, c_out).astype(np.int32),
                                rng.integers(30, 40, c_out).astype(np.int32), 0.1))  # fmt: skip
        else:
            convs.append(ConvF32(w, c_prev, c_out, pool, rng.uniform(0.5, 2, c_out).astype(
                np.float32), rng.standard_normal(c_out).astype(np.float32)))  # fmt: skip
        t //= pool
        c_prev_full, c_prev = full, c_out
    denses: list[DenseF32 | DenseS8] = []
    n_prev_full, n_prev = c_prev_full, c_prev
    n_dense = int(rng.integers(1, 3))
    for j in range(n_dense):
        last = j == n_dense - 1
        full = int(rng.integers(2, 30))
        n_out = full if last else int(rng.integers(1, full + 1))
        w = rng.standard_normal((full, n_prev_full)).astype(np.float32)
        if s8:
            denses.append(DenseS8(
                (w * 40).clip(-127, 127).astype(np.int8), n_prev, n_out, not last,
                rng.integers(-500, 500, n_out).astype(np.int32),
                np.zeros(0, np.int32) if last else rng.integers(1 << 29, 1 << 30, n_out).astype(
                    np.int32),
                np.zeros(0, np.int32) if last else rng.integers(30, 40, n_out).astype(np.int32),
                rng.uniform(2e-5, 2e-4, n_out).astype(np.float32) if last else np.zeros(
                    0, np.float32), 0.1,
            ))  # fmt: skip
        else:
            denses.append(DenseF32(w, rng.standard_normal(full).astype(np.float32), n_prev,
                                   n_out, not last))  # fmt: skip
        n_prev_full, n_prev = full, n_out
    length = t
    for conv in convs[::-1]:
        length *= conv.pool
    length += int(rng.integers(0, 2)) if all(cv.pool == 1 for cv in convs) else 0
    if s8:
        return SlimS8(1.0, c_in_full, length, 0.05, tuple(convs), tuple(denses))  # type: ignore[arg-type]
    return SlimF32(1.0, c_in_full, length, tuple(convs), tuple(denses))  # type: ignore[arg-type]


def slim_cases(n: int = 40, seed: int = 20261202) -> Iterator[tuple[SlimF32 | SlimS8, int]]:
    """Random width-sliced float32 and int8 networks (alternately) with a sample count, seeded."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield _random_slim(rng, s8=i % 2 == 1), int(rng.integers(1, 5))


def measure_slim(
    model: SlimF32 | SlimS8, n: int, b: emulator.Build, seed: int = 0
) -> tuple[list[Region], dict[int, dict[str, int]]]:
    """Runs one sliced-inference case on the emulator; its regions and measured counts."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, model.in_channels, model.in_length)).astype(np.float32)
    run = emulator.run_slim(model, x, th=0.5, b=b)
    if run.status != 0:
        raise RuntimeError(f"sliced-inference calibration case failed with status {run.status}")
    return slim_regions(model, n), {rid: run.execution.targets([rid]) for rid in run.execution.keys}


# ---- coefficients ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _load(path: str) -> dict[str, Any]:
    return dict(json.loads(Path(path).read_text()))


def coefficients(path: Path = COEFFICIENTS_PATH) -> dict[str, Any]:
    """The fitted coefficients file: ``kinds: {kind: {target: [coef per feature]}}`` and its
    provenance (compiler, flags, calibration cases, residuals)."""
    return _load(str(path))


def predict(rs: Sequence[Region], path: Path = COEFFICIENTS_PATH) -> dict[str, dict[str, float]]:
    """Predicted counts per region name: ``{name: {target: count}}``."""
    kinds = coefficients(path)["kinds"]
    out: dict[str, dict[str, float]] = {}
    for r in rs:
        if r.kind not in kinds:
            raise KeyError(f"no instruction coefficients for kernel kind {r.kind!r}")
        coef = kinds[r.kind]
        out[r.name] = {t: float(np.dot(coef[t], r.features)) for t in TARGETS}
    return out


def totals(pred: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Sum of per-region predictions by target."""
    out = dict.fromkeys(TARGETS, 0.0)
    for row in pred.values():
        for t in TARGETS:
            out[t] += row[t]
    return out


# ---- calibration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One calibration run: a model, its trained layers, batch, steps and optimizer."""

    spec: ModelSpec
    trainable: tuple[bool, ...]
    batch: int
    optimizer: str
    momentum: float
    weight_decay: float


def _random_spec(rng: np.random.Generator, i: int) -> ModelSpec:
    c_in = int(rng.integers(1, 7))
    t_in = int(rng.integers(8, 41))
    k = int(rng.integers(2, 9))
    style = i % 3
    if style == 0:
        chans = tuple(int(v) for v in rng.integers(1, 20, size=int(rng.integers(1, 4))))
        kern = tuple(int(v) for v in rng.integers(1, 8, size=len(chans)))
        hidden = int(rng.integers(0, 2)) * int(rng.integers(2, 30))
        return build_spec("daghero", c_in, t_in, k, channels=chans, kernels=kern, hidden=hidden)
    b = SpecBuilder(c_in, t_in)
    n_conv = int(rng.integers(1, 4))
    for j in range(n_conv):
        t_cur = b.shape[1]
        kern = int(rng.integers(1, max(2, min(7, t_cur // 2))))
        stride = int(rng.integers(1, 3))
        if (t_cur - kern) // stride + 1 < 2:
            stride = 1
        b.conv1d(f"c{j}", int(rng.integers(1, 24)), kern, stride=stride)
        if rng.random() < 0.8:
            b.relu(f"r{j}")
        if b.shape[1] >= 4 and rng.random() < 0.7:
            size = int(rng.integers(2, 4))
            b.pool1d("avgpool1d" if rng.random() < 0.5 else "maxpool1d", f"p{j}", size,
                     int(rng.integers(1, size + 1)))  # fmt: skip
    if style == 1:
        b.gap1d("gap")
    else:
        b.flatten("flat")
    if rng.random() < 0.7:
        b.dense("h", int(rng.integers(2, 40))).relu("rh")
    b.dense("out", k)
    return b.build(f"cal{i}")


def calibration_cases(n: int = 60, seed: int = 20261201) -> Iterator[Case]:
    """Random small models (conv, dense, ReLU, both pools, GAP, flatten, batch-norm) with
    random trained layers, batches and every optimizer variant, seeded."""
    rng = np.random.default_rng(seed)
    variants = [("sgd", 0.0, 0.0), ("sgd", 0.9, 0.0), ("sgd", 0.0, 1e-3), ("sgd", 0.9, 1e-3),
                ("adam", 0.0, 0.0), ("adam", 0.0, 1e-3)]  # fmt: skip
    for i in range(n):
        spec = _random_spec(rng, i)
        kinds = [layer.kind in ("conv1d", "dense", "batchnorm1d") for layer in spec.layers]
        idx = [j for j, t in enumerate(kinds) if t]
        start = int(rng.integers(0, len(idx)))
        trainable = tuple(j in idx[start:] and (j == idx[-1] or rng.random() < 0.8)
                          for j in range(len(spec.layers)))  # fmt: skip
        opt, mom, wd = variants[i % len(variants)]
        yield Case(spec, trainable, int(rng.integers(1, 6)), opt, mom, wd)


def fit(
    samples: Sequence[tuple[Sequence[Region], Mapping[int, Mapping[str, int]]]],
) -> dict[str, Any]:
    """Least-squares coefficients per kind and target from (regions, measured counts by
    region id) pairs; each kind records its largest absolute residual and its region count."""
    rows: dict[str, list[tuple[tuple[float, ...], Mapping[str, int]]]] = {}
    for rs, measured in samples:
        for r in rs:
            rows.setdefault(r.kind, []).append((r.features, measured.get(r.rid, {})))
    kinds: dict[str, Any] = {}
    for kind, data in sorted(rows.items()):
        a = np.array([f for f, _ in data], dtype=np.float64)
        entry: dict[str, Any] = {}
        worst = 0.0
        for t in TARGETS:
            b = np.array([m.get(t, 0) for _, m in data], dtype=np.float64)
            coef, *_ = np.linalg.lstsq(a, b, rcond=None)
            coef = np.round(coef, 4)
            worst = max(worst, float(np.max(np.abs(a @ coef - b))) if len(b) else 0.0)
            entry[t] = [float(v) for v in coef]
        entry["regions"] = len(data)
        entry["max_abs_residual"] = round(worst, 3)
        entry["rank"] = int(np.linalg.matrix_rank(a))
        entry["features"] = a.shape[1]
        kinds[kind] = entry
    return {"kinds": kinds}


def measure(
    case: Case, b: emulator.Build, seed: int = 0
) -> tuple[list[Region], dict[int, dict[str, int]]]:
    """Runs one case on the emulator (one step and one ``ft_logits`` pass on random data and
    weights); returns its regions and the measured counts by region id."""
    state, x, y = emulator.random_inputs(case.spec, case.batch, seed)
    run = emulator.run_training(case.spec, state, x, y, case.trainable, b, steps=1,
                                momentum=case.momentum, weight_decay=case.weight_decay,
                                optimizer=case.optimizer, logits=True)  # fmt: skip
    if run.status != 0:
        raise RuntimeError(f"calibration case {case.spec.name} failed with status {run.status}")
    update = update_kind(case.optimizer, case.momentum, case.weight_decay)
    rs = regions(case.spec, case.trainable, case.batch, update, case.batch)
    return rs, {rid: run.execution.targets([rid]) for rid in run.execution.keys}


def main() -> None:
    """Re-fits ``data/m4_instructions.json`` on the emulator (``python -m
    fedhar.ondevice.instructions``)."""
    b = emulator.build()
    cases = list(calibration_cases())
    samples = [measure(c, b, seed=i) for i, c in enumerate(cases)]
    samples += [measure_slim(m, n, b, seed=i) for i, (m, n) in enumerate(slim_cases())]
    result = fit(samples)
    result["provenance"] = {
        "fitted_on": f"{len(cases)} emulator runs of calibration_cases() (seed 20261201): "
        "random small models, one training step and one ft_logits pass each, and 40 of "
        "slim_cases() (seed 20261202): random width-sliced float32 and int8 networks, in QEMU "
        "mps2-an386 with emu/plugin/fh_icount.c",
        "compiler": b.compiler,
        "flags": "-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard -std=c99 -O2 "
        "-ffp-contract=fast (emu/Makefile)",
        "command": "python -m fedhar.ondevice.instructions",
    }
    COEFFICIENTS_PATH.parent.mkdir(exist_ok=True)
    COEFFICIENTS_PATH.write_text(json.dumps(result, indent=1) + "\n")
    for kind, e in result["kinds"].items():
        print(
            f"{kind:20s} regions {e['regions']:4d} rank {e['rank']}/{e['features']} "
            f"max residual {e['max_abs_residual']}"
        )


if __name__ == "__main__":
    main()

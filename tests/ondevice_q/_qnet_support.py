"""Shared helpers of the compressed-inference kernel tests: random folded models, activation
scales from a float pass, random network shapes, and the comparisons every test makes."""

from __future__ import annotations

import numpy as np

from fedhar.models import quantized as Q
from fedhar.models.spec import LayerSpec, ModelSpec
from fedhar.ondevice.emulator import random_inputs
from fedhar.ondevice.qnet_estimate import estimate_qnet
from fedhar.ondevice.qnet_infer import DynamicNetC, QNetC


def random_state(spec: ModelSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Seeded random float32 tensors of ``spec`` (those of the emulator checks)."""
    return random_inputs(spec, 1, seed=int(rng.integers(2**31)))[0]


def _float_forward(spec: ModelSpec, state: dict[str, np.ndarray], x: np.ndarray) -> dict:
    """Float64 outputs of every conv/dense layer of a folded ``spec`` (after its ReLU)."""
    h = np.asarray(x, np.float64)
    outs: dict[str, np.ndarray] = {}
    for layer in spec.layers:
        if layer.kind == "conv1d":
            w = state[f"{layer.name}.weight"].astype(np.float64)
            k = layer.kernel
            pad = (k - 1) // 2 if layer.padding == "same" else 0
            xp = np.zeros((len(h), h.shape[1], h.shape[2] + k), np.float64)
            xp[:, :, pad : pad + h.shape[2]] = h
            taps = (np.arange(layer.out_shape[1]) * layer.stride)[:, None] + np.arange(k)
            h = np.einsum("nctk,fck->nft", xp[:, :, taps], w)
            h = h + state[f"{layer.name}.bias"][None, :, None]
        elif layer.kind == "dense":
            h = h.reshape(len(h), -1) @ state[f"{layer.name}.weight"].T.astype(np.float64)
            h = h + state[f"{layer.name}.bias"]
        elif layer.kind == "relu":
            h = np.maximum(h, 0.0)
        elif layer.kind in ("maxpool1d", "avgpool1d"):
            starts = np.arange(layer.out_shape[1]) * layer.stride
            win = h[:, :, starts[:, None] + np.arange(layer.kernel)]
            h = win.max(axis=3) if layer.kind == "maxpool1d" else win.mean(axis=3)
        elif layer.kind == "gap1d":
            h = h.mean(axis=2)
        elif layer.kind == "flatten":
            h = h.reshape(len(h), -1)
        if layer.kind in ("conv1d", "dense", "relu"):
            outs[layer.name] = h
    return outs


def float_logits(spec: ModelSpec, state: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Float64 logits of a folded model: the output of its last layer."""
    return _float_forward(spec, state, x)[spec.layers[-1].name]


def build_qnet(
    spec: ModelSpec,
    state: dict[str, np.ndarray],
    bits: Q.LayerBits,
    x: np.ndarray,
) -> Q.QNet:
    """:func:`quantize` of the folded model with PACT-like scales: each hidden layer's clip at
    the 99th percentile of its float ReLU output on ``x`` (1 bit: twice the median of the
    positive outputs); the input scale from ``x``'s max."""
    fs, fst = Q.fold_spec(spec), Q.fold_state(spec, state)
    outs = _float_forward(fs, fst, x)
    names = [layer.name for layer in fs.layers]
    scales = {}
    for i, layer in enumerate(fs.layers):
        if layer.kind in ("conv1d", "dense") and i + 1 < len(fs.layers):
            relu = outs.get(names[i + 1], outs[layer.name])
            a_bits = bits[layer.name][1]
            # 1 bit: the step at the median, so that about half the outputs are 1
            positive = relu[relu > 0]
            if a_bits > 1 or not positive.size:
                alpha = float(np.percentile(relu, 99))
            else:
                alpha = 2 * float(np.median(positive))
            scales[layer.name] = max(alpha, 1e-3) / Q.act_levels(a_bits)
    in_scale = max(float(np.abs(x).max()), 1e-3) / 127
    return Q.quantize(fs, fst, bits, scales, in_scale)


def random_bits(spec: ModelSpec, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    """A random (w_bits, a_bits) per conv/dense layer."""
    return {
        layer.name: (int(rng.choice(Q.BITS)), int(rng.choice(Q.BITS)))
        for layer in spec.layers
        if layer.kind in ("conv1d", "dense")
    }


def random_spec(rng: np.random.Generator) -> ModelSpec:
    """A random sequential 1D-CNN: an optional pool on the input, 1-3 conv blocks (kernel 1-7,
    stride 1-3, 'valid' or 'same' padding, 'same' with stride too; an optional BatchNorm and
    max/avg pool), then GAP or flatten and 1-2 dense layers, or (sometimes) no dense layer at
    all: the last conv gives the logits. The shapes are computed here, not by SpecBuilder, so
    that every geometry the kernels accept occurs."""
    c, t = int(rng.integers(1, 5)), int(rng.integers(6, 41))
    layers: list[LayerSpec] = []
    shape: tuple[int, ...] = (c, t)

    def add(kind: str, out: tuple[int, ...], **kw: object) -> None:
        nonlocal shape
        layers.append(LayerSpec(kind, f"l{len(layers)}", shape, out, **kw))  # type: ignore[arg-type]
        shape = out

    def pool() -> None:
        size = int(rng.integers(1, min(4, shape[1]) + 1))
        stride = int(rng.integers(1, 4))
        kind = "maxpool1d" if rng.random() < 0.5 else "avgpool1d"
        add(kind, (shape[0], (shape[1] - size) // stride + 1), kernel=size, stride=stride)

    if rng.random() < 0.15:
        pool()
    n_conv = int(rng.integers(1, 4))
    conv_logits = rng.random() < 0.15
    for b in range(n_conv):
        k = int(rng.integers(1, min(7, shape[1]) + 1))
        stride = int(rng.integers(1, 4))
        same = rng.random() < 0.5
        t_out = (shape[1] - 1) // stride + 1 if same else (shape[1] - k) // stride + 1
        f = int(rng.integers(1, 13))
        add("conv1d", (f, t_out), out_channels=f, kernel=k, stride=stride,
            padding="same" if same else "valid")  # fmt: skip
        if conv_logits and b == n_conv - 1:
            return ModelSpec("fuzz", c, t, shape[0] * shape[1], tuple(layers))
        if rng.random() < 0.5:
            add("batchnorm1d", shape)
        add("relu", shape)
        if shape[1] >= 2 and rng.random() < 0.5:
            pool()
    if rng.random() < 0.6:
        add("gap1d", (shape[0],), kernel=shape[1], stride=shape[1])
    else:
        add("flatten", (shape[0] * shape[1],))
    if rng.random() < 0.5:
        units = int(rng.integers(1, 17))
        add("dense", (units,), out_channels=units)
        add("relu", shape)
    classes = int(rng.integers(2, 9))
    add("dense", (classes,), out_channels=classes)
    return ModelSpec("fuzz", c, t, classes, tuple(layers))


def assert_logits_match(c: np.ndarray, ref: np.ndarray) -> None:
    """C logits equal the integer reference up to float32 rounding (rtol 1e-6), and so does the
    predicted class wherever the reference's top two differ by more than that rounding."""
    np.testing.assert_allclose(c, ref, rtol=1e-6, atol=0)
    if ref.shape[1] < 2:
        return
    top2 = np.sort(ref, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 1e-5 * np.abs(top2).max(axis=1)
    assert np.array_equal(c.argmax(axis=1)[clear], ref.argmax(axis=1)[clear])


def check_qnet(net: Q.QNet, x_q: np.ndarray) -> np.ndarray:
    """Runs ``net`` in C on ``x_q``; asserts logits == reference, counters == estimator, memory
    == estimator, model bytes == ``QNet.model_bytes()``. Returns the C logits."""
    c = QNetC(net)
    logits, ops = c.logits(x_q)
    assert_logits_match(logits, Q.reference_logits(net, x_q))
    est_ops, est_mem = estimate_qnet(net)
    assert ops == est_ops.scaled(len(x_q))
    assert c.memory == est_mem
    assert c.model_bytes == net.model_bytes()
    return logits


def check_dynamic(net: Q.DynamicNet, x: np.ndarray) -> np.ndarray:
    """Runs ``net`` in C on float ``x``; asserts logits == the float32 reference bit for bit,
    counters and memory == estimator. Returns the C logits."""
    c = DynamicNetC(net)
    logits, ops = c.logits(x)
    np.testing.assert_array_equal(logits, Q.reference_dynamic_logits(net, x))
    est_ops, est_mem = estimate_qnet(net)
    assert ops == est_ops.scaled(len(x))
    assert c.memory == est_mem
    assert c.model_bytes == net.model_bytes()
    return logits

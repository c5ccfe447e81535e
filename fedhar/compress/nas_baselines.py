"""zhou2024's search on the first stage of DCL and TinyHAR (§V-A2: "we replace only the initial
stage with our proposed searchable framework"), and the plain models it finds.

**Supernet** (:class:`BaselineSuperNet`) for ``[N, C, T]`` windows. The individual convolution
block of :mod:`fedhar.models.baselines` (the same ``(k, 1)`` convolutions on every sensor
channel) becomes the search space of :mod:`fedhar.compress.nas`: a DCS gate on the C sensor
channels, then ``2 N`` layers alternating stride 2 (``valid``) and stride 1 (``same``), ``N =
floor(log2(T / 4))``, each offering kernels 1, 3, 5, 7 and, at stride 1, the identity, each
candidate convolution followed by ReLU (TinyHAR: and BatchNorm, as its block has) and a DCS gate
on its filters. The sensor channels run as a batch of one-channel series (``[N C, F, T]``),
which is the ``(k, 1)`` Conv2d of the baselines. The later stages keep the baselines' design:

- ``dcl``: the ``[F', T', C']`` maps flattened per time step into an LSTM of ``hidden`` units,
  then the classifier on its last step;
- ``tinyhar``: a one-head post-norm transformer layer across the sensor channels of width d =
  F' (feed-forward 2F), fusion to 2F, an LSTM of 2F units, attention pooling, classifier.

F' (the last layer's kept filters), C' (the kept sensor channels) and T' (the steps the drawn
strides leave) size them. To make the gated supernet compute exactly what the smaller plain
model computes, the gated-off parts are removed, not just zeroed: the stage's output is
multiplied by the sensor bits again (a convolution's bias would otherwise make a dropped
channel's maps non-zero), and TinyHAR's transformer runs masked (attention only to kept
sensors, LayerNorm over the kept features, the ``1 / sqrt(d)`` scale of the kept width).
BatchNorm's batch statistics in training mode do include the dropped sensors' maps; in eval
mode (running statistics) the equality is exact.

**Complexity term** (:meth:`BaselineSuperNet.expected_macs`): the MACs
:func:`fedhar.models.baselines.count_macs` counts, written as a polynomial in the gate counts
and the time steps along the drawn path (conv ``T_out k w_in w_out C'``; LSTM ``4 T' (in + h)
h``; attention ``T' (4 C' d^2 + 2 C'^2 d)``; linear ``rows in out``), each layer's candidates
weighted by their one-hot ``p_ij`` as in :mod:`fedhar.compress.nas` (eq. 11 without its
squares, so that the term *is* a MAC count). Unlike there, the time steps also flow as
``p``-weighted sums, so a stride-2 layer's kernel is priced for the steps it leaves to the
LSTM (most of DCL's MACs). Computed in float64, so exact: for the drawn architecture it
equals ``count_macs`` of the re-instantiated model.

**Memory term** (:meth:`BaselineSuperNet.peak_memory`, eq. 12 with ``extra(op) = 0``): the
largest ``input + output`` activation size over the operations of one inference, in float32
bytes (4 per element). The operations: every convolution (ReLU and BatchNorm run in place
and are not separate operations; the first reads the ``1 x T x C'`` kept sensor channels),
then for DCL the LSTM (in ``T' F' C'``, out ``T' h``, its whole output sequence) and the
classifier (``h`` → K); for TinyHAR the transformer layer (``T' C' d`` → ``T' C' d``), the
fusion (→ ``T' 2F``), the LSTM (→ ``T' 2F``), the attention pooling (→ ``2F``) and the
classifier (→ K). Weights are not counted (flash). Its gradient with respect to each gate is
the change of the peak when that width grows by one
(:func:`~fedhar.compress.nas.forward_difference`).

Neither model runs in the C library (LSTM, attention): the search's memory term is inference
memory as the paper's, not the C library's training arena that :mod:`fedhar.compress.nas` uses.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fedhar.compress.gates import DCSGate
from fedhar.compress.nas import (
    IDENTITY,
    PathSearch,
    default_stride2,
    forward_difference,
    hardware_loss,
    search_layers,
)
from fedhar.compress.search import SearchOptions, bilevel
from fedhar.compress.training import Schedule, check_xy, train
from fedhar.metrics import score
from fedhar.models.baselines import (
    PYTORCH_ONLY,
    ConvLayer,
    DeepConvLSTM,
    SensorSubset,
    TinyHAR,
    TinyHARHead,
    build_staged,
    count_macs,
    count_params,
)

FLOAT_BYTES = 4
"""Bytes per activation element (float32 inference)."""


class BaselineSuperNet(PathSearch):
    """DCL or TinyHAR with the searchable first stage of the module docstring.

    Args:
        name: ``dcl`` or ``tinyhar``.
        channels: sensor channels C (the input gate's width).
        length: window samples T.
        n_classes: classes K.
        filters: filters F of every candidate convolution (the baselines': 64).
        hidden: DCL's LSTM units (default 128, as :class:`~fedhar.models.baselines.DeepConvLSTM`).
        n_stride2: stride-2 layers N (default :func:`~fedhar.compress.nas.default_stride2`).
        seed: seeds the weights and the Gumbel generator.
    """

    def __init__(
        self, name: str, channels: int, length: int, n_classes: int, filters: int = 64,
        hidden: int = 128, n_stride2: int | None = None, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        if name not in PYTORCH_ONLY:
            raise ValueError(f"unknown baseline {name!r}; expected one of {list(PYTORCH_ONLY)}")
        n2 = default_stride2(length) if n_stride2 is None else n_stride2
        if n2 < 1:
            raise ValueError(f"{name}: the search needs >= 1 stride-2 layer, got {n2}")
        self.name, self.channels, self.length, self.n_classes = name, channels, length, n_classes
        self.filters, self.hidden = filters, hidden
        self.sensor_gate = DCSGate(channels)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.layers = search_layers(1, length, filters, n2, batchnorm=name == "tinyhar")
            if name == "dcl":
                self.lstm = nn.LSTM(filters * channels, hidden, batch_first=True)
                self.classifier = nn.Linear(hidden, n_classes)
            else:
                self.head = TinyHARHead(channels, filters, 2 * filters, n_classes)
        self.generator = torch.Generator().manual_seed(seed)
        self.choice: list[torch.Tensor] = []

    def _convs(self) -> list[tuple[nn.Module, int]]:
        """The drawn non-identity layers and their candidate index, in order."""
        return [
            (layer, j)
            for layer, j in zip(self.layers, self.picked(), strict=True)
            if layer.kernels[j] != IDENTITY
        ]

    def _last_gate(self) -> DCSGate:
        layer, j = self._convs()[-1]
        return layer.gates[j]

    # --- forward ---------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, C, T]`` → logits ``[N, K]`` along the current choice."""
        n, c, t = x.shape
        b0 = self.sensor_gate.bits()
        h = (x * b0[None, :, None]).reshape(n * c, 1, t)
        for layer, p, j in zip(self.layers, self.choice, self.picked(), strict=True):
            h = p[j] * layer.run(h, j)
        f, steps = h.shape[1], h.shape[2]
        h = h.reshape(n, c, f, steps) * b0[None, :, None, None]  # drop the sensors' biases
        if self.name == "dcl":
            out, _ = self.lstm(h.permute(0, 3, 2, 1).reshape(n, steps, f * c))
            return self.classifier(out[:, -1])
        bf = self._last_gate().bits()
        tokens = h.permute(0, 3, 1, 2).reshape(n * steps, c, f)
        mixed = _masked_encoder(self.head.interaction, tokens, b0.detach() > 0, bf.detach() > 0)
        mixed = mixed * b0[None, :, None] * bf[None, None, :]
        return self.head.fuse(mixed.reshape(n, steps, c * f))

    # --- hardware terms --------------------------------------------------------------------

    def expected_macs(self) -> torch.Tensor:
        """MACs per window of the current choice by ``count_macs``' rules, float64,
        differentiable in the gates and the architecture parameters.

        Widths and lengths flow as ``sum_j p_ij x_ij`` (the drawn candidate's value, with the
        gradient to every candidate's weight), so a stride-2 layer's choice is priced for the
        steps it leaves to the later layers and stages too: a candidate's output length is
        ``slope t_in + offset``, slope 1 (same padding, identity) or 1/2 (stride 2), the
        floor of the valid convolution folded into the constant offset."""
        c = self.sensor_gate.count().double()
        w_in = torch.ones((), dtype=torch.float64)
        t_in, t = torch.tensor(float(self.length), dtype=torch.float64), self.length
        total = torch.zeros((), dtype=torch.float64)
        for layer, one_hot, j in zip(self.layers, self.choice, self.picked(), strict=True):
            p = one_hot.double()
            width, steps = torch.zeros_like(w_in), torch.zeros_like(t_in)
            for jj, k in enumerate(layer.kernels):
                slope = 1.0 if k == IDENTITY else 1.0 / layer.stride
                t_out = t_in * slope + (layer.out_length(t, jj) - t * slope)
                steps = steps + p[jj] * t_out
                if k == IDENTITY:
                    width = width + p[jj] * w_in
                    continue
                w = layer.gates[jj].count().double()
                total = total + p[jj] * t_out * k * c * w_in * w
                width = width + p[jj] * w
            t, t_in, w_in = layer.out_length(t, j), steps, width
        return total + self._tail_macs(c, w_in, t_in)

    def _tail_macs(self, c: torch.Tensor, d: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """MACs of the later stages on ``c`` sensors of ``d`` features over ``steps`` steps."""
        k = self.n_classes
        if self.name == "dcl":
            h = self.hidden
            return 4 * steps * (d * c + h) * h + h * k
        e = 2 * self.filters
        attention = steps * (4 * c * d * d + 2 * c * c * d)
        feed_forward = 2 * steps * c * d * e
        fusion = steps * c * d * e
        lstm = steps * 4 * (2 * e) * e
        pooling = steps * e * e + steps * e
        return attention + feed_forward + fusion + lstm + pooling + e * k

    def op_sizes(self, widths: Sequence[int]) -> list[tuple[int, int]]:
        """:func:`op_sizes` of the current choice at kept widths ``widths`` (sensor channels,
        then the filters of every drawn convolution)."""
        stage = [
            ConvLayer(w, layer.kernels[j], layer.stride, layer.padding)
            for (layer, j), w in zip(self._convs(), widths[1:], strict=True)
        ]
        return op_sizes(
            self.name, widths[0], self.length, self.n_classes, stage, self.filters, self.hidden
        )

    def peak_bytes(self, widths: Sequence[int]) -> int:
        """Eq. 12's peak of the current choice at kept widths ``widths``, float32 bytes."""
        return peak_of(self.op_sizes(widths))

    def peak_memory(self) -> torch.Tensor:
        """:meth:`peak_bytes` at the active widths, differentiable in the gates by forward
        differences."""
        counts = [self.sensor_gate.count()] + [layer.gates[j].count() for layer, j in self._convs()]
        return forward_difference(lambda widths: float(self.peak_bytes(widths)), counts)

    # --- the found model -------------------------------------------------------------------

    def stage(self) -> list[ConvLayer]:
        """The drawn first stage as plain layers (kept filters, kernel, stride, padding)."""
        return [
            ConvLayer(len(layer.gates[j].kept()), layer.kernels[j], layer.stride, layer.padding)
            for layer, j in self._convs()
        ]

    def plain(self) -> SensorSubset:
        """The current choice as a plain :class:`~fedhar.models.baselines.DeepConvLSTM` or
        :class:`~fedhar.models.baselines.TinyHAR` on the kept sensors, with the kept slices of
        the supernet's weights: in eval mode its logits equal the supernet's."""
        sensors = self.sensor_gate.kept()
        stage = self.stage()
        kept = [layer.gates[j].kept() for layer, j in self._convs()]
        model = build_staged(
            self.name, len(sensors), self.length, self.n_classes, stage, self.filters, self.hidden
        )
        convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
        norms = [m for m in model.features if isinstance(m, nn.BatchNorm2d)]
        rows = [0]
        with torch.no_grad():
            for i, ((layer, j), cols) in enumerate(zip(self._convs(), kept, strict=True)):
                conv = layer.convs[j]
                convs[i].weight.copy_(conv.weight[cols][:, rows].unsqueeze(-1))
                convs[i].bias.copy_(conv.bias[cols])
                if layer.norms is not None:
                    _copy_norm(norms[i], layer.norms[j], cols)
                rows = cols
            c = self.channels
            if self.name == "dcl":
                assert isinstance(model, DeepConvLSTM)
                features = [f * c + s for f in rows for s in sensors]
                _copy_lstm(model.lstm, self.lstm, features)
                model.classifier.load_state_dict(self.classifier.state_dict())
            else:
                assert isinstance(model, TinyHAR)
                head, src = model.head, self.head
                _copy_encoder(head.interaction, src.interaction, rows)
                f = self.filters
                head.fusion.weight.copy_(
                    src.fusion.weight[:, [s * f + r for s in sensors for r in rows]]
                )
                head.fusion.bias.copy_(src.fusion.bias)
                for key in ("lstm", "attn_hidden", "attn_score", "classifier"):
                    getattr(head, key).load_state_dict(getattr(src, key).state_dict())
        return SensorSubset(sensors, model.eval())


def op_sizes(
    name: str, channels: int, length: int, n_classes: int, stage: Sequence[ConvLayer],
    filters: int = 64, hidden: int = 128,
) -> list[tuple[int, int]]:  # fmt: skip
    """``(input, output)`` activation elements of every operation of one inference of ``name``
    (``dcl`` or ``tinyhar``, :func:`~fedhar.models.baselines.build_staged`) with first stage
    ``stage`` on ``channels`` sensor channels of ``length`` samples (module docstring's
    operations)."""
    sizes, w_in, t = [], 1, length
    for layer in stage:
        t_out = layer.out_steps(t)
        sizes.append((w_in * t * channels, layer.filters * t_out * channels))
        w_in, t = layer.filters, t_out
    if name == "dcl":
        return [*sizes, (t * w_in * channels, t * hidden), (hidden, n_classes)]
    e = 2 * filters
    cube = t * channels * w_in
    return [*sizes, (cube, cube), (cube, t * e), (t * e, t * e), (t * e, e), (e, n_classes)]


def inference_peak_bytes(
    name: str, channels: int, length: int, n_classes: int, stage: Sequence[ConvLayer],
    filters: int = 64, hidden: int = 128,
) -> int:  # fmt: skip
    """Eq. 12's peak of :func:`op_sizes`' operations, float32 bytes (:func:`peak_of`)."""
    return peak_of(op_sizes(name, channels, length, n_classes, stage, filters, hidden))


def peak_of(sizes: Sequence[tuple[int, int]]) -> int:
    """The largest ``input + output`` of ``(input, output)`` element counts, float32 bytes."""
    return FLOAT_BYTES * max(a + b for a, b in sizes)


def _masked_encoder(
    layer: nn.TransformerEncoderLayer, x: torch.Tensor, tokens: torch.Tensor, feats: torch.Tensor
) -> torch.Tensor:
    """``layer`` (post-norm, one head, ReLU) on ``x [B, C, F]`` restricted to the kept tokens
    ``tokens [C]`` and features ``feats [F]`` (bool): equal on them to the same layer with
    the dropped rows and columns cut out; zero on dropped features."""
    m = feats.to(x.dtype)
    d = int(feats.sum())
    attn = layer.self_attn
    q, k, v = (F.linear(x, w, b) * m for w, b in zip(
        attn.in_proj_weight.chunk(3), attn.in_proj_bias.chunk(3), strict=True
    ))  # fmt: skip
    scores = q @ k.transpose(1, 2) / math.sqrt(d)
    scores = scores.masked_fill(~tokens[None, None, :], float("-inf"))
    mixed = F.linear(torch.softmax(scores, dim=-1) @ v, attn.out_proj.weight, attn.out_proj.bias)
    h = _masked_norm(layer.norm1, x + mixed * m, m, d)
    ff = F.linear(F.relu(layer.linear1(h)), layer.linear2.weight, layer.linear2.bias)
    return _masked_norm(layer.norm2, h + ff * m, m, d)


def _masked_norm(norm: nn.LayerNorm, x: torch.Tensor, m: torch.Tensor, d: int) -> torch.Tensor:
    """``norm`` over the ``d`` kept features (mask ``m``) of ``x [..., F]``; 0 elsewhere."""
    mean = (x * m).sum(-1, keepdim=True) / d
    var = (((x - mean) * m) ** 2).sum(-1, keepdim=True) / d
    return ((x - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias) * m


def _copy_norm(dst: nn.BatchNorm2d, src: nn.Module, cols: list[int]) -> None:
    for key in ("weight", "bias", "running_mean", "running_var"):
        getattr(dst, key).copy_(getattr(src, key)[cols])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)


def _copy_lstm(dst: nn.LSTM, src: nn.LSTM, features: list[int]) -> None:
    dst.weight_ih_l0.copy_(src.weight_ih_l0[:, features])
    for key in ("weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        getattr(dst, key).copy_(getattr(src, key))


def _copy_encoder(
    dst: nn.TransformerEncoderLayer, src: nn.TransformerEncoderLayer, cols: list[int]
) -> None:
    f = src.linear2.out_features
    qkv = [i * f + c for i in range(3) for c in cols]
    dst.self_attn.in_proj_weight.copy_(src.self_attn.in_proj_weight[qkv][:, cols])
    dst.self_attn.in_proj_bias.copy_(src.self_attn.in_proj_bias[qkv])
    dst.self_attn.out_proj.weight.copy_(src.self_attn.out_proj.weight[cols][:, cols])
    dst.self_attn.out_proj.bias.copy_(src.self_attn.out_proj.bias[cols])
    dst.linear1.weight.copy_(src.linear1.weight[:, cols])
    dst.linear1.bias.copy_(src.linear1.bias)
    dst.linear2.weight.copy_(src.linear2.weight[cols])
    dst.linear2.bias.copy_(src.linear2.bias[cols])
    for key in ("norm1", "norm2"):
        getattr(dst, key).weight.copy_(getattr(src, key).weight[cols])
        getattr(dst, key).bias.copy_(getattr(src, key).bias[cols])


@dataclass
class BaselineSearch:
    """A found DCL or TinyHAR.

    Attributes:
        module: the plain model (reads ``[N, C, T]`` windows, keeps ``sensors`` itself).
        sensors: kept sensor channels (indices into C).
        kernels: kernel of every drawn convolution (identity layers left out).
        kept_filters: filters every drawn convolution keeps.
        params: trainable parameters of ``module``; ``macs``: its MACs per window
            (:func:`~fedhar.models.baselines.count_macs`).
        peak_memory_bytes: eq. 12's peak of ``module`` (module docstring's rule).
        history: per search epoch, ``tau``, mean train ``loss`` and ``macs`` of the most
            probable path.
    """

    module: nn.Module
    sensors: list[int]
    kernels: list[int]
    kept_filters: list[int]
    params: int
    macs: int
    peak_memory_bytes: int
    history: list[dict[str, float]] = field(default_factory=list)


def search_baseline(
    name: str,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    options: SearchOptions,
    filters: int = 64,
) -> BaselineSearch:
    """Searches the first stage of baseline ``name`` (``dcl`` or ``tinyhar``) on training
    windows ``x [N, C, T]`` / ``y [N]`` from a fresh supernet of ``filters`` filters, its
    weights seeded by ``options.seed`` (:func:`search_supernet`)."""
    check_xy(x, y, x.shape[1], x.shape[2], n_classes)
    net = BaselineSuperNet(name, x.shape[1], x.shape[2], n_classes, filters, seed=options.seed)
    return search_supernet(net, x, y, x_val, y_val, options)


def search_supernet(
    net: BaselineSuperNet,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    options: SearchOptions,
) -> BaselineSearch:
    """Searches ``net`` on training windows ``x [N, C, T]`` / ``y [N]``, the architecture step
    on ``x_val`` / ``y_val`` (:func:`~fedhar.compress.search.bilevel` with eq. 10:
    ``options.beta1`` on MACs in units of ``options.macs_scale``, ``options.beta2`` on eq. 13
    of the inference peak against ``options.budget_bytes``; ``options.memory_mode`` does not
    apply); returns the re-instantiated model (eval mode)."""
    check_xy(x, y, net.channels, net.length, net.n_classes)
    check_xy(x_val, y_val, net.channels, net.length, net.n_classes)

    def loss_of(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return hardware_loss(
            logits, labels, options.beta1, net.expected_macs, options.beta2, net.peak_memory,
            options.budget_bytes, options.macs_scale,
        )  # fmt: skip

    history = bilevel(net, x, y, x_val, y_val, options, loss_of)
    module = net.plain()
    widths = [len(module.sensors)] + [layer.filters for layer in net.stage()]
    return BaselineSearch(
        module,
        list(module.sensors),
        [layer.kernel for layer in net.stage()],
        widths[1:],
        count_params(module),
        count_macs(module, net.channels, net.length),
        net.peak_bytes(widths),
        history,
    )


def macro_f1(module: nn.Module, x: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    """Macro-F1 of ``module`` (eval mode) on windows ``x [N, C, T]`` and labels ``y [N]``."""
    module.eval()
    with torch.no_grad():
        logits = torch.cat([
            module(torch.from_numpy(np.asarray(x[i : i + 512], np.float32)))
            for i in range(0, len(x), 512)
        ])  # fmt: skip
    return score(np.asarray(y), logits.argmax(1).numpy(), n_classes).macro_f1


def train_baseline(
    module: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
) -> nn.Module:
    """Trains ``module`` (a baseline or a found model) on ``x [N, C, T]`` / ``y [N]`` with
    :func:`fedhar.compress.training.train` (Adam, class-weighted cross-entropy, seeded batch
    order) and returns it, in eval mode, at the epoch of the best validation macro-F1 on
    ``x_val`` / ``y_val`` (the first best on ties). ``module`` itself is trained in place."""
    module.eval()
    with torch.no_grad():
        n_classes = int(module(torch.from_numpy(np.asarray(x[:1], np.float32))).shape[1])
    check_xy(x, y, x.shape[1], x.shape[2], n_classes)
    check_xy(x_val, y_val, x.shape[1], x.shape[2], n_classes)
    best_f1, best_state = -1.0, copy.deepcopy(module.state_dict())

    def keep_best(_epoch: int) -> None:
        nonlocal best_f1, best_state
        f1 = macro_f1(module, x_val, y_val, n_classes)
        if f1 > best_f1:
            best_f1, best_state = f1, copy.deepcopy(module.state_dict())

    schedule = Schedule(epochs, lr, batch_size, seed)
    train(module, x, y, n_classes, schedule, [{"params": module.parameters()}], None, keep_best)
    module.load_state_dict(best_state)
    return module.eval()

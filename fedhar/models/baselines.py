"""Two of zhou2024's baseline HAR models in PyTorch: DeepConvLSTM (DCL) and TinyHAR.

zhou2024 (§II, §V-A2) describes both only by their stages: an *individual convolution block*
(the same temporal convolutions on every sensor channel, "local context"), then sensor
interaction / fusion and temporal extraction. It keeps the later stages "consistent with the
original works" and searches the first one. Input of both: ``[N, C, T]`` windows (C sensor
channels, T samples; UCI HAR: 9 x 128), as the rest of fedhar feeds models; internally it is
``[N, 1, T, C]`` (f0 = 1 feature map, zhou2024 §III-A), and every convolution has a ``(k, 1)``
kernel, so sensor channels stay separate until the fusion stage.

**DCL** (DeepConvLSTM, Ordóñez & Roggen 2016): 4 convolutions of 64 filters, kernel 5 along
time, stride 1, no padding, each followed by ReLU; the ``[64, T-16, C]`` maps flattened per
time step into ``64 C`` features, one LSTM layer of 128 units, and a linear classifier on the
last step. One LSTM layer (the original has two) is this module's choice: with it the
parameter count on 9 x 128 is 424,262 against 424.26 k in zhou2024 Table II; with two it
would be 556 k. Dropout (the original's 0.5 before the classifier) is left out: it changes
neither parameters nor MACs and fedhar trains without it elsewhere.

**TinyHAR** (Zhou et al. 2022, ISWC, as zhou2024 §II's stage table summarises it):
1. individual convolutions: 4 x [Conv (k 5 x 1, F filters), ReLU, BatchNorm]; strides
   ``conv_strides`` (this module's choice: 2 on the 2nd and 4th layers, so T 128 -> 26);
2. sensor interaction: one transformer encoder layer (1 head, d = F, feed-forward 2F, post-norm)
   across the C sensor channels at every time step;
3. sensor fusion: a linear layer from ``C F`` to ``2F`` features per time step, ReLU;
4. temporal extraction: one LSTM layer of 2F units;
5. temporal aggregation: attention weights ``softmax_t(w2 . tanh(W1 h_t))`` over the steps and
   the weighted sum of the LSTM outputs;
6. a linear classifier.
The filter count F = ``filters`` (default 64), the strides, the head count and the feed-forward
width are this module's choices; zhou2024 gives none of them.

Neither model can be trained by the C library (it has no LSTM, attention or 2-D convolution);
both stay PyTorch-only. The models fedhar can personalize on the device are the
:class:`~fedhar.models.spec.ModelSpec` family (``cnn3``, ``daghero``, ``contoli`` and the
plain CNNs that :mod:`fedhar.compress.nas` re-instantiates).

:func:`count_macs` counts multiply-accumulates per window with the usual rules: a convolution
``out_elems x k x c_in``, a linear layer ``in x out`` per row, an LSTM ``4 (in + hidden) hidden``
per step, attention's two matrix products ``2 n^2 d``; BatchNorm, LayerNorm, activations,
softmax and bias additions count 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from fedhar.models.spec import MODEL_BUILDERS

ON_DEVICE_TRAINABLE: tuple[str, ...] = tuple(MODEL_BUILDERS)
"""Model families the C library can train (``cnn3``, ``daghero``, ``contoli`` and ``nas``, an
architecture found by the search: conv1d, dense, batchnorm and pooling layers only)."""
PYTORCH_ONLY: tuple[str, ...] = ("dcl", "tinyhar")
"""Models with layers the C library lacks (LSTM, attention): PyTorch only."""


def device_trainable(name: str) -> bool:
    """Whether the C library can train model ``name`` on the device: the spec families can;
    DCL and TinyHAR cannot (LSTM, attention and 2-D convolution are not among its layer kinds,
    :data:`~fedhar.models.spec.LAYER_KINDS`)."""
    if name in ON_DEVICE_TRAINABLE:
        return True
    if name in PYTORCH_ONLY:
        return False
    raise ValueError(
        f"unknown model {name!r}; expected one of {[*ON_DEVICE_TRAINABLE, *PYTORCH_ONLY]}"
    )


@dataclass(frozen=True)
class ConvLayer:
    """One layer of an individual convolution block: ``filters`` filters of kernel
    ``(kernel, 1)``, stride ``stride`` along time, ``padding`` ``valid`` (none) or ``same``
    (``(kernel - 1) / 2`` samples each side; odd kernels and stride 1 only)."""

    filters: int
    kernel: int
    stride: int = 1
    padding: str = "valid"

    def out_steps(self, steps: int) -> int:
        """Time steps this layer leaves of ``steps``."""
        if self.padding == "same":
            return steps
        return (steps - self.kernel) // self.stride + 1


def conv_stage(
    model: str, length: int, layers: Sequence[ConvLayer], batchnorm: bool
) -> tuple[nn.Sequential, int]:
    """The individual convolution block on ``[N, 1, T, C]``: one Conv2d per entry of
    ``layers``, each followed by ReLU (and BatchNorm when ``batchnorm``); returns it and the
    number of time steps it leaves of ``length``."""
    modules: list[nn.Module] = []
    steps, c_in = length, 1
    for layer in layers:
        if layer.padding == "same" and (layer.stride != 1 or layer.kernel % 2 == 0):
            raise ValueError(f"{model}: same padding needs stride 1 and an odd kernel, {layer}")
        pad = (layer.kernel - 1) // 2 if layer.padding == "same" else 0
        modules.append(
            nn.Conv2d(c_in, layer.filters, (layer.kernel, 1), (layer.stride, 1), (pad, 0))
        )
        modules += [nn.ReLU(), nn.BatchNorm2d(layer.filters)] if batchnorm else [nn.ReLU()]
        steps, c_in = layer.out_steps(steps), layer.filters
    if steps < 1:
        raise ValueError(f"{model}: windows of {length} samples are too short for its convs")
    return nn.Sequential(*modules), steps


class DeepConvLSTM(nn.Module):
    """DCL for ``[N, channels, length]`` windows; logits ``[N, n_classes]``. ``hidden``: LSTM
    units; ``n_conv`` convolutions of ``filters`` filters, kernel ``kernel`` samples, unless
    ``stage`` gives the convolutions explicitly (a searched first stage; the LSTM then reads
    the last layer's filters times ``channels`` features)."""

    def __init__(
        self, channels: int, length: int, n_classes: int, hidden: int = 128, n_conv: int = 4,
        filters: int = 64, kernel: int = 5, stage: Sequence[ConvLayer] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        layers = [ConvLayer(filters, kernel)] * n_conv if stage is None else list(stage)
        self.features, self.steps = conv_stage("DCL", length, layers, batchnorm=False)
        self.lstm = nn.LSTM(layers[-1].filters * channels, hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, C, T]`` → logits ``[N, K]``."""
        h = self.features(x.transpose(1, 2).unsqueeze(1))  # [N, F, T', C]
        h = h.permute(0, 2, 1, 3).flatten(2)  # [N, T', F C]
        out, _ = self.lstm(h)
        return self.classifier(out[:, -1])


class TinyHARHead(nn.Module):
    """TinyHAR's stages 2-6 on the maps of ``channels`` sensors x ``d`` features per time step:
    the interaction layer (width ``d``, feed-forward ``width``), the fusion to ``width``
    features, the LSTM of ``width`` units, the attention pooling and the classifier."""

    def __init__(self, channels: int, d: int, width: int, n_classes: int) -> None:
        super().__init__()
        self.interaction = nn.TransformerEncoderLayer(
            d, nhead=1, dim_feedforward=width, dropout=0.0, batch_first=True
        )
        self.fusion = nn.Linear(channels * d, width)
        self.lstm = nn.LSTM(width, width, batch_first=True)
        self.attn_hidden = nn.Linear(width, width)
        self.attn_score = nn.Linear(width, 1)
        self.classifier = nn.Linear(width, n_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h [N, T', C, d]`` → logits ``[N, K]``."""
        n, t, c, d = h.shape
        return self.fuse(self.interaction(h.reshape(n * t, c, d)).reshape(n, t, c * d))

    def fuse(self, mixed: torch.Tensor) -> torch.Tensor:
        """Stages 3-6 on the interaction's output ``mixed [N, T', C d]`` → logits ``[N, K]``."""
        h = torch.relu(self.fusion(mixed))  # [N, T', width]
        out, _ = self.lstm(h)
        weights = torch.softmax(self.attn_score(torch.tanh(self.attn_hidden(out))), dim=1)
        return self.classifier((weights * out).sum(dim=1))


class TinyHAR(nn.Module):
    """TinyHAR for ``[N, channels, length]`` windows; logits ``[N, n_classes]``. ``filters``:
    F; one convolution per entry of ``conv_strides``, kernel ``kernel`` samples, unless
    ``stage`` gives the convolutions explicitly (a searched first stage: the interaction
    layer's width d is then its last layer's filters; the feed-forward, fusion, LSTM and
    attention widths stay 2F)."""

    def __init__(
        self, channels: int, length: int, n_classes: int, filters: int = 64, kernel: int = 5,
        conv_strides: Sequence[int] = (1, 2, 1, 2), stage: Sequence[ConvLayer] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        layers = (
            [ConvLayer(filters, kernel, s) for s in conv_strides] if stage is None else list(stage)
        )
        self.features, self.steps = conv_stage("TinyHAR", length, layers, batchnorm=True)
        self.head = TinyHARHead(channels, layers[-1].filters, 2 * filters, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, C, T]`` → logits ``[N, K]``."""
        h = self.features(x.transpose(1, 2).unsqueeze(1))  # [N, F, T', C]
        return self.head(h.permute(0, 2, 3, 1))  # sensors as tokens, per step


class SensorSubset(nn.Module):
    """``model`` on the sensor channels ``sensors`` of ``[N, C, T]`` windows (a model found by
    a search that dropped the others; selecting costs no MACs)."""

    def __init__(self, sensors: Sequence[int], model: nn.Module) -> None:
        super().__init__()
        self.sensors = list(sensors)
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, C, T]`` → ``model(x[:, sensors])``."""
        return self.model(x[:, self.sensors])


def baseline_stage(name: str, filters: int = 64) -> list[ConvLayer]:
    """The unpruned first stage of ``dcl`` (4 convolutions, kernel 5, stride 1) or ``tinyhar``
    (4 convolutions, kernel 5, strides 1 2 1 2), with ``filters`` filters each."""
    if name == "dcl":
        return [ConvLayer(filters, 5)] * 4
    if name == "tinyhar":
        return [ConvLayer(filters, 5, s) for s in (1, 2, 1, 2)]
    raise ValueError(f"unknown baseline {name!r}; expected one of {list(PYTORCH_ONLY)}")


def build_staged(
    name: str, channels: int, length: int, n_classes: int, stage: Sequence[ConvLayer],
    filters: int = 64, hidden: int = 128,
) -> nn.Module:  # fmt: skip
    """``dcl`` (LSTM of ``hidden`` units) or ``tinyhar`` (later widths ``2 filters``) for
    ``[N, channels, length]`` windows, with the first stage ``stage``."""
    if name == "dcl":
        return DeepConvLSTM(channels, length, n_classes, hidden, stage=stage)
    if name == "tinyhar":
        return TinyHAR(channels, length, n_classes, filters, stage=stage)
    raise ValueError(f"unknown baseline {name!r}; expected one of {list(PYTORCH_ONLY)}")


def build_baseline(
    name: str, channels: int, length: int, n_classes: int, filters: int = 64
) -> nn.Module:
    """``dcl`` or ``tinyhar`` with the defaults above (``filters`` filters per convolution),
    for ``[N, channels, length]`` windows."""
    return build_staged(name, channels, length, n_classes, baseline_stage(name, filters), filters)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, channels: int, length: int) -> int:
    """Multiply-accumulates of one ``[channels, length]`` window (rules in the module
    docstring), measured from the shapes a forward pass sees."""
    total = 0

    def conv(module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        k = module.kernel_size[0] * module.kernel_size[1]
        total += out[0].numel() * k * module.in_channels // module.groups

    def linear(module: nn.Module, inp: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += inp[0].numel() * module.out_features  # one window: rows x in x out

    def lstm(module: nn.Module, inp: tuple[torch.Tensor, ...], _out: object) -> None:
        nonlocal total
        assert isinstance(module, nn.LSTM)
        steps = inp[0].shape[1]
        size, hidden = module.input_size, module.hidden_size
        total += steps * 4 * (size + hidden) * hidden

    def attention(module: nn.Module, inp: tuple[torch.Tensor, ...], _out: object) -> None:
        nonlocal total
        assert isinstance(module, nn.MultiheadAttention)
        seqs, tokens, d = inp[0].shape  # batch_first, one window: seqs = its time steps
        # per sequence: q, k, v and output projections, then q k^T and softmax(.) v
        total += seqs * (4 * tokens * d * d + 2 * tokens * tokens * d)

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv))
        elif isinstance(module, nn.Linear) and not isinstance(
            module, nn.modules.linear.NonDynamicallyQuantizableLinear
        ):
            handles.append(module.register_forward_hook(linear))
        elif isinstance(module, nn.LSTM):
            handles.append(module.register_forward_hook(lstm))
        elif isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_hook(attention))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, length))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total

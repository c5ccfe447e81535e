"""Variable-width 1D-CNN over the Daghero et al. 2022 template, with switchable BatchNorm.

A :class:`SlimNet` holds the parameters of the full-width network M_l once. Running it at a
width fraction ``w`` (e.g. 0.25) uses the first ``active(n, w)`` output channels of every conv
layer and the first features of every hidden dense layer, by slicing the same ``Parameter``
tensors (views, never copies), while each width has its own private BatchNorm (γ, β and
running statistics): switchable BN, §4.3 of the paper after Yu et al. [53]. The input
channels of the first conv and the classes of the last dense are never sliced.

Training is joint (:func:`joint_step`): every batch runs forward and backward at every
supported width (or, with the sandwich rule, at the widest, the narrowest and a few sampled
others), the gradients accumulate, then a single optimizer step follows. With in-place
distillation (Yu & Huang, slimmable networks) the reduced widths learn the full width's
softmax of the same batch (detached) instead of the labels. :class:`TrainOptions` holds these
choices and the learning-rate schedule; its defaults are the plain joint training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedhar.models.spec import LayerSpec, ModelSpec


def active(n: int, width: float) -> int:
    """Number of channels/features of a layer of size ``n`` kept at ``width`` (at least 1)."""
    return max(1, int(round(n * width)))


def check_widths(widths: Sequence[float]) -> tuple[float, ...]:
    """Validates width fractions: in (0, 1], distinct, including 1.0; returned ascending."""
    ws = tuple(sorted(float(w) for w in widths))
    if not ws or any(not 0.0 < w <= 1.0 for w in ws) or len(set(ws)) != len(ws):
        raise ValueError(f"widths must be distinct fractions in (0, 1], got {list(widths)}")
    if ws[-1] != 1.0:
        raise ValueError(f"widths must include the full width 1.0, got {list(widths)}")
    return ws


@dataclass(frozen=True)
class Block:
    """One conv block of the template: Conv1D(same) → BN → ReLU → optional MaxPool.

    Attributes:
        conv: conv layer name (``state_dict`` prefix).
        bn: batchnorm layer name.
        c_in: full input channels; ``c_out``: full output channels; ``kernel``: taps.
        pool: max-pool size and stride (1: no pool).
        first: True for the first block, whose input channels are never sliced.
    """

    conv: str
    bn: str
    c_in: int
    c_out: int
    kernel: int
    pool: int
    first: bool


@dataclass(frozen=True)
class Head:
    """One dense layer after GlobalAvgPool: ``relu`` for hidden layers, False for the last."""

    name: str
    n_in: int
    n_out: int
    relu: bool
    last: bool


def parse_template(spec: ModelSpec) -> tuple[list[Block], list[Head]]:
    """Splits a :func:`~fedhar.models.spec.daghero_cnn` spec into conv blocks and dense heads.

    Raises:
        ValueError: naming the layer when the spec is not Conv-BN-ReLU[-MaxPool]* GAP Dense+.
    """
    layers: list[LayerSpec] = list(spec.layers)
    blocks: list[Block] = []
    heads: list[Head] = []
    i = 0
    while i < len(layers) and layers[i].kind == "conv1d":
        conv = layers[i]
        kinds = [layer.kind for layer in layers[i + 1 : i + 3]]
        if kinds != ["batchnorm1d", "relu"] or conv.padding != "same":
            raise ValueError(
                f"layer {conv.name!r}: the adaptive template needs conv1d(same) → batchnorm1d → "
                f"relu, got {conv.padding} padding followed by {kinds}"
            )
        pool = 1
        j = i + 3
        if j < len(layers) and layers[j].kind == "maxpool1d":
            if layers[j].stride != layers[j].kernel:
                raise ValueError(f"layer {layers[j].name!r}: max-pool stride must equal its size")
            pool = layers[j].kernel
            j += 1
        blocks.append(
            Block(
                conv.name,
                layers[i + 1].name,
                conv.in_shape[0],
                conv.out_channels,
                conv.kernel,
                pool,
                not blocks,
            )
        )
        i = j
    if not blocks or i >= len(layers) or layers[i].kind != "gap1d":
        where = layers[i].name if i < len(layers) else "end of model"
        raise ValueError(f"{where!r}: the adaptive template needs conv blocks then gap1d")
    i += 1
    while i < len(layers):
        dense = layers[i]
        if dense.kind != "dense":
            raise ValueError(f"layer {dense.name!r}: expected dense after gap1d, got {dense.kind}")
        relu = i + 1 < len(layers) and layers[i + 1].kind == "relu"
        heads.append(Head(dense.name, dense.in_shape[0], dense.out_channels, relu, False))
        i += 2 if relu else 1
    if not heads or heads[-1].relu:
        raise ValueError("the adaptive template must end with a dense classifier without relu")
    heads[-1] = Head(heads[-1].name, heads[-1].n_in, heads[-1].n_out, False, True)
    return blocks, heads


class SwitchableBatchNorm1d(nn.Module):
    """Private BatchNorm1d per width: width ``w`` normalizes the first ``active(C, w)`` channels
    with its own γ, β, running mean and variance. Input/output ``[N, C', T]``."""

    def __init__(self, channels: int, widths: Sequence[float], eps: float = 1e-5) -> None:
        super().__init__()
        self.widths = check_widths(widths)
        self.bns = nn.ModuleList(nn.BatchNorm1d(active(channels, w), eps=eps) for w in self.widths)

    def forward(self, x: torch.Tensor, width: float) -> torch.Tensor:
        return self.bns[self.widths.index(width)](x)


class SlimNet(nn.Module):
    """Variable-width network over a daghero template spec; ``forward(x [N, C, T], width)``
    returns logits ``[N, n_classes]``.

    Conv and dense parameters keep the spec's ``state_dict`` names and full shapes; each width
    reads a slice of them. BatchNorm ``bnK`` becomes ``bnK.bns.<width index>``.
    """

    def __init__(self, spec: ModelSpec, widths: Sequence[float] = (1.0,)) -> None:
        super().__init__()
        self.spec = spec
        self.widths = check_widths(widths)
        self.blocks, self.heads = parse_template(spec)
        self.layers = nn.ModuleDict()
        for b in self.blocks:
            self.layers[b.conv] = nn.Conv1d(b.c_in, b.c_out, b.kernel, padding="same")
            eps = next(layer.eps for layer in spec.layers if layer.name == b.bn)
            self.layers[b.bn] = SwitchableBatchNorm1d(b.c_out, self.widths, eps)
        for h in self.heads:
            self.layers[h.name] = nn.Linear(h.n_in, h.n_out)

    def conv_channels(self, width: float) -> list[tuple[int, int]]:
        """``(c_in, c_out)`` active channels of every conv block at ``width``."""
        out = []
        for b in self.blocks:
            c_in = b.c_in if b.first else active(b.c_in, width)
            out.append((c_in, active(b.c_out, width)))
        return out

    def head_features(self, width: float) -> list[tuple[int, int]]:
        """``(n_in, n_out)`` active features of every dense layer at ``width``."""
        return [
            (active(h.n_in, width), h.n_out if h.last else active(h.n_out, width))
            for h in self.heads
        ]

    def forward(
        self, x: torch.Tensor, width: float = 1.0, taps: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Logits ``[N, n_classes]`` at ``width``; with ``taps``, appends each block's post-ReLU
        output ``[N, C', T']`` and each hidden dense's post-ReLU output ``[N, F']`` to it."""
        if width not in self.widths:
            raise ValueError(f"width {width} is not one of the supported widths {self.widths}")
        for b, (c_in, c_out) in zip(self.blocks, self.conv_channels(width), strict=True):
            conv = self.layers[b.conv]
            x = F.conv1d(x, conv.weight[:c_out, :c_in], conv.bias[:c_out], padding="same")
            x = F.relu(self.layers[b.bn](x, width))
            if taps is not None:
                taps.append(x)
            if b.pool > 1:
                x = F.max_pool1d(x, b.pool, b.pool)
        x = x.mean(dim=2)
        for h, (n_in, n_out) in zip(self.heads, self.head_features(width), strict=True):
            dense = self.layers[h.name]
            x = F.linear(x, dense.weight[:n_out, :n_in], dense.bias[:n_out])
            if h.relu:
                x = F.relu(x)
                if taps is not None:
                    taps.append(x)
        return x


def build_slim(spec: ModelSpec, widths: Sequence[float], seed: int) -> SlimNet:
    """A :class:`SlimNet` whose initial weights are deterministic for ``seed``."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return SlimNet(spec, widths)
    finally:
        torch.random.set_rng_state(state)


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse class-frequency loss weights ``[n_classes]`` (mean 1 over present classes)."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)
    w *= (counts > 0).sum() / w.sum()
    return torch.tensor(w, dtype=torch.float32)


@dataclass(frozen=True)
class TrainOptions:
    """How :func:`train` trains the widths of a :class:`SlimNet`.

    Attributes:
        distill: in-place distillation: every width below 1.0 minimizes the cross-entropy
            between the full width's softmax on the same batch (detached, computed first) and
            its own, instead of the labels' weighted cross-entropy.
        sandwich: None trains every width on every batch; ``n`` trains the widest, the
            narrowest and ``n`` others drawn at random (without replacement) from the rest.
        schedule: ``constant`` learning rate; ``cosine`` anneals it to 0 over the epochs;
            ``plateau`` is Daghero et al. §5.1: ×0.1 when the epoch's full-width training loss
            has not decreased for 3 epochs, and stop after ``patience`` stale epochs.
        patience: stale epochs before ``plateau`` stops (the paper: 5).
        weight_decay: Adam's L2 weight decay (the paper, §5.1: 1e-4 on UCI HAPT and
            UniMiB-SHAR, none on WISDM).
    """

    distill: bool = False
    sandwich: int | None = None
    schedule: Literal["constant", "cosine", "plateau"] = "constant"
    patience: int = 5
    weight_decay: float = 0.0


def step_widths(widths: Sequence[float], sandwich: int | None, gen: torch.Generator) -> list[float]:
    """The widths one batch trains, widest first: all of ``widths`` (ascending), or by the
    sandwich rule the widest, the narrowest and ``sandwich`` others drawn with ``gen``."""
    ws = sorted(widths, reverse=True)
    if sandwich is None or len(ws) <= 2 + sandwich:
        return ws
    middle = ws[1:-1]
    picks = torch.randperm(len(middle), generator=gen)[:sandwich].tolist()
    return [ws[0], *sorted((middle[i] for i in picks), reverse=True), ws[-1]]


def soft_cross_entropy(logits: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``-Σ_k p_k · log softmax(logits)_k``; ``logits`` and
    ``target_probs`` are ``[N, K]``."""
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def joint_step(
    net: SlimNet,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: nn.Module,
    widths: Sequence[float] | None = None,
    distill: bool = False,
) -> dict[float, float]:
    """One joint training step: forward and backward at every width of ``widths`` (default:
    all of the net's; gradients accumulate into the shared parameters), then one
    ``optimizer.step()``. Widths run narrowest first; with ``distill``, widest first: the full
    width (which must be among ``widths``) learns the labels and every other width learns its
    detached softmax. Returns width → loss."""
    chosen = sorted(net.widths if widths is None else widths, reverse=distill)
    if distill and chosen and chosen[0] != 1.0:
        raise ValueError("in-place distillation needs the full width 1.0 in every step")
    optimizer.zero_grad(set_to_none=True)
    losses = {}
    teacher = None
    for w in chosen:
        logits = net(x, w)
        if distill and teacher is not None:
            loss = soft_cross_entropy(logits, teacher)
        else:
            loss = loss_fn(logits, y)
        if distill and w == 1.0:
            teacher = F.softmax(logits.detach(), dim=1)
        loss.backward()
        losses[w] = float(loss.detach())
    optimizer.step()
    return losses


def train(
    net: SlimNet,
    x: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    options: TrainOptions | None = None,
) -> list[float]:
    """Jointly trains the widths of ``net`` on windows ``x [N, C, T]`` (float32), labels
    ``y [N]``, with Adam and class-weighted cross-entropy (the paper's §5.1 loss), for at
    most ``epochs`` epochs, as ``options`` says (default: every width on every batch, constant
    learning rate).

    Returns the mean full-width training loss of every epoch run.
    """
    if len(x) == 0:
        raise ValueError("cannot train on an empty set of windows")
    opts = options if options is not None else TrainOptions()
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(np.asarray(y), net.spec.n_classes))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=opts.weight_decay)
    sched: torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau
    if opts.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    elif opts.schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=3)
    history: list[float] = []
    best, stale = float("inf"), 0
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        total, batches = 0.0, 0
        for start in range(0, len(perm), batch_size):
            idx = perm[start : start + batch_size]
            if len(idx) < 2:
                continue
            widths = step_widths(net.widths, opts.sandwich, gen)
            total += joint_step(net, opt, xt[idx], yt[idx], loss_fn, widths, opts.distill)[1.0]
            batches += 1
        history.append(total / max(batches, 1))
        if opts.schedule == "cosine":
            sched.step()
        elif opts.schedule == "plateau":
            sched.step(history[-1])
            best, stale = (history[-1], 0) if history[-1] < best else (best, stale + 1)
            if stale >= opts.patience:
                break
    net.eval()
    return history


@torch.no_grad()
def predict_logits(net: SlimNet, x: np.ndarray, width: float, batch_size: int = 1024) -> np.ndarray:
    """Eval-mode float logits ``[N, n_classes]`` of ``net`` at ``width`` on ``x [N, C, T]``."""
    net.eval()
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    outs = [net(xt[i : i + batch_size], width) for i in range(0, len(xt), batch_size)]
    return torch.cat(outs).numpy() if outs else np.zeros((0, net.spec.n_classes), np.float32)

"""Personalizing a variable-width network on the device, through the C training library.

A device deploys a two-width :class:`~fedhar.adaptive.slim.SlimNet` (M_s at the small width,
M_l at 1.0, sharing their weights). A personalization job trains both widths, as the joint
training of :func:`fedhar.adaptive.slim.joint_step` does, but in the C library: one
:class:`~fedhar.ondevice.ctrain.Trainer` per width runs the width's slice of the shared
tensors (``width_spec``). Each batch steps M_l, then M_s on the weights M_l just updated
(the sandwich order, largest first); each width keeps its private BatchNorm and its own
optimizer state. BatchNorm trains as the C library trains it, in eval mode: γ and β learn,
the running statistics of each width stay those of the general model. ``full`` trains every
conv, batchnorm and dense layer; ``tl`` the last ``tl_layers`` dense layers.

A job runs epoch by epoch from a :class:`Checkpoint` (the network's tensors, each width's
optimizer state and the epochs done): :meth:`SlimJob.epoch` restores one, runs one epoch and
returns the next, so a job that a cut-off stopped continues from its last completed epoch
exactly as if nothing had happened. The operations the C library counts price the epoch.

Tensors are PyTorch ``state_dict`` layouts as float32 numpy arrays; ``x`` is ``[N, C, T]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from fedhar.adaptive.slim import SlimNet, active
from fedhar.models.spec import ModelSpec, SpecBuilder
from fedhar.ondevice.ctrain import OpCounts, Trainer

SlimState = dict[str, np.ndarray]
"""A :class:`SlimNet`'s ``state_dict`` as float32 numpy arrays, without the BatchNorm step
counters (``num_batches_tracked``)."""


def slim_state(net: SlimNet) -> SlimState:
    """Copies of ``net``'s tensors."""
    return {
        k: v.detach().numpy().astype(np.float32, copy=True)
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def slim_net(template: SlimNet, state: Mapping[str, np.ndarray]) -> SlimNet:
    """A new eval-mode :class:`SlimNet` of ``template``'s spec and widths holding ``state``."""
    net = SlimNet(template.spec, template.widths)
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}
    missing, unexpected = net.load_state_dict(tensors, strict=False)
    wrong = [k for k in missing if not k.endswith("num_batches_tracked")] + list(unexpected)
    if wrong:
        raise ValueError(f"state does not match the network: {sorted(wrong)}")
    return net.eval()


def width_spec(net: SlimNet, width: float) -> ModelSpec:
    """The plain model M_w: ``net``'s template with every conv and hidden dense layer at
    ``width`` (the classifier keeps its classes, the first conv its input channels)."""
    last = net.heads[-1].name
    spec = net.spec
    b = SpecBuilder(spec.input_channels, spec.input_length)
    for layer in spec.layers:
        if layer.kind == "conv1d":
            b.conv1d(
                layer.name,
                active(layer.out_channels, width),
                layer.kernel,
                layer.stride,
                layer.padding,
            )
        elif layer.kind == "batchnorm1d":
            b.batchnorm1d(layer.name, layer.eps)
        elif layer.kind == "relu":
            b.relu(layer.name)
        elif layer.kind in ("maxpool1d", "avgpool1d"):
            b.pool1d(layer.kind, layer.name, layer.kernel, layer.stride)
        elif layer.kind == "gap1d":
            b.gap1d(layer.name)
        elif layer.kind == "dense":
            units = layer.out_channels if layer.name == last else active(layer.out_channels, width)
            b.dense(layer.name, units)
        else:
            raise ValueError(f"layer {layer.name!r}: kind {layer.kind!r} is not in the template")
    return b.build(f"{spec.name}@{width:g}")


def _slices(net: SlimNet, width: float) -> dict[str, tuple[str, tuple[slice, ...]]]:
    """M_w's ``state_dict`` key → (``net``'s key, the slice of that tensor it is)."""
    index = net.widths.index(width)
    out: dict[str, tuple[str, tuple[slice, ...]]] = {}
    for b, (c_in, c_out) in zip(net.blocks, net.conv_channels(width), strict=True):
        out[f"{b.conv}.weight"] = (f"layers.{b.conv}.weight", (slice(0, c_out), slice(0, c_in)))
        out[f"{b.conv}.bias"] = (f"layers.{b.conv}.bias", (slice(0, c_out),))
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[f"{b.bn}.{name}"] = (f"layers.{b.bn}.bns.{index}.{name}", (slice(None),))
    for h, (n_in, n_out) in zip(net.heads, net.head_features(width), strict=True):
        out[f"{h.name}.weight"] = (f"layers.{h.name}.weight", (slice(0, n_out), slice(0, n_in)))
        out[f"{h.name}.bias"] = (f"layers.{h.name}.bias", (slice(0, n_out),))
    return out


def width_state(net: SlimNet, state: Mapping[str, np.ndarray], width: float) -> SlimState:
    """M_w's tensors (contiguous copies) cut from the shared ``state``."""
    return {
        k: np.ascontiguousarray(state[src][cut]) for k, (src, cut) in _slices(net, width).items()
    }


def put_width_state(
    net: SlimNet, state: SlimState, width: float, part: Mapping[str, np.ndarray]
) -> None:
    """Writes M_w's tensors ``part`` back into their slices of ``state``, in place."""
    for k, (src, cut) in _slices(net, width).items():
        state[src][cut] = part[k]


@dataclass(frozen=True)
class Checkpoint:
    """What a job keeps between epochs, as a device keeps it in flash.

    Attributes:
        state: the network's tensors.
        optimizer: per width (as a string, e.g. ``"0.25"``), its trainer's
            :meth:`~fedhar.ondevice.ctrain.Trainer.optimizer_state`; empty before the first
            epoch.
        epochs_done: completed epochs.
    """

    state: SlimState
    optimizer: Mapping[str, Mapping[str, object]]
    epochs_done: int

    def nbytes(self) -> int:
        """Bytes of tensors and optimizer moments (what a flash checkpoint writes)."""
        moments = sum(
            v.nbytes
            for opt in self.optimizer.values()
            for v in opt.values()
            if isinstance(v, np.ndarray)
        )
        return sum(v.nbytes for v in self.state.values()) + moments


@dataclass(frozen=True)
class EpochResult:
    """One epoch of a job.

    Attributes:
        checkpoint: the state after the epoch.
        ops: operations the C library counted, both widths.
        loss: mean full-width batch loss.
    """

    checkpoint: Checkpoint
    ops: OpCounts
    loss: float


def inverse_frequency(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Class-weighted cross-entropy weights ``[n_classes]``: inverse class frequency with mean
    1 over the classes present (absent classes weigh 0), as :func:`slim.class_weights`."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)
    return (w * (counts > 0).sum() / w.sum()).astype(np.float32)


class SlimJob:
    """A personalization job's fixed part: the network, the mode and the optimizer.

    Args:
        net: the deployed network (its spec and widths; its tensors are not read).
        mode: ``"full"`` or ``"tl"``.
        lr, momentum: SGD learning rate and momentum.
        batch_size: windows per step; a last batch of one window is skipped (BatchNorm).
        tl_layers: dense layers trained by ``tl``.
    """

    def __init__(
        self,
        net: SlimNet,
        mode: str,
        *,
        lr: float,
        momentum: float,
        batch_size: int,
        tl_layers: int = 1,
    ) -> None:
        if mode not in ("full", "tl"):
            raise ValueError(f"mode: expected 'full' or 'tl', got {mode!r}")
        if batch_size < 2:
            raise ValueError(f"batch_size: expected >= 2, got {batch_size}")
        self.net, self.mode, self.batch_size = net, mode, batch_size
        self.widths = sorted(net.widths, reverse=True)  # M_l first
        self._specs = {w: width_spec(net, w) for w in self.widths}
        self._options = {
            "mode": mode,
            "tl_layers": tl_layers,
            "lr": lr,
            "momentum": momentum,
            "n_stored_samples": batch_size,
        }

    def start(self, state: Mapping[str, np.ndarray]) -> Checkpoint:
        """The checkpoint before the first epoch, from the deployed ``state``."""
        return Checkpoint({k: np.array(v, np.float32) for k, v in state.items()}, {}, 0)

    def epoch(
        self, ckpt: Checkpoint, x: np.ndarray, y: np.ndarray, order: np.ndarray
    ) -> EpochResult:
        """One epoch from ``ckpt`` over windows ``x [N, C, T]``, labels ``y [N]``, visited in
        ``order [N]``; the class weights are the inverse class frequencies of ``y``."""
        state = {k: v.copy() for k, v in ckpt.state.items()}
        weights = inverse_frequency(y, self.net.spec.n_classes)
        trainers = {}
        for w in self.widths:
            t = Trainer(self._specs[w], **self._options)
            t.set_class_weights(weights)
            if ckpt.optimizer:
                t.load_optimizer_state(ckpt.optimizer[f"{w:g}"])
            trainers[w] = t
        losses = []
        labels = np.asarray(y, dtype=np.int32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            if idx.size < 2:
                continue
            xb, yb = np.ascontiguousarray(x[idx]), labels[idx]
            for w, t in trainers.items():  # each width steps on what the previous one left
                t.load_state_dict(width_state(self.net, state, w))
                loss = t.train_batch(xb, yb)
                put_width_state(self.net, state, w, t.state_dict())
                if w == self.widths[0]:
                    losses.append(loss)
        ops = OpCounts()
        for t in trainers.values():
            for phases in t.counts().values():
                for counted in phases.values():
                    ops = ops + counted
        optimizer = {f"{w:g}": t.optimizer_state() for w, t in trainers.items()}
        ckpt_next = Checkpoint(state, optimizer, ckpt.epochs_done + 1)
        return EpochResult(ckpt_next, ops, float(np.mean(losses)) if losses else float("nan"))

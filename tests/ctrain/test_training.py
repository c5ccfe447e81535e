"""Whole-model training against PyTorch: cnn3 with SGD + momentum + weight decay, TL freezing,
warm-up switching, stored samples, inference and batchnorm folding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _ctrain_support import data, max_param_rel_err, random_model, rel_err, twins
from hypothesis import given, settings
from hypothesis import strategies as st

from fedhar.models.spec import ModelSpec, cnn3, daghero_cnn
from fedhar.models.torch_model import SpecNet
from fedhar.ondevice.ctrain import Trainer, fold_batchnorm

LR, MOMENTUM, WD = 0.05, 0.9, 1e-3
pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")


def _torch_steps(
    net: SpecNet,
    params: list[torch.nn.Parameter],
    x: np.ndarray,
    y: np.ndarray,
    batches: list[np.ndarray],
    weight: np.ndarray | None = None,
) -> None:
    opt = torch.optim.SGD(params, lr=LR, momentum=MOMENTUM, weight_decay=WD)
    loss_fn = torch.nn.CrossEntropyLoss(weight=None if weight is None else torch.from_numpy(weight))
    for idx in batches:
        opt.zero_grad()
        loss_fn(net(torch.from_numpy(x[idx])), torch.from_numpy(y[idx])).backward()
        opt.step()


@pytest.mark.parametrize("length", [20, 64])
def test_cnn3_50_steps_match_pytorch(length: int) -> None:
    spec = cnn3(3, length, 6)
    net, trainer = twins(spec, 1, mode="full", lr=LR, momentum=MOMENTUM, weight_decay=WD)
    x, y = data(200, 3, length, 6, 2)
    order = np.random.default_rng(3).permutation(np.tile(np.arange(200), 8))[: 50 * 32]
    batches = [order[i : i + 32] for i in range(0, len(order), 32)]
    for idx in batches[:25]:
        trainer.train_batch(x[idx], y[idx])
    trainer.train_epoch(x, y, 32, order[25 * 32 :])
    _torch_steps(net, list(net.parameters()), x, y, batches)
    assert len(batches) == 50
    assert max_param_rel_err(trainer, net) <= 1e-4


def test_tl_keeps_frozen_layers_bit_identical_and_matches_pytorch() -> None:
    spec = cnn3(3, 40, 6)
    net, trainer = twins(spec, 4, mode="tl", lr=LR, momentum=MOMENTUM, weight_decay=WD)
    start = trainer.state_dict()
    x, y = data(96, 3, 40, 6, 5)
    batches = [np.arange(i, i + 32) for i in range(0, 96, 32)] * 4
    trainer.train_epoch(x, y, 32, np.concatenate(batches))
    head = [p for name, p in net.named_parameters() if name.startswith(("fc1.", "fc2."))]
    _torch_steps(net, head, x, y, batches)
    after = trainer.state_dict()
    for key, value in start.items():
        if key.startswith(("conv1.", "conv2.")):
            assert np.array_equal(after[key], value), key
        else:
            assert not np.array_equal(after[key], value), key
    assert max_param_rel_err(trainer, net) <= 1e-4


def test_tl_stores_only_what_backward_needs() -> None:
    spec = cnn3(3, 100, 6)
    tl = Trainer(spec, mode="tl").memory()
    full = Trainer(spec, mode="full").memory()
    assert tl["gradients"] == 4 * (64 * 50 + 50 + 50 * 6 + 6)
    # TL keeps only fc1's input (64), relu3's output (50): no conv activations.
    assert tl["activations"] == 4 * (64 + 50)
    assert tl["per_layer"]["conv1"]["activations"] == 0
    assert full["activations"] > tl["activations"]


def test_warmup_then_full_matches_fresh_pytorch_optimizers() -> None:
    spec = daghero_cnn(3, 32, 4, channels=(8, 12), kernels=(5, 3), hidden=10)
    w = np.array([1.0, 2.0, 0.5, 1.5], dtype=np.float32)
    net, trainer = twins(
        spec, 6, mode="tl", tl_layers=1, lr=LR, momentum=MOMENTUM, weight_decay=WD, class_weights=w
    )
    x, y = data(64, 3, 32, 4, 7)
    warm = [np.arange(i, i + 16) for i in range(0, 64, 16)]
    trainer.train_epoch(x, y, 16)
    _torch_steps(net, list(net.fc2.parameters()), x, y, warm, w)
    trainer.set_trainable(mode="full")
    order = np.random.default_rng(8).permutation(64)
    trainer.train_epoch(x, y, 16, order)
    _torch_steps(
        net, list(net.parameters()), x, y, [order[i : i + 16] for i in range(0, 64, 16)], w
    )
    assert max_param_rel_err(trainer, net) <= 1e-4


def test_stored_samples_train_like_arrays() -> None:
    spec = cnn3(3, 20, 6)
    x, y = data(40, 3, 20, 6, 9)
    order = np.random.default_rng(1).permutation(40)
    _, a = twins(spec, 2, mode="full", momentum=MOMENTUM, n_stored_samples=40)
    _, b = twins(spec, 2, mode="full", momentum=MOMENTUM)
    a.store_samples(x[:25], y[:25])
    a.store_samples(x[25:], y[25:], first=25)
    loss_a = a.train_epoch(None, None, 8, order)
    loss_b = b.train_epoch(x, y, 8, order)
    assert loss_a == loss_b
    sa, sb = a.state_dict(), b.state_dict()
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert a.memory()["stored_samples"] == 40 * (3 * 20 + 1) * 4


def test_logits_match_pytorch_on_a_whole_array() -> None:
    spec = daghero_cnn(3, 48, 6, hidden=16)
    net, trainer = twins(spec, 3)
    x, _ = data(50, 3, 48, 6, 4)
    ref = net(torch.from_numpy(x)).detach().numpy()
    assert trainer.logits(x).shape == (50, 6)
    assert rel_err(trainer.logits(x), ref) <= 1e-5


def test_batchnorm_fold_matches_conv_then_batchnorm() -> None:
    spec = daghero_cnn(3, 24, 5, channels=(6,), kernels=(5,))
    net, _ = twins(spec, 5)
    sd = {k: v.detach().numpy() for k, v in net.spec_state_dict().items()}
    w, b = fold_batchnorm(
        sd["conv1.weight"],
        sd["conv1.bias"],
        sd["bn1.weight"],
        sd["bn1.bias"],
        sd["bn1.running_mean"],
        sd["bn1.running_var"],
    )
    x = torch.from_numpy(data(4, 3, 24, 5, 6)[0])
    ref = net.bn1(net.conv1(x)).detach().numpy()
    folded = torch.nn.functional.conv1d(x, torch.from_numpy(w), torch.from_numpy(b), padding="same")
    assert rel_err(folded.numpy(), ref) <= 1e-5
    assert not np.array_equal(w, sd["conv1.weight"])  # inputs untouched, new arrays returned


@settings(max_examples=12, derandomize=True, deadline=None)
@given(model=random_model(), seed=st.integers(0, 1000))
def test_random_models_and_flags_train_like_pytorch(
    model: tuple[ModelSpec, list[bool]], seed: int
) -> None:
    """Any composition of layers, any trainable subset: 4 SGD+momentum+wd steps match."""
    spec, flags = model
    net, trainer = twins(spec, seed, lr=LR, momentum=MOMENTUM, weight_decay=WD, trainable=flags)
    start = trainer.state_dict()
    x, y = data(24, spec.input_channels, spec.input_length, spec.n_classes, seed)
    batches = [np.arange(i, i + 6) for i in range(0, 24, 6)]
    trainer.train_epoch(x, y, 6)
    trained = {layer.name for layer, f in zip(spec.layers, flags, strict=True) if f}
    params = [p for name, p in net.named_parameters() if name.split(".")[0] in trained]
    _torch_steps(net, params, x, y, batches)
    assert max_param_rel_err(trainer, net) <= 1e-4
    after = trainer.state_dict()
    for key, value in start.items():
        if key.split(".")[0] not in trained:
            assert np.array_equal(after[key], value), key


def test_adam_with_a_schedule_matches_pytorch() -> None:
    """Adam (L2 weight decay, bias corrections) and set_lr between epochs, as a cosine
    schedule does, against torch.optim.Adam stepped by CosineAnnealingLR."""
    spec = cnn3(3, 40, 5)
    net, trainer = twins(spec, 2, mode="full", lr=3e-3, weight_decay=1e-4, optimizer="adam")
    net.train()
    x, y = data(192, 3, 40, 5, 7)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    loss_fn = torch.nn.CrossEntropyLoss()
    for _ in range(4):
        for start in range(0, len(x), 32):
            opt.zero_grad()
            loss_fn(
                net(torch.from_numpy(x[start : start + 32])),
                torch.from_numpy(y[start : start + 32]),
            ).backward()
            opt.step()
        trainer.train_epoch(x, y, 32)
        schedule.step()
        trainer.set_lr(opt.param_groups[0]["lr"])
    assert max_param_rel_err(trainer, net) < 1e-4


def test_adam_state_lives_in_the_optimizer_category() -> None:
    spec = cnn3(3, 20, 6)
    sgd = Trainer(spec, "full", momentum=0.9)
    adam = Trainer(spec, "full", optimizer="adam")
    params = spec.trainable_count() * 4
    assert sgd.memory()["optimizer"] == params
    assert adam.memory()["optimizer"] == 2 * params
    assert adam.memory()["arena_bytes"] == Trainer.required_arena_bytes(spec, optimizer="adam")

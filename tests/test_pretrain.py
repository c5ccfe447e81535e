"""Pretraining: deterministic by seed, cached by content, normalizer from training users only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fedhar.data.types import WindowSet
from fedhar.models.spec import cnn3, daghero_cnn
from fedhar.studies.pretrain import (
    PretrainOptions,
    cache_key,
    class_weights,
    predict,
    pretrain,
    random_rotations,
    resolved_engine,
)

OPTIONS = PretrainOptions(epochs=3, patience=2, batch_size=32, val_fraction=0.25, seed=3)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _windows(n_users: int = 4, per_class: int = 12, seed: int = 0) -> WindowSet:
    """Separable toy windows ``[N, 3, 24]``: class c adds a gravity-like offset on axis c."""
    rng = np.random.default_rng(seed)
    xs, ys, users, order = [], [], [], []
    for u in range(n_users):
        for c in range(3):
            x = rng.normal(0, 1, (per_class, 3, 24)).astype(np.float32)
            x[:, c, :] += 5.0 + u
            xs.append(x)
            ys.append(np.full(per_class, c))
            users.append(np.full(per_class, str(u + 1)))
            order.append(np.arange(per_class))
    return WindowSet(
        np.concatenate(xs), np.concatenate(ys), np.concatenate(users), np.concatenate(order)
    )


def test_class_weights_inverse_frequency() -> None:
    w = class_weights(np.array([0, 0, 0, 1]), 3)
    assert w.tolist() == pytest.approx([4 / 6, 2.0, 0.0])


def test_rotations_are_rotations() -> None:
    rot = random_rotations(50, 45.0, True, torch.Generator().manual_seed(0))
    eye = torch.eye(3).expand(50, 3, 3)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(50), atol=1e-5)


def test_deterministic_and_cached(tmp_path: Path) -> None:
    ws = _windows()
    spec = cnn3(3, 24, 3)
    opts = PretrainOptions(
        **{
            **OPTIONS.__dict__,
            "augment_rotation_deg": 20.0,
            "augment_spin_deg": 180.0,
            "augment_flips": True,
            "schedule": "cosine",
        }
    )
    first = pretrain(spec, ws, opts, cache_dir=tmp_path / "a")
    again = pretrain(spec, ws, opts, cache_dir=tmp_path / "b")
    assert not first.from_cache and not again.from_cache
    for key in first.state_dict:
        assert torch.equal(first.state_dict[key], again.state_dict[key]), key
    hit = pretrain(spec, ws, opts, cache_dir=tmp_path / "a")
    assert hit.from_cache
    assert hit.cache_key == first.cache_key
    assert hit.log == first.log and hit.best_epoch == first.best_epoch
    assert hit.val_users == first.val_users and len(hit.val_users) == 1
    assert hit.normalizer.to_dict() == first.normalizer.to_dict()
    for key in first.state_dict:
        assert torch.equal(first.state_dict[key], hit.state_dict[key]), key


def test_cache_key_changes_with_data_and_options(tmp_path: Path) -> None:
    ws = _windows()
    spec = cnn3(3, 24, 3)
    base = pretrain(spec, ws, OPTIONS, cache_dir=tmp_path)
    other_seed = pretrain(
        spec, ws, PretrainOptions(**{**OPTIONS.__dict__, "seed": 4}), cache_dir=tmp_path
    )
    other_data = pretrain(spec, ws.subset(ws.users != "4"), OPTIONS, cache_dir=tmp_path)
    assert len({base.cache_key, other_seed.cache_key, other_data.cache_key}) == 3
    assert not other_seed.from_cache and not other_data.from_cache


def test_cache_key_holds_the_cpu_kernels_of_the_torch_engine(monkeypatch) -> None:
    # Another instruction set trains other float32 weights; the C engine's do not depend on it.
    ws = _windows()
    spec = cnn3(3, 24, 3)
    engines = {e: PretrainOptions(**{**OPTIONS.__dict__, "engine": e}) for e in ("torch", "c")}
    here = {e: cache_key(spec, ws, o) for e, o in engines.items()}
    other = "avx2" if torch.backends.cpu.get_cpu_capability() != "avx2" else "default"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: other)
    assert cache_key(spec, ws, engines["torch"]) != here["torch"]
    assert cache_key(spec, ws, engines["c"]) == here["c"]


def test_normalizer_fitted_on_training_users_only(tmp_path: Path) -> None:
    ws = _windows()
    result = pretrain(cnn3(3, 24, 3), ws, OPTIONS, cache_dir=tmp_path)
    train = ws.subset(np.isin(ws.users, result.train_users))
    assert set(result.train_users).isdisjoint(result.val_users)
    assert result.normalizer.mean == pytest.approx(train.x.mean(axis=(0, 2)), rel=1e-5)


def test_learns_a_separable_problem(tmp_path: Path) -> None:
    ws = _windows(per_class=20)
    opts = PretrainOptions(epochs=15, patience=15, lr=0.01, val_fraction=0.0, seed=0)
    result = pretrain(cnn3(3, 24, 3), ws, opts, cache_dir=tmp_path)
    assert result.best_epoch == 15 and result.val_users == []
    net = result.model(cnn3(3, 24, 3))

    pred = predict(net, result.normalizer.transform(ws.x))
    assert (pred == ws.y).mean() > 0.9


@pytest.mark.parametrize(
    ("field", "value"),
    [("optimizer", "rmsprop"), ("lr", 0.0), ("schedule", "step"), ("augment_spin_deg", 200.0)],
)
def test_options_are_validated(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        PretrainOptions(**{field: value})


def test_c_engine_trains_like_the_torch_reference(tmp_path: Path) -> None:
    """Same initial weights, batches, augmentation and cosine Adam: the C engine's weights stay
    within float rounding of PyTorch's after two epochs, and its fit is bit-reproducible."""
    ws = _windows(per_class=16)
    spec = cnn3(3, 24, 3)
    base = {
        **OPTIONS.__dict__,
        "epochs": 2,
        "val_fraction": 0.0,
        "schedule": "cosine",
        "augment_rotation_deg": 20.0,
        "augment_flips": True,
    }
    ours = pretrain(spec, ws, PretrainOptions(**{**base, "engine": "c"}), cache_dir=tmp_path)
    ref = pretrain(spec, ws, PretrainOptions(**{**base, "engine": "torch"}), cache_dir=tmp_path)
    again = pretrain(spec, ws, PretrainOptions(**{**base, "engine": "auto"}), cache_dir=tmp_path)
    assert ours.cache_key != ref.cache_key and again.from_cache  # auto is c for cnn3
    for key, value in ref.state_dict.items():
        scale = float(value.abs().max())
        assert float((ours.state_dict[key] - value).abs().max()) <= 1e-4 * scale, key
    assert [e.train_loss for e in ours.log] == pytest.approx(
        [e.train_loss for e in ref.log], rel=1e-4
    )
    fresh = pretrain(spec, ws, PretrainOptions(**{**base, "engine": "c"}), use_cache=False)
    for key, value in ours.state_dict.items():
        assert torch.equal(fresh.state_dict[key], value), key


def test_c_engine_refuses_batchnorm() -> None:
    spec = daghero_cnn(3, 24, 3)
    assert resolved_engine(spec, PretrainOptions()) == "torch"
    with pytest.raises(ValueError, match="BatchNorm"):
        resolved_engine(spec, PretrainOptions(engine="c"))

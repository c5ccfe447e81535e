"""Federated pretraining: FedAvg's weighting, the pooled statistics, one round against the C
trainer alone, LOSO honesty, determinism (whatever ``jobs``), counted bytes, the cache and the
scenario keys."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fedhar.data.preprocess import Normalizer
from fedhar.data.types import WindowSet
from fedhar.errors import ScenarioValueError
from fedhar.models.spec import cnn3
from fedhar.models.torch_model import build_torch
from fedhar.models.training import class_weights
from fedhar.ondevice.ctrain import Trainer
from fedhar.schema.base import validate_model
from fedhar.schema.scenario import Scenario
from fedhar.studies.fedavg import client_statistics, pooled_statistics, weighted_average
from fedhar.studies.fedpretrain import client_generator, federated_pretrain, participants
from fedhar.studies.pipeline import (
    federated_options,
    fold_windows,
    prepare,
    pretrain_fold,
    pretrain_folds,
    pretrain_options,
)
from fedhar.studies.pretrain import (
    FederatedOptions,
    PretrainOptions,
    RoundLog,
    cache_key,
    cached,
    epoch_batches,
)

OPTIONS = PretrainOptions(batch_size=16, val_fraction=0.0, seed=5)


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _windows(n_users: int = 3, per_class: int = 10, seed: int = 0) -> WindowSet:
    """Toy windows ``[N, 3, 24]`` of ``n_users`` users: class c adds an offset on axis c."""
    rng = np.random.default_rng(seed)
    xs, ys, users = [], [], []
    for u in range(n_users):
        for c in range(3):
            x = rng.normal(0, 1, (per_class + u, 3, 24)).astype(np.float32)
            x[:, c, :] += 3.0 + u
            xs.append(x)
            ys.append(np.full(len(x), c))
            users.append(np.full(len(x), str(u + 1)))
    y = np.concatenate(ys)
    return WindowSet(np.concatenate(xs), y, np.concatenate(users), np.arange(len(y)))


def _scenario(**pretrain: object) -> Scenario:
    data = {
        "name": "fedpre",
        "data": {
            "dataset": "synthetic",
            "options": {"n_users": 4, "seconds_per_activity": 6},
            "window": 50,
            "stride": 25,
        },
        "pretrain": {"batch_size": 16, "val_fraction": 0.0, **pretrain},
    }
    return validate_model(data, Scenario, "s.yaml")


def _figures(rounds: list[RoundLog]) -> str:
    """The rounds' figures as JSON text (NaN, a round without validation users, equals NaN)."""
    return json.dumps([r.to_dict() for r in rounds])


FEDERATED = {"method": "federated", "federated": {"rounds": 2, "local_epochs": 1}}


def test_weighted_average_is_the_hand_computed_mean() -> None:
    a = {"w": np.array([[1.0, 2.0]], dtype=np.float32), "b": np.array([4.0], dtype=np.float32)}
    b = {"w": np.array([[5.0, -2.0]], dtype=np.float32), "b": np.array([0.0], dtype=np.float32)}
    # n = 1 + 3: w = (1 * [1, 2] + 3 * [5, -2]) / 4 = [4, -1]; b = (1 * 4 + 3 * 0) / 4 = 1.
    out = weighted_average([a, b], [1, 3])
    assert out["w"].dtype == np.float32 and out["w"].tolist() == [[4.0, -1.0]]
    assert out["b"].tolist() == [1.0]
    with pytest.raises(ValueError, match="positive"):
        weighted_average([a, b], [1, 0])


def test_pooled_statistics_equal_the_pooled_fit() -> None:
    ws = _windows()
    stats = [client_statistics(ws.x[ws.users == u], ws.y[ws.users == u], 3) for u in "123"]
    pooled = pooled_statistics(stats, 3, 24)
    reference = Normalizer().fit(ws.x)
    np.testing.assert_allclose(pooled.normalizer.mean, reference.mean, rtol=1e-12)
    np.testing.assert_allclose(pooled.normalizer.std, reference.std, rtol=1e-10)
    assert pooled.class_counts.tolist() == np.bincount(ws.y, minlength=3).tolist()


def test_one_client_one_round_is_the_c_trainer_alone() -> None:
    ws = _windows(n_users=1)
    spec = cnn3(3, 24, 3)
    epochs = 3
    fed = federated_pretrain(
        spec, ws, OPTIONS, FederatedOptions(rounds=1, local_epochs=epochs), use_cache=False
    )
    # The same E epochs by hand: the client's normalizer, class weights, seeded start and
    # batch generator, straight through the C library.
    norm = pooled_statistics([client_statistics(ws.x, ws.y, 3)], 3, 24).normalizer
    assert np.array_equal(fed.normalizer.mean, norm.mean)
    trainer = Trainer(
        spec, "full", lr=OPTIONS.lr, class_weights=class_weights(ws.y, 3).numpy(),
        optimizer="adam",
    )  # fmt: skip
    init = build_torch(spec, seed=OPTIONS.seed).spec_state_dict()
    trainer.load_state_dict({k: v.numpy() for k, v in init.items()})
    gen = client_generator(OPTIONS.seed, 1, "1")
    mean = torch.tensor(norm.mean, dtype=torch.float32)[None, :, None]
    std = torch.tensor(norm.std, dtype=torch.float32)[None, :, None]
    x, y = torch.from_numpy(ws.x), torch.from_numpy(ws.y.astype(np.int64))
    for _ in range(epochs):
        xe, ye = epoch_batches(x, y, OPTIONS, gen, mean, std)
        trainer.train_epoch(xe.numpy(), ye.numpy(), OPTIONS.batch_size)
    alone = trainer.state_dict()
    assert set(alone) == set(fed.state_dict)
    for name, value in alone.items():
        assert np.array_equal(fed.state_dict[name].numpy(), value), name
    assert not np.array_equal(alone["conv1.weight"], init["conv1.weight"].numpy())
    assert fed.rounds[0].windows == epochs * len(ws)


def test_bytes_are_the_arrays_nbytes_times_clients_times_rounds() -> None:
    ws = _windows(n_users=3)
    spec = cnn3(3, 24, 3)
    fed = FederatedOptions(rounds=3, local_epochs=1, clients_per_round=2)
    result = federated_pretrain(spec, ws, OPTIONS, fed, use_cache=False)
    nbytes = sum(v.numpy().nbytes for v in result.state_dict.values())
    assert nbytes == 4 * sum(int(np.prod(s)) for s in spec.param_shapes().values())
    assert [len(r.participants) for r in result.rounds] == [2, 2, 2]
    assert sum(r.bytes_down for r in result.rounds) == nbytes * 2 * 3
    assert sum(r.bytes_up for r in result.rounds) == nbytes * 2 * 3
    # Statistics: [N, C sums, C squares, K counts] float64 up; mean, std, weights down.
    assert result.stats_bytes == {"up": 3 * 8 * (1 + 3 + 3 + 3), "down": 3 * 8 * (3 + 3 + 3)}
    assert all(r.ops["macs"] > 0 for r in result.rounds)
    drawn = [r.participants for r in result.rounds]
    assert drawn == [tuple(participants(["1", "2", "3"], 2, OPTIONS.seed, i)) for i in (1, 2, 3)]


def test_deterministic_and_cached(tmp_path: Path) -> None:
    ws = _windows()
    spec = cnn3(3, 24, 3)
    opts = replace(OPTIONS, val_fraction=0.34, augment_rotation_deg=20.0, schedule="cosine")
    fed = FederatedOptions(rounds=3, local_epochs=2)
    first = federated_pretrain(spec, ws, opts, fed, cache_dir=tmp_path / "a")
    again = federated_pretrain(spec, ws, opts, fed, cache_dir=tmp_path / "b")
    assert not first.from_cache and len(first.val_users) == 1
    for name in first.state_dict:
        assert torch.equal(first.state_dict[name], again.state_dict[name]), name
    assert first.rounds == again.rounds
    assert all(0 <= r.val_f1 <= 1 for r in first.rounds)
    hit = federated_pretrain(spec, ws, opts, fed, cache_dir=tmp_path / "a")
    assert hit.from_cache and hit.rounds == first.rounds and hit.stats_bytes == first.stats_bytes
    assert hit.best_epoch == first.best_epoch
    assert cached(spec, ws, opts, cache_dir=tmp_path / "a") is None  # not the centralized key
    assert cache_key(spec, ws, opts, fed) != cache_key(spec, ws, opts)
    assert cache_key(spec, ws, opts, fed) != cache_key(spec, ws, opts, replace(fed, rounds=4))


def test_the_held_out_user_never_contributes() -> None:
    scenario = _scenario(**FEDERATED)
    prepared = prepare(scenario)
    fold = prepared.folds[0]
    held_out = fold.test_users[0]
    before = pretrain_fold(prepared, fold, scenario, use_cache=False)

    def shifted(user: str) -> None:
        rows = prepared.windows.users == user
        prepared.windows.x[rows] = prepared.windows.x[rows] * 1.5 + 0.25

    shifted(held_out)
    same = pretrain_fold(prepared, fold, scenario, use_cache=False)
    for name in before.state_dict:
        assert torch.equal(before.state_dict[name], same.state_dict[name]), name
    assert np.array_equal(before.normalizer.mean, same.normalizer.mean)
    assert held_out not in before.train_users
    shifted(fold.pretrain_users[0])
    changed = pretrain_fold(prepared, fold, scenario, use_cache=False)
    assert not torch.equal(before.state_dict["conv1.weight"], changed.state_dict["conv1.weight"])


def test_same_models_whatever_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDHAR_CACHE_DIR", str(tmp_path))
    scenario = _scenario(**FEDERATED)
    prepared = prepare(scenario)
    folds = prepared.folds[:2]
    one = dict(pretrain_folds(prepared, folds, scenario, jobs=1, use_cache=False))
    two = dict(pretrain_folds(prepared, folds, scenario, jobs=2, use_cache=False))
    for fold in folds:
        assert _figures(one[fold].rounds) == _figures(two[fold].rounds)
        for name in one[fold].state_dict:
            assert torch.equal(one[fold].state_dict[name], two[fold].state_dict[name]), name


def test_centralized_keys_and_identity_are_unchanged() -> None:
    plain = _scenario()
    explicit = _scenario(method="centralized", federated={"rounds": 7})
    assert pretrain_options(plain) == pretrain_options(explicit)
    assert federated_options(plain) is None and federated_options(explicit) is None
    assert plain.identity_dump() == _scenario(method="centralized").identity_dump()
    assert "method" not in plain.identity_dump()["pretrain"]
    federated = _scenario(**FEDERATED)
    assert federated_options(federated) == FederatedOptions(rounds=2, local_epochs=1)
    assert federated.identity_dump()["pretrain"]["method"] == "federated"
    prepared = prepare(plain)
    ws = fold_windows(prepared, prepared.folds[0])
    assert cache_key(prepared.spec, ws, pretrain_options(plain)) == cache_key(
        prepared.spec, ws, pretrain_options(explicit)
    )


def test_clients_per_round_above_the_users_names_the_key() -> None:
    scenario = _scenario(method="federated", federated={"clients_per_round": 4})
    with pytest.raises(ScenarioValueError, match="pretrain.federated.clients_per_round"):
        prepare(scenario)
    prepare(_scenario(method="federated", federated={"clients_per_round": 3}))

"""Shared fixtures: synthetic windows and two small trained float models, folded.

Synthetic HAR data (fedhar.data.synthetic, 4 users, 6 classes, windows of 40 samples at
20 Hz) split in time per user and class: the first 60 % train, the rest tests. Each model is
trained with BatchNorm for a few epochs (learnable, not converged) and folded.

Torch runs on one thread in these tests: its float reductions then add in one order, so each
trained model, and each comparison between trainings, is the same whatever the core count
(with two threads, QAT at 4 bits beat PTQ by a margin that flipped sign). CPUs with other
vector kernels (AVX-512, AVX2) still train other weights, so a comparison between trainings
must hold by a margin wider than that difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from fedhar.data import synthetic
from fedhar.data.preprocess import Normalizer, make_windows
from fedhar.data.splits import split_chronological
from fedhar.models.quantized import fold_spec, fold_state
from fedhar.models.spec import ModelSpec, cnn3, daghero_cnn
from fedhar.studies.pretrain import PretrainOptions, fit


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():  # noqa: ANN201
    """Torch on one thread for the session, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@dataclass(frozen=True)
class Windows:
    """Normalized train/test windows ``[N, 3, 40]`` float32 and labels ``[N]`` int64."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@dataclass(frozen=True)
class Trained:
    """A trained float model (with BatchNorm) and its folded form."""

    spec: ModelSpec
    state: dict[str, np.ndarray]
    folded: ModelSpec
    folded_state: dict[str, np.ndarray]

    def bits(self, w_bits: int, a_bits: int) -> dict[str, tuple[int, int]]:
        """The same ``(w_bits, a_bits)`` for every conv/dense layer."""
        return {n: (w_bits, a_bits) for n in linears(self.folded)}


def linears(spec: ModelSpec) -> list[str]:
    return [layer.name for layer in spec.layers if layer.kind in ("conv1d", "dense")]


@pytest.fixture(scope="session")
def windows() -> tuple[Windows, Normalizer, np.ndarray, np.ndarray]:
    ds = synthetic.generate(n_users=4, seconds_per_activity=30, seed=1)
    train, test = split_chronological(make_windows(ds, 40, 20), 0.6)
    norm = Normalizer().fit(train.x)
    w = Windows(
        norm.transform(train.x).astype(np.float32),
        np.asarray(train.y, dtype=np.int64),
        norm.transform(test.x).astype(np.float32),
        np.asarray(test.y, dtype=np.int64),
    )
    return w, norm, train.x, np.asarray(train.y)


def _trained(spec: ModelSpec, windows) -> Trained:  # noqa: ANN001
    _, norm, raw_x, raw_y = windows
    options = PretrainOptions(epochs=6, engine="torch", val_fraction=0.0, seed=0)
    state, _, _ = fit(spec, raw_x, raw_y, options, norm)
    arrays = {k: v.numpy().astype(np.float32) for k, v in state.items()}
    return Trained(spec, arrays, fold_spec(spec), fold_state(spec, arrays))


@pytest.fixture(scope="session")
def data(windows) -> Windows:  # noqa: ANN001
    return windows[0]


@pytest.fixture(scope="session")
def daghero(windows) -> Trained:  # noqa: ANN001
    return _trained(daghero_cnn(3, 40, 6, channels=(8, 16, 16), kernels=(7, 7, 7)), windows)


@pytest.fixture(scope="session")
def cnn(windows) -> Trained:  # noqa: ANN001
    return _trained(cnn3(3, 40, 6), windows)

"""The cascade baseline: the score-margin policy over two separate static models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedhar.adaptive.export import export_f32
from fedhar.adaptive.policy import AdaptiveClassifier
from fedhar.adaptive.slim import build_slim, predict_logits, train
from fedhar.mcu import load_profile
from fedhar.metrics import score
from fedhar.models.spec import daghero_cnn
from fedhar.ondevice.slim_infer import SlimNetC
from fedhar.schema.adaptive import AdaptiveConfig
from fedhar.studies.adaptive import cascade_of


def toy_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``x [n, 3, 32]`` windows whose class (0..3) shifts channel 0, and their labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(size=(n, 3, 32)).astype(np.float32)
    x[:, 0, :] += 1.5 * y[:, None]
    return x, y


def test_cascade_decisions_and_cycles_match_a_direct_computation() -> None:
    torch.set_num_threads(1)
    x, y = toy_data(96, seed=3)
    nets = []
    for channels in ((2, 4, 4), (8, 8, 16)):
        spec = daghero_cnn(3, 32, 4, channels=channels, kernels=(7, 7, 7))
        net = build_slim(spec, (1.0,), seed=0)
        train(net, x, y, epochs=2, batch_size=32, lr=0.01, seed=0)
        nets.append(net)
    profile = load_profile("pulpissimo_quentin")
    cfg = AdaptiveConfig(thresholds=5, th_min=0.01)
    modes, _, _, _ = cascade_of(nets[0], nets[1], (x, y), profile, cfg, 4, x[:32])
    # By hand: softmax margin of the small model, its answer where it exceeds Th, else the
    # large model's; cost per window from the C library's counted operations of that run.
    p = torch.softmax(torch.from_numpy(predict_logits(nets[0], x, 1.0)), dim=1).numpy()
    top2 = np.sort(p, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    pred_s = p.argmax(axis=1)
    pred_l = predict_logits(nets[1], x, 1.0).argmax(axis=1)
    clf = AdaptiveClassifier(SlimNetC(export_f32(nets[0], 1.0)), SlimNetC(export_f32(nets[1], 1.0)))
    assert len(modes) == 5
    for m in modes:
        easy = margin > m.th
        pred = np.where(easy, pred_s, pred_l)
        assert m.p_easy == pytest.approx(easy.mean())
        assert m.f1 == pytest.approx(score(y, pred, 4).macro_f1)
        c_pred, c_easy, ops = clf.classify_counted(x, m.th)
        assert np.array_equal(c_easy, easy) and np.array_equal(c_pred, pred)
        assert m.cycles_avg == pytest.approx(profile.cycles(ops) / len(x), rel=1e-9)
    assert modes[0].p_easy > modes[-1].p_easy  # a higher Th sends more windows on

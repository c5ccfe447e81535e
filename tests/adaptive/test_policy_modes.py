"""Score-margin policy, eq. (3) expected cost, Pareto marks and the modes table."""

from __future__ import annotations

import numpy as np
import pytest

from fedhar.adaptive.artifact import load_classifier, save_model
from fedhar.adaptive.export import export_f32
from fedhar.adaptive.modes import (
    MODE_COLUMNS,
    ExpectedCost,
    collect_outputs,
    expected_cost,
    hypervolume,
    pareto_mask,
    policy_ops,
    sweep,
    thresholds,
)
from fedhar.adaptive.policy import AdaptiveClassifier, decide
from fedhar.data.preprocess import Normalizer
from fedhar.mcu import Cost, load_profile
from fedhar.ondevice.slim_infer import SlimNetC, score_margin


def test_score_margin_hand_cases() -> None:
    logits = np.array([[np.log(3.0), 0.0], [0.0, 0.0]], np.float32)  # p = 3/4, 1/4; 1/2, 1/2
    margin, argmax, easy, _ = score_margin(logits, 0.4)
    np.testing.assert_allclose(margin, [0.5, 0.0], atol=1e-6)
    assert argmax.tolist() == [0, 0] and easy.tolist() == [True, False]
    three = np.array([[0.0, np.log(4.0), np.log(2.0)]], np.float32)  # p = 1/7, 4/7, 2/7
    margin, argmax, easy, ops = score_margin(three, 2 / 7)
    np.testing.assert_allclose(margin, [2 / 7], atol=1e-6)
    assert argmax.tolist() == [1] and easy.tolist() == [False]
    assert (ops.exps, ops.divs, ops.cmps, ops.adds) == (3, 1, 4, 6)
    assert policy_ops(3) == ops


def test_decide_uses_strict_threshold() -> None:
    pred, easy = decide(np.array([0.2, 0.5, 0.9]), np.array([1, 1, 1]), np.array([2, 2, 2]), 0.5)
    assert pred.tolist() == [2, 2, 1] and easy.tolist() == [False, False, True]


def test_expected_cost_formula() -> None:
    c = ExpectedCost(Cost(100, 1e-6, 1e-9), Cost(10, 1e-7, 1e-10), Cost(1000, 1e-5, 1e-8))
    at = c.at(0.75)
    assert at.cycles == pytest.approx(100 + 10 + 0.25 * 1000)
    assert at.joules == pytest.approx(1e-9 + 1e-10 + 0.25 * 1e-8)
    assert c.at(1.0).cycles == 110 and c.at(0.0).cycles == 1110


def test_pareto_marks() -> None:
    score = np.array([0.5, 0.7, 0.6, 0.7, 0.9, 0.9])
    cost = np.array([1.0, 2.0, 3.0, 2.0, 5.0, 4.0])
    assert pareto_mask(score, cost).tolist() == [True, True, False, False, False, True]
    assert hypervolume(np.array([0.5, 0.7]), np.array([1.0, 2.0]), 0.4, 3.0) == pytest.approx(
        0.1 * 1.0 + 0.3 * 1.0
    )


def test_thresholds_log_spaced() -> None:
    th = thresholds(100, 1e-3)
    assert th.shape == (100,) and th[0] == pytest.approx(1e-3) and th[-1] == 1.0
    assert np.allclose(np.diff(np.log(th)), np.log(1e3) / 99)


def test_modes_table_and_classifier(trained) -> None:
    net, x, y = trained
    clf = AdaptiveClassifier(SlimNetC(export_f32(net, 0.25)), SlimNetC(export_f32(net, 1.0)))
    costs = expected_cost(clf.small, clf.large, load_profile("pulpissimo_quentin"))
    assert costs.small.cycles < costs.large.cycles
    out = collect_outputs(clf.small, clf.large, x)
    modes = sweep(y, out, costs, thresholds(6, 1e-2), 4, out)
    assert len(modes) == 6 and tuple(modes[0].row()) == MODE_COLUMNS
    assert modes[-1].p_easy == 0.0
    assert modes[-1].cycles_avg == pytest.approx(
        costs.small.cycles + costs.policy.cycles + costs.large.cycles
    )
    assert any(m.pareto for m in modes)
    for m in modes:
        pred, easy, ops = clf.classify_counted(x, m.th)
        ref, ref_easy = decide(out.margin, out.pred_small, out.pred_large, m.th)
        assert (pred == ref).all() and (easy == ref_easy).all()
        assert easy.mean() == pytest.approx(m.p_easy)
        assert ops.macs > 0


def test_saved_model_reloads_as_the_same_classifier(trained, tmp_path) -> None:
    net, x, _ = trained
    norm = Normalizer().fit(x)
    save_model(net, 0.5, norm, tmp_path / "model.pt")
    clf, norm2 = load_classifier(tmp_path / "model.pt")
    ref = AdaptiveClassifier(SlimNetC(export_f32(net, 0.5)), SlimNetC(export_f32(net, 1.0)))
    xn = norm2.transform(x)
    for th in (0.0, 0.3, 1.0):
        pred, easy = clf.classify(xn, th)
        ref_pred, ref_easy = ref.classify(norm.transform(x), th)
        assert (pred == ref_pred).all() and (easy == ref_easy).all()

"""Calibration of the STM32L496ZG profile against craighero2023 Table III: real checks."""

from __future__ import annotations

import pytest

from fedhar.mcu import load_profile
from fedhar.models.spec import cnn3
from fedhar.ondevice.calibration import (
    FIT_INPUT_LENGTH,
    MEMORY_TOLERANCE,
    TABLE_III_KB,
    TABLE_III_SECONDS,
    TIME_TOLERANCE,
    CalibrationReport,
    calibrate,
    paper_configuration,
    paper_rule_bytes,
)


@pytest.fixture(scope="module")
def report() -> CalibrationReport:
    return calibrate(load_profile("stm32l496zg"))


def test_ten_time_figures_within_target(report: CalibrationReport) -> None:
    assert len(report.time) == 10
    assert {(f.input_length, f.mode) for f in report.time} == set(TABLE_III_SECONDS)
    fitted = [(f.input_length, f.mode) for f in report.time if f.fitted]
    assert fitted == [(FIT_INPUT_LENGTH, "tl"), (FIT_INPUT_LENGTH, "full")]
    for f in report.time:
        assert f.paper_s == TABLE_III_SECONDS[(f.input_length, f.mode)]
        assert f.rel_error == pytest.approx((f.predicted_s - f.paper_s) / f.paper_s)
        assert abs(f.rel_error) <= TIME_TOLERANCE, (f.input_length, f.mode, f.rel_error)
    assert report.max_time_error <= TIME_TOLERANCE


def test_profile_holds_the_calibrated_coefficient(report: CalibrationReport) -> None:
    """The YAML's calibrated value is what the calibration produces today (4 significant
    digits): re-run ``python -m fedhar.ondevice.calibration`` and update the YAML if this fails."""
    profile = load_profile("stm32l496zg")
    for group in report.free_groups:
        for k in group:
            assert getattr(profile.costs, k) == pytest.approx(report.coefficients[k], rel=1e-4)
            assert profile.source(f"cycles_float32.{k}").basis == "calibrated"
            assert "Table III row (60, 3)" in profile.source(f"cycles_float32.{k}").source


def test_shipped_profile_predicts_table_iii(report: CalibrationReport) -> None:
    """The YAML profile as shipped (rounded coefficient), pricing the estimator's counts of
    the paper's configuration, meets the time target on all 10 figures."""
    profile = load_profile("stm32l496zg")
    for f in report.time:
        ops = paper_configuration(f.input_length, f.mode).ops
        seconds = profile.seconds(ops)
        assert seconds == pytest.approx(f.predicted_s, rel=1e-4)
        assert abs(seconds - f.paper_s) / f.paper_s <= TIME_TOLERANCE


def test_fit_is_robust_to_the_choice_of_row(report: CalibrationReport) -> None:
    assert set(report.sensitivity) == {20, 40, 60, 80, 100}
    assert all(err <= TIME_TOLERANCE for err in report.sensitivity.values())


def test_memory_paper_rule_reproduces_table_iii(report: CalibrationReport) -> None:
    assert len(report.memory) == 10
    for f in report.memory:
        assert f.paper_bytes == round(TABLE_III_KB[(f.input_length, f.mode)] * 1024)
        assert abs(f.rule_error) <= MEMORY_TOLERANCE, (f.input_length, f.mode, f.rule_error)


def test_library_never_needs_more_than_the_paper(report: CalibrationReport) -> None:
    for f in report.memory:
        assert f.library_bytes == f.by_category["total"]
        assert f.by_category["optimizer"] == 0 and f.by_category["stored_samples"] == 0
        assert f.library_bytes <= f.paper_bytes, (f.input_length, f.mode)
        assert f.library_error == pytest.approx((f.library_bytes - f.paper_bytes) / f.paper_bytes)


def test_paper_rule_by_hand() -> None:
    """(100, 3) TL: 10084 params + 3556 trained grads + 15798 layer floats + 106 errors."""
    spec = cnn3(3, 100, 6)
    assert paper_rule_bytes(spec, "tl") == 4 * (10084 + 3556 + 15798 + 106)
    assert paper_rule_bytes(spec, "tl") / 1024 == pytest.approx(115.4, abs=0.05)


def test_rejected_alternatives_are_unphysical(report: CalibrationReport) -> None:
    """Every two-coefficient alternative needs a negative cost or a cost per addition far
    above any FPU instruction (Cortex-M4 VDIV.F32, the slowest, takes 14 cycles)."""
    assert len(report.alternatives) == 4
    for alt in report.alternatives:
        assert min(alt.coefficients) < 0 or max(alt.coefficients[1:]) > 1000, alt

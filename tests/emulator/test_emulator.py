"""The C library on an emulated Cortex-M4F (QEMU mps2-an386): it agrees with the host build,
and its executed instructions check the instruction model of fedhar.ondevice.instructions.

The tests need arm-none-eabi-gcc, newlib and qemu-system-arm (.ci/run installs them); without
them they are skipped, except under CI=true, where a missing tool is a failure.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fedhar.adaptive.export import export_f32
from fedhar.adaptive.quant import quantize, quantize_weights
from fedhar.adaptive.slim import build_slim
from fedhar.mcu.profile import load_profile
from fedhar.models.spec import build_spec, daghero_cnn
from fedhar.ondevice import emulator
from fedhar.ondevice.ctrain import Trainer
from fedhar.ondevice.emulated import GRID_INPUT_LENGTHS, by_phase, emulate_row
from fedhar.ondevice.estimator import trainable_flags
from fedhar.ondevice.instructions import TARGETS, predict, slim_regions, totals
from fedhar.ondevice.isa import CLASSES
from fedhar.ondevice.slim_infer import SlimNetC

MISSING = emulator.missing_tools()
if MISSING and os.environ.get("CI") == "true":
    raise RuntimeError(f"CI must install the emulator tools; missing: {MISSING}")
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"emulator tools missing: {MISSING}")

TL = {"cnn3": 2, "daghero": 1}


@pytest.fixture(scope="module")
def build() -> emulator.Build:
    return emulator.build()  # make with -Wall -Wextra -Werror: a warning fails here


@pytest.mark.parametrize("model", ["cnn3", "daghero"])
@pytest.mark.parametrize("mode", ["tl", "full"])
def test_training_on_the_emulator_matches_the_host(build, model: str, mode: str) -> None:
    spec = build_spec(model, 3, 20, 6)
    state, x, y = emulator.random_inputs(spec, 8, seed=3)
    flags = trainable_flags(spec, mode, TL[model])
    run = emulator.run_training(spec, state, x, y, flags, build, steps=3, lr=0.05)
    host = Trainer(spec, mode=mode, tl_layers=TL[model], lr=0.05)
    host.load_state_dict(state)
    losses = [host.train_batch(x, y) for _ in range(3)]
    assert run.status == 0
    # The host kernels sum in vector tiles (x86-64) and the M4 build in plain loops, so
    # results differ by float32 rounding only: measured at most 2e-7 (losses) and 5e-8
    # (parameters, logits) here; the tolerance leaves a decade of margin.
    np.testing.assert_allclose(run.losses, losses, rtol=2e-6, atol=0)
    np.testing.assert_allclose(run.logits, host.logits(x), rtol=0, atol=1e-5)
    for key, value in host.state_dict().items():
        np.testing.assert_allclose(run.params[key], value, rtol=0, atol=1e-6, err_msg=key)
    # The operation counters describe the reference loop nest, so they are equal on both.
    assert run.counts == host.counts()
    assert run.memory_peak == host.memory()["per_layer"]


def test_predicted_instructions_agree_with_execution_on_the_grid(build) -> None:
    """Every (model, input, mode) row of Table III, one batch of 32: each instruction class,
    the taken branches and the total within ±3% of execution, and the executed
    multiply-accumulates of the kernels equal the counted MACs exactly."""
    timings = load_profile("stm32l496zg_fedhar").instruction_timings
    worst = 0.0
    for model in ("cnn3", "daghero"):
        for t in GRID_INPUT_LENGTHS:
            for mode in ("tl", "full"):
                spec = build_spec(model, 3, t, 6)
                row = emulate_row(spec, mode, 32, TL[model], timings=timings, b=build)
                errors = row.relative_errors()
                assert set(errors) == {*TARGETS, "total"}
                bad = {k: v for k, v in errors.items() if abs(v) > 0.03}
                assert not bad, f"{model} {t}x3 {mode}: {bad}"
                assert row.executed_macs == row.counted_macs, f"{model} {t}x3 {mode}"
                # Per phase too; the loss (0.1% of a step) runs expf and logf, whose paths
                # depend on the values, so it is held to 0.1% of the step instead.
                for phase, fig in by_phase(row).items():
                    err = abs(fig["predicted"] - fig["executed"])
                    bound = 0.001 * row.executed_total if phase == "loss" else 0.03 * fig[
                        "executed"]  # fmt: skip
                    assert err <= bound, f"{model} {t}x3 {mode} {phase}: {fig}"
                worst = max(worst, *(abs(v) for v in errors.values()))
                per_mac = row.cycles / row.counted_macs
                assert 8 < per_mac < 16, f"{model} {t}x3 {mode}: {per_mac} cycles per MAC"
    assert worst > 0  # the comparison is real: the prediction is fitted, not copied


@pytest.mark.parametrize("width", [0.25, 0.5, 1.0])
def test_sliced_inference_on_the_emulator_matches_the_host(build, width: float) -> None:
    spec = daghero_cnn(3, 32, 4, channels=(8, 16, 16), kernels=(7, 7, 15), hidden=8)
    net = build_slim(spec, (0.25, 0.5, 1.0), seed=1)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 3, 32)).astype(np.float32)
    f32 = export_f32(net, width)
    s8 = quantize(net, width, x, quantize_weights(net))
    for model, atol in ((f32, 1e-5), (s8, 0.0)):
        run = emulator.run_slim(model, x, th=0.3, b=build)
        logits, ops = SlimNetC(model).forward(x)
        assert run.status == 0
        np.testing.assert_allclose(run.logits, logits, rtol=1e-6 if atol else 0, atol=atol)
        assert run.ops == ops
        # The instruction model predicts the sliced kernels too: the total within 1%, each
        # class within 3% or, for a class of a few dozen instructions, within 0.1% of the
        # total: the score-margin policy's expf takes data-dependent paths (a fast one on the
        # tied logits of an int8 model), which no shape can predict.
        executed = run.execution.targets([r for r in run.execution.keys if r != 0])
        predicted = totals(predict(slim_regions(model, x.shape[0])))
        total = sum(executed[c] for c in CLASSES)
        assert abs(sum(predicted[c] for c in CLASSES) - total) <= 0.01 * total
        for target in TARGETS:
            bound = max(0.03 * executed[target], 0.001 * total)
            assert abs(predicted[target] - executed[target]) <= bound, target


def test_a_corrupt_job_is_an_error_not_a_crash(build) -> None:
    with pytest.raises(emulator.EmulatorError, match="exited with 4"):
        emulator.execute(build, b"FHEM\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x05")

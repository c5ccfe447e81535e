"""``fedhar estimate``: JSON shape, exit code 2 on bad input, and agreement with a real run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from fedhar.commands import estimate
from fedhar.mcu import load_profile
from fedhar.mcu.profile import PROFILE_DIR
from fedhar.models.spec import cnn3
from fedhar.ondevice.ctrain import PHASES, Trainer

ROW_KEYS = {
    "input", "mode", "memory_bytes", "arena_bytes", "fits", "cycles_per_batch", "seconds_per_batch",
    "energy_j_per_batch", "ops_per_batch", "ops_per_phase",
}  # fmt: skip
CATEGORIES = {
    "parameters", "gradients", "optimizer", "activations", "deltas", "input",
    "stored_samples", "scratch", "total",
}  # fmt: skip
FIELDS = ("macs", "adds", "muls", "divs", "exps", "cmps", "bytes_moved", "bitops")


def main(argv: list[str]) -> int:
    """``fedhar <argv>`` with only the estimate command registered (as :func:`fedhar.cli.main`
    does), so that other commands' imports do not matter here."""
    parser = argparse.ArgumentParser(prog="fedhar")
    estimate.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["estimate", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_four_rows_cartesian_product(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(
        capsys, "--model", "cnn3", "--input", "20x3", "--input", "100x3",
        "--mode", "tl", "--mode", "full", "--mcu", "stm32l496",
    )  # fmt: skip
    rows = out["rows"]
    assert [(r["input"], r["mode"]) for r in rows] == [
        ("20x3", "tl"), ("20x3", "full"), ("100x3", "tl"), ("100x3", "full"),
    ]  # fmt: skip
    profile = load_profile("stm32l496zg")
    assert out["mcu"]["name"] == "stm32l496zg"
    for r in rows:
        assert ROW_KEYS <= set(r)
        assert set(r["memory_bytes"]) == CATEGORIES
        mem = r["memory_bytes"]
        assert mem["total"] == sum(v for k, v in mem.items() if k != "total")
        assert mem["total"] < r["arena_bytes"] < mem["total"] + 16384
        assert r["fits"] is (r["arena_bytes"] <= profile.sram_bytes)
        ops = r["ops_per_batch"]
        for f in FIELDS:
            assert ops[f] == sum(phase[f] for phase in r["ops_per_phase"].values())
        assert r["cycles_per_batch"] == pytest.approx(profile.cycles(_Ops(**ops)))
        assert r["seconds_per_batch"] == pytest.approx(r["cycles_per_batch"] / 80e6)
        assert r["energy_j_per_batch"] == pytest.approx(
            r["seconds_per_batch"] * profile.active_watts
        )
    # Full costs more than TL at the same input, and a longer input costs more.
    assert rows[1]["cycles_per_batch"] > rows[0]["cycles_per_batch"]
    assert rows[3]["memory_bytes"]["total"] > rows[1]["memory_bytes"]["total"]


class _Ops:
    def __init__(self, **counts: int) -> None:
        for k, v in counts.items():
            setattr(self, k, v)


def test_text_output_has_every_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "--input", "20x3", "--mode", "tl", "--mcu", "esp32"]) == 0
    text = capsys.readouterr().out
    for heading in ("Memory (KiB", "Operations per batch", "Time and energy per batch"):
        assert heading in text
    assert "20x3" in text and "esp32" in text


@pytest.mark.parametrize(
    "argv, field",
    [
        (["--input", "100by3"], "--input '100by3'"),
        (["--input", "0x3"], "--input '0x3'"),
        (["--input", "4x3"], "--input 4x3 is too short for model 'cnn3'"),
        (["--mode", "half"], "--mode 'half'"),
        (["--mcu", "stm32f4"], "unknown MCU profile 'stm32f4'"),
        (["--model", "resnet"], "--model 'resnet'"),
        (["--batch", "0"], "--batch 0"),
        (["--batch", "many"], "--batch: expected an integer"),
        (["--momentum", "1.5"], "--momentum 1.5"),
        (["--classes", "1"], "--classes 1"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], field: str
) -> None:
    try:
        code = main(["estimate", *argv])
    except SystemExit as exc:  # argparse-level errors exit from inside the parser
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("fedhar estimate: error: ")
    assert field in err


def test_invalid_profile_file_exits_2_with_one_line_per_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = yaml.safe_load((PROFILE_DIR / "esp32.yaml").read_text())
    data.update(name="board", clock=1)
    data["supply_v"]["basis"] = "folklore"
    path = tmp_path / "board.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["estimate", "--mcu", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"fedhar estimate: error: {path}: supply_v.basis: expected one of 'datasheet', 'paper', "
        "'derived', 'calibrated', 'assumed', got 'folklore'",
        f"fedhar estimate: error: {path}: clock: unknown key, expected one of: name, aliases, "
        "core, description, clock_hz, supply_v, sram_bytes, flash_bytes, active_power_w, "
        "run_current_ua_per_mhz, sleep_power_w, sleep_current_ua, cycles_float32, "
        "cycles_instruction, notes",
    ]


@pytest.mark.parametrize("mode, momentum", [("tl", "0"), ("full", "0.9")])
def test_cli_equals_a_real_run(
    capsys: pytest.CaptureFixture[str], mode: str, momentum: str
) -> None:
    """Memory by category and op counts by phase of the CLI equal what the C library measures
    while training one batch of the same configuration."""
    t, batch = 40, 8
    out = _json(
        capsys, "--input", f"{t}x3", "--mode", mode, "--batch", str(batch),
        "--momentum", momentum, "--mcu", "stm32l552",
    )  # fmt: skip
    row = out["rows"][0]
    spec = cnn3(3, t, 6)
    trainer = Trainer(spec, mode=mode, lr=0.01, momentum=float(momentum))
    rng = np.random.default_rng(1)
    trainer.load_state_dict(
        {k: 0.1 * rng.standard_normal(s).astype(np.float32) for k, s in spec.param_shapes().items()}
    )
    x = rng.standard_normal((batch, 3, t)).astype(np.float32)
    y = rng.integers(0, 6, batch)
    trainer.reset_counts()
    trainer.train_batch(x, y)
    measured = trainer.memory()
    for category, value in row["memory_bytes"].items():
        assert value == measured[category], category
    assert row["arena_bytes"] == measured["total"] + measured["control_bytes"]
    counts = trainer.counts()
    for phase in PHASES:
        for f in FIELDS:
            total = sum(getattr(layer[phase], f) for layer in counts.values())
            assert row["ops_per_phase"][phase][f] == total, (phase, f)


def test_calibration_report_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    out = _json(capsys, "--calibration")
    assert out["source"] == "craighero2023 Table III"
    assert len(out["time"]) == 10 and len(out["memory"]) == 10
    assert sum(f["fitted"] for f in out["time"]) == 2
    assert out["max_time_error"] <= out["time_tolerance"]
    assert main(["estimate", "--calibration"]) == 0
    text = capsys.readouterr().out
    assert "Time per batch (s)" in text and "fitted" in text and "paper rule" in text

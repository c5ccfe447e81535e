"""``fedhar export``: a user's personalized model as firmware that builds for QEMU and for a
NUCLEO-L496ZG, and whose logits on the emulator are the report's model's."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fedhar.cli import main
from fedhar.engines.replay import personalized_model
from fedhar.metrics import score
from fedhar.ondevice import emulator
from fedhar.ondevice.ctrain import Trainer

REPO = Path(__file__).resolve().parents[2]
MISSING = emulator.missing_tools()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"emulator tools missing: {MISSING}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The quickstart run, and the same with two rounds of FedAvg (which keeps its updates)."""
    base = tmp_path_factory.mktemp("export")
    mp = pytest.MonkeyPatch()
    mp.setenv("FEDHAR_CACHE_DIR", str(base / "cache"))
    mp.setenv("CI", "1")
    quick = (REPO / "scenarios" / "quickstart.yaml").read_text()
    fedavg = base / "fedavg.yaml"
    fedavg.write_text(
        quick.replace("modes: [none, tl, full, no_pretrain]", "modes: [none, tl, full]")
        + "federation:\n  aggregation: fedavg\n  rounds: 2\n"
    )
    out = {"plain": base / "plain", "fedavg": base / "fedavg"}
    assert (
        main(["run", str(REPO / "scenarios" / "quickstart.yaml"), "--out", str(out["plain"])]) == 0
    )
    assert main(["run", str(fedavg), "--out", str(out["fedavg"])]) == 0
    yield out
    mp.undo()


def _firmware_results(directory: Path, n_classes: int) -> dict[str, object]:
    proc = subprocess.run(["make", "-s", "-C", str(directory), "qemu", "run"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    raw = (directory / "fh_firmware_out.bin").read_bytes()
    k = n_classes
    fields = struct.unpack(f"<2i{k}ff{k}fi", raw)
    return {
        "exit": proc.returncode,
        "status": fields[0],
        "predicted": fields[1],
        "logits": np.array(fields[2 : 2 + k], np.float32),
        "loss": fields[2 + k],
        "logits_after": np.array(fields[3 + k : 3 + 2 * k], np.float32),
        "matches_host": fields[3 + 2 * k],
    }


@pytest.mark.parametrize(("run", "user", "mode"), [("plain", "2", "full"), ("plain", "4", "tl"),
                                                   ("fedavg", "3", "full")])  # fmt: skip
def test_exported_firmware_runs_the_reports_model(runs, tmp_path, run, user, mode) -> None:
    out = tmp_path / "fw"
    assert main(["export", str(runs[run]), "--user", user, "--mode", mode, "--out", str(out)]) == 0
    report = json.loads((runs[run] / "report.json").read_text())
    row = next(c for c in report["clients"] if c["user"] == user)
    spec, state, scenario, data = personalized_model(runs[run], user, mode, row, None)
    # The exported state is the model the report scored as f1_deployed.
    host = Trainer(spec, mode="tl", tl_layers=scenario.personalization.tl_layers,
                   lr=scenario.personalization.lr)  # fmt: skip
    host.load_state_dict(state)
    pred = np.argmax(host.logits(data.x_test), axis=1)
    f1 = score(data.y_test, pred, spec.n_classes).macro_f1
    assert round(f1, 6) == row["modes"][mode]["f1_deployed"]

    got = _firmware_results(out, spec.n_classes)
    assert got["exit"] == 0 and got["status"] == 0 and got["matches_host"] == 1
    x, y = data.x_test[:1], data.y_test[:1]
    np.testing.assert_allclose(got["logits"], host.logits(x)[0], rtol=0, atol=1e-5)
    assert got["predicted"] == int(np.argmax(host.logits(x)[0]))
    loss = host.train_batch(x, y)
    assert got["loss"] == pytest.approx(loss, rel=2e-6)
    np.testing.assert_allclose(got["logits_after"], host.logits(x)[0], rtol=0, atol=1e-5)
    # The board image builds too (flash and SRAM1 of the STM32L496ZG).
    subprocess.run(["make", "-s", "-C", str(out), "nucleo"], check=True, capture_output=True)
    assert (out / "fedhar_nucleo.bin").stat().st_size < 1024 * 1024


def test_export_refuses_bad_input_in_one_line(runs, tmp_path, capsys) -> None:
    out = tmp_path / "fw"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["export", str(runs["plain"]), "--user", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"fedhar export: error: --out {out}: not empty (add --force to replace it)"]
    assert (out / "mine.txt").read_text() == "keep me"
    assert (
        main(["export", str(runs["plain"]), "--user", "nobody", "--out", str(tmp_path / "x")]) == 2
    )
    assert "--user 'nobody': not in" in capsys.readouterr().err
    assert main(["export", str(runs["plain"]), "--user", "2", "--mode", "none",
                 "--out", str(tmp_path / "y")]) == 2  # fmt: skip
    assert "--mode 'none': expected one of full, tl" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert main(["export", str(runs["plain"]), "--user", "2", "--out", str(out), "--force"]) == 0
    # --force replaces the export's own files and never deletes the user's.
    assert (out / "mine.txt").read_text() == "keep me" and (out / "fedhar_model.h").exists()
    shutil.rmtree(out)

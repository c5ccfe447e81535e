"""``fedhar compress`` end to end on a small synthetic scenario: every format is trained,
deployed through the C kernels, priced, written, and an interrupted study resumes to the same
files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from fedhar.cli import main
from fedhar.results.journal import Journal
from fedhar.schema.compress import load_compress_scenario
from fedhar.studies.compress import MODELS_FILE, study_identity

SCENARIO = """
name: syn_compress
seed: 0
data: {dataset: synthetic, classes: [walking, jogging, sitting, standing], window: 40,
       stride: 20, options: {n_users: 6, seconds_per_activity: 20}}
model: {name: daghero, options: {pool: 2}}
compress:
  split: random
  grid: {channels: [[4, 8, 8]], kernels: [7]}
  bits: [8, 2]
  float_epochs: 2
  qat_epochs: 1
  calib_windows: 64
  mixed: {lambdas: [1.0e-4, 1.0e-2], starts: 1, search_epochs: 1, finetune_epochs: 1}
  profiles: [pulpissimo_quentin, esp32]
"""
FORMATS = {"float32", "dynamic", "full_int8", "pact8", "pact2", "mixed"}


def _run(tmp_path: Path, out: Path, *extra: str) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    assert main(["compress", str(scenario), "--out", str(out), *extra]) == 0


@pytest.mark.slow
def test_compress_writes_every_format_and_resumes_to_the_same_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _run(tmp_path, out)
    with open(out / "models.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["format"] for r in rows} == FORMATS
    assert len(rows) == 7  # 3 post-training + 2 QAT + 2 mixed (one per λ)
    by_format = {r["format"]: r for r in rows}
    # Packed weights: 2-bit models are smaller than 8-bit ones, which are smaller than float.
    mem = {f: int(by_format[f]["memory_bytes"]) for f in ("float32", "pact8", "pact2")}
    assert mem["pact2"] < mem["pact8"] < mem["float32"]
    for r in rows:
        assert 0.0 <= float(r["f1_test"]) <= 1.0
        assert float(r["cycles_esp32"]) > 0 and float(r["energy_uj_pulpissimo_quentin"]) > 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["best_f1_by_format"]) == FORMATS
    assert "mixed_memory_ratio_at_best_8bit_f1" in summary
    assert set(summary["ptq"]["C4-8-8 K7"]) == {"float32", "dynamic", "full_int8", "pact8"}
    assert summary["front_memory"] and summary["front_cycles"]
    bits = json.loads((out / "bits.json").read_text())["bits"]
    assert set(bits) == {"conv1", "conv2", "conv3", "fc"}
    for name in ("fig8_memory.png", "fig8_memory.svg", "fig10_cycles.png", "report.html"):
        assert (out / name).stat().st_size > 0
    first = {n: (out / n).read_bytes() for n in ("models.csv", "summary.json", "bits.json")}

    # An interrupted study: keep the first three models of the journal, resume.
    lines = (out / MODELS_FILE).read_text().splitlines(keepends=True)
    (out / MODELS_FILE).write_text("".join(lines[:4]))
    _run(tmp_path, out, "--resume")
    again = {n: (out / n).read_bytes() for n in first}
    assert again == first

    # Nothing left to do: a second resume appends no model.
    before = (out / MODELS_FILE).read_bytes()
    _run(tmp_path, out, "--resume")
    assert (out / MODELS_FILE).read_bytes() == before


def test_a_journal_of_another_scenario_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    sc, cfg = load_compress_scenario(scenario)
    other = study_identity(sc, cfg) | {"scenario": "another"}
    out = tmp_path / "out"
    out.mkdir()
    Journal(out / MODELS_FILE, other, resume=False)
    assert main(["compress", str(scenario), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and MODELS_FILE in err[0]


def test_bad_compress_section_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: x\ndata: {dataset: synthetic}\ncompress: {bits: [3]}\n")
    assert main(["compress", str(scenario), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "compress.bits" in err and "3" in err and "Traceback" not in err


def test_the_cycles_cost_of_the_search_is_what_the_kernels_count() -> None:
    """EdMIPS's cycles term: at a uniform assignment its layer costs sum to the cycles the C
    kernels count for the whole network (pools included), priced on the profile."""
    import numpy as np

    from fedhar.mcu import load_profile
    from fedhar.models.quantized import fold_spec, fold_state, quantize
    from fedhar.models.spec import daghero_cnn
    from fedhar.models.torch_model import build_torch
    from fedhar.ondevice.qnet_estimate import estimate_qnet
    from fedhar.ondevice.qnet_infer import QNetC
    from fedhar.studies.compress import cycle_cost

    spec = daghero_cnn(3, 40, 4, channels=(4, 8, 8), kernels=(7, 7, 7))
    state = {k: v.detach().numpy() for k, v in build_torch(spec, seed=0).spec_state_dict().items()}
    folded, folded_state = fold_spec(spec), fold_state(spec, state)
    profile = load_profile("stm32l496zg_fedhar")
    cost = cycle_cost(folded, folded_state, profile)
    names = ["conv1", "conv2", "conv3", "fc"]
    for w, a in ((8, 8), (4, 2), (1, 1)):
        net = quantize(
            folded, folded_state, dict.fromkeys(names, (w, a)), dict.fromkeys(names, 0.1), 0.05
        )
        x = np.zeros((3, 3, 40), np.int8)
        _, counted = QNetC(net).logits(x)
        total = sum(cost(n, w, a) for n in names)
        assert total == pytest.approx(profile.cycles(estimate_qnet(net)[0]), rel=1e-12)
        assert total * 3 == pytest.approx(profile.cycles(counted), rel=1e-12)
    assert cost("conv2", 1, 1) < cost("conv2", 8, 8)  # binary layers count fewer cycles

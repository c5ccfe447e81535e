"""``fedhar compress`` with a ``prune:`` section on tiny synthetic data: the search sweep, the
base, the fine-tuned models, the deployment check, int8 QAT, the channel-scaling rows, the
selection rule, and an interrupted study resuming to the same ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fedhar.cli import main
from fedhar.compress.nas_baselines import inference_peak_bytes
from fedhar.mcu import load_profile
from fedhar.models.baselines import (
    ConvLayer,
    build_baseline,
    build_staged,
    count_macs,
    count_params,
)
from fedhar.models.spec import ModelSpec
from fedhar.ondevice.estimate import estimate_row
from fedhar.ondevice.estimator import estimate_inference
from fedhar.results.journal import read_rows
from fedhar.schema.compress import PruneConfig
from fedhar.studies.prune import PRUNE_FILE, select

SCENARIO = """
name: syn_prune
seed: 0
data: {dataset: synthetic, classes: [walking, jogging, sitting, standing], window: 32,
       stride: 16, options: {n_users: 5, seconds_per_activity: 12}}
compress:
  split: users
  test_users: ["2"]
  val_fraction: 0.25
  prune:
    filters: 6
    n_stride2: 2
    betas: [[0.0, 0.0], [3.0, 1.0]]
    memory_budget_bytes: 30000
    warmup_epochs: 1
    search_epochs: 2
    search_batch_size: 32
    lr: 0.01
    lr_gates: 0.1
    finetune_epochs: 2
    qat_epochs: 1
    channel_sets: [acc]
"""


def _run(tmp_path: Path, out: Path, text: str = SCENARIO, *extra: str) -> int:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(text)
    return main(["compress", str(scenario), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("prune")
    out = tmp / "out"
    assert _run(tmp, out) == 0
    return tmp, out


def test_summary_holds_the_base_the_selected_model_and_the_sweep(study) -> None:  # noqa: ANN001
    _, out = study
    summ = json.loads((out / "summary.json").read_text())
    cnn = summ["bases"]["cnn"]
    assert {"params", "macs", "f1"} <= set(cnn)
    chosen = cnn["selected"]
    for key in ("params", "macs", "f1", "peak_memory_bytes", "kept_channels", "mac_reduction",
                "f1_drop"):  # fmt: skip
        assert key in chosen
    assert set(chosen["kept_channels"]) <= {"acc_x", "acc_y", "acc_z"}
    assert chosen["mac_reduction"] == pytest.approx(cnn["macs"] / chosen["macs"])
    assert chosen["f1_drop"] == pytest.approx(cnn["f1"] - chosen["f1"])
    assert [r["beta"] for r in cnn["swept"]] == [[0.0, 0.0], [3.0, 1.0]]
    # a heavy MAC weight prunes: fewer MACs than the unpruned base and than beta1 = 0
    assert cnn["swept"][1]["macs"] < min(cnn["macs"], cnn["swept"][0]["macs"])
    # the counts are the estimator's, for the spec rebuilt from the journal
    rows = [json.loads(line) for line in (out / PRUNE_FILE).read_text().splitlines()[1:]]
    models = [r for r in rows if r.get("kind") == "model"]
    assert len(models) == 3  # the base and two searches
    profile = load_profile("stm32l552")
    for r in models:
        spec = ModelSpec.from_dict(r["arch"]["spec"])
        assert r["macs"] == estimate_inference(spec).macs
        full = estimate_row(profile, spec=spec, mode="full").arena_bytes
        assert r["peak_memory_bytes"]["full_training_arena"] == full
        assert r["fits_budget"] == (full <= 30000)
        assert (out / "states" / f"{r['key']}.npz").is_file()
    q = cnn["qat_int8"]
    assert 0.0 <= q["f1"] <= 1.0 and q["inference_bytes"] == q["model_bytes"] + q["scratch_bytes"]
    (scaling,) = summ["channel_scaling"]
    assert scaling["n_channels"] == 3 and scaling["before"]["macs"] == cnn["macs"]
    for name in ("pareto_macs.png", "pareto_macs.svg", "report.html"):
        assert (out / name).stat().st_size > 0
    page = (out / "report.html").read_text()
    assert "Table II" in page and "94.36" in page  # the paper's TinyHAR + SFTNAS F1, typed in


def test_an_interrupted_study_resumes_to_the_same_summary(study) -> None:  # noqa: ANN001
    tmp, out = study
    first = (out / "summary.json").read_bytes()
    lines = (out / PRUNE_FILE).read_text().splitlines(keepends=True)
    kinds = [json.loads(line).get("kind") for line in lines[1:]]
    cut = 1 + kinds.index("warmup") + 1  # the base and the warm-up survive, nothing after
    (out / PRUNE_FILE).write_text("".join(lines[:cut]) + lines[cut][: len(lines[cut]) // 2])
    assert _run(tmp, out, SCENARIO, "--resume") == 0
    assert (out / "summary.json").read_bytes() == first
    before = (out / PRUNE_FILE).read_bytes()
    assert _run(tmp, out, SCENARIO, "--resume") == 0  # nothing left to do
    assert (out / PRUNE_FILE).read_bytes() == before


BASELINES = SCENARIO.replace(
    "[3.0, 1.0]]", "[300.0, 1.0]]"
).replace(  # beta1 per MMAC; these models have ~0.01 MMACs
    "    filters: 6\n",
    "    bases: [tinyhar, dcl]\n    per_base: {tinyhar: {filters: 4, tau_decay: 1.0}, "
    "dcl: {filters: 3, betas: [[300.0, 1.0]]}}\n",
)


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("prune_baselines")
    out = tmp / "out"
    assert _run(tmp, out, BASELINES) == 0
    return tmp, out


def test_dcl_and_tinyhar_are_searched_and_checked_on_their_inference_activations(
    baselines,  # noqa: ANN001
) -> None:
    _, out = baselines
    summ = json.loads((out / "summary.json").read_text())
    assert list(summ["bases"]) == ["tinyhar", "dcl"]
    rows = [json.loads(line) for line in (out / PRUNE_FILE).read_text().splitlines()[1:]]
    for name, filters, betas in (
        ("tinyhar", 4, [[0.0, 0.0], [300.0, 1.0]]),
        ("dcl", 3, [[300.0, 1.0]]),  # its own sweep (per_base)
    ):
        b = summ["bases"][name]
        assert b["budget_checked_on"] == "inference_activations"
        assert b["device_trainable"] is False and b["qat_int8"] is None  # no C model: no QAT
        chosen = b["selected"]
        assert chosen["mac_reduction"] == pytest.approx(b["macs"] / chosen["macs"])
        assert [r["beta"] for r in b["swept"]] == betas
        models = [r for r in rows if r.get("kind") == "model" and r["base"] == name]
        assert len(models) == 1 + len(betas)
        # the unpruned base is the baseline's own first stage: 4 convolutions of kernel 5
        assert models[0]["arch"]["kernels"] == [5, 5, 5, 5]
        assert models[0]["kept_filters"] == [filters] * 4
        for r in models:
            stage = [ConvLayer(**layer) for layer in r["arch"]["stage"]]
            c = len(r["arch"]["sensors"])
            module = build_staged(name, c, 32, 4, stage, filters)
            # the counts are those of the model rebuilt from the journal, and its weights load
            assert (r["macs"], r["params"]) == (count_macs(module, c, 32), count_params(module))
            peak = inference_peak_bytes(name, c, 32, 4, stage, filters)
            assert r["peak_memory_bytes"] == {"inference_activations": peak}
            assert r["fits_budget"] == (peak <= 30000)
            with np.load(out / "states" / f"{r['key']}.npz") as z:
                module.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files})
    # a heavy MAC weight prunes: fewer MACs than the search without hardware terms
    tiny = summ["bases"]["tinyhar"]["swept"]
    assert tiny[1]["macs"] < tiny[0]["macs"]
    first, other = summ["channel_scaling"]  # the first base searched, the other counted
    assert (first["base"], other["base"], other["n_channels"]) == ("tinyhar", "dcl", 3)
    assert first["after"] is not None and other["after"] is None
    unpruned = build_baseline("dcl", 3, 32, 4, filters=3)
    assert other["before"] == {
        "params": count_params(unpruned),
        "macs": count_macs(unpruned, 3, 32),
    }
    page = (out / "report.html").read_text()
    assert "tinyhar: inference_activations" in page


def test_an_interrupted_baseline_study_resumes_to_the_same_summary(baselines) -> None:  # noqa: ANN001
    tmp, out = baselines
    first = (out / "summary.json").read_bytes()
    lines = (out / PRUNE_FILE).read_text().splitlines(keepends=True)
    kinds = [(json.loads(line).get("kind"), json.loads(line).get("base")) for line in lines[1:]]
    cut = 1 + kinds.index(("warmup", "dcl")) + 1  # tinyhar done, dcl's base and warm-up kept
    (out / PRUNE_FILE).write_text("".join(lines[:cut]))
    assert _run(tmp, out, BASELINES, "--resume") == 0
    assert (out / "summary.json").read_bytes() == first


def _steps(where: Path) -> dict[str, dict]:
    """The journaled steps of the study in ``where``, by key."""
    return {r["key"]: r for r in read_rows(where / PRUNE_FILE)}


def _arrays(where: Path, key: str) -> dict[str, np.ndarray]:
    with np.load(where / "states" / f"{key}.npz") as z:
        return {k: z[k] for k in z.files}


def test_distilled_fine_tuning_keeps_the_base_and_warm_up_steps_and_marks_its_rows(
    baselines,  # noqa: ANN001
) -> None:
    tmp, out = baselines
    distilled = BASELINES.replace("tau_decay: 1.0}", "tau_decay: 1.0, distill: 0.5}")
    assert distilled != BASELINES
    out2 = tmp / "distilled"
    assert _run(tmp, out2, distilled) == 0

    def tinyhar_rows(where: Path) -> dict[str, dict]:
        return {k: r for k, r in _steps(where).items() if r.get("base") == "tinyhar"}

    plain, taught = tinyhar_rows(out), tinyhar_rows(out2)
    shared = {k for k in plain if plain[k]["kind"] in ("warmup", "model") and k in taught}
    base = [k for k in shared if plain[k].get("label") == "base"]
    # the base and the warm-up do not distil, so they keep their keys and their weights
    assert len(base) == 1 and {plain[k]["kind"] for k in shared} == {"warmup", "model"}
    assert taught[base[0]]["distilled"] is None and taught[base[0]]["f1"] == plain[base[0]]["f1"]
    swept = [r for k, r in taught.items() if r["kind"] == "model" and k not in shared]
    assert [r["beta"] for r in swept] == [[0.0, 0.0], [300.0, 1.0]]
    assert all(r["distilled"] == [0.5, 4.0] for r in swept)
    summ = json.loads((out2 / "summary.json").read_text())["bases"]
    assert summ["dcl"] == json.loads((out / "summary.json").read_text())["bases"]["dcl"]


def test_a_step_is_keyed_on_what_it_reads_and_recomputes_to_the_same_result(study) -> None:  # noqa: ANN001
    """Changing only settings a step ignores keeps its key, and a fresh run of the step with
    them changed gives byte-identical weights and the same row: the base ignores every search
    setting and trains for the sum of the epoch settings; the warm-up ignores the search's
    rates and epochs, the hardware terms and the fine-tuning."""
    tmp, out = study
    ran = _steps(out)
    for changes, kind in (
        # the base: search rates, gate start, temperature, search batch; 1 + 2 epochs moved
        ({"warmup_epochs: 1": "warmup_epochs: 2", "search_epochs: 2": "search_epochs: 1",
          "search_batch_size: 32": "search_batch_size: 16", "lr: 0.01": "lr: 0.02",
          "lr_gates: 0.1": "lr_gates: 0.2\n    lr_sensor_gates: 0.05\n    lr_alpha: 0.02\n"
          "    gate_init: 1.5\n    tau_decay: 0.3"}, ("model", "base")),
        # the warm-up: the search's rates and epochs, the hardware terms, the fine-tuning
        ({"search_epochs: 2": "search_epochs: 3", "memory_budget_bytes: 30000":
          "memory_budget_bytes: 40000\n    profile: esp32",
          "lr_gates: 0.1": "lr_gates: 0.2\n    lr_sensor_gates: 0.05\n    lr_alpha: 0.02",
          "finetune_epochs: 2": "finetune_epochs: 1\n    finetune_lr: 0.004\n"
          "    finetune_batch_size: 16"}, ("warmup", None)),
    ):  # fmt: skip
        text = SCENARIO
        for old, new in changes.items():
            assert old in text
            text = text.replace(old, new)
        again = tmp / f"changed_{kind[0]}"
        assert _run(tmp, again, text.replace("channel_sets: [acc]", "channel_sets: []")) == 0
        redone = _steps(again)
        same = [k for k in redone if k in ran]
        want = [k for k in ran if (ran[k]["kind"], ran[k].get("label")) == kind]
        assert same == want and len(same) == 1  # only that step keeps its key
        assert redone[same[0]] == ran[same[0]]
        old_w, new_w = _arrays(out, same[0]), _arrays(again, same[0])
        assert old_w.keys() == new_w.keys()
        assert all(np.array_equal(old_w[k], new_w[k]) for k in old_w)


FILTERS, SPLIT = "    filters: 6\n", "  split: users\n"


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (FILTERS, "    bases: [cnn, resnet]\n", "compress.prune.bases.1: expected one of cnn"),
        (
            FILTERS,
            "    per_base: {dcl: {filters: 8}}\n",
            "compress.prune.per_base.dcl: expected one of the bases ['cnn'], got 'dcl'",
        ),
        (FILTERS, "    per_base: {cnn: {filter: 8}}\n", "compress.prune.per_base.cnn.filter"),
        (
            FILTERS,
            "    per_base: {cnn: {betas: [[0.1, -1.0]]}}\n",
            "compress.prune.per_base.cnn.betas.0: expected beta1, beta2 >= 0",
        ),
        ("[[0.0, 0.0], [3.0, 1.0]]", "[[0.1, -1.0]]", "compress.prune.betas.0: expected beta1"),
        (FILTERS, "    beta: [0.1]\n", "compress.prune.beta"),
        (SPLIT, SPLIT + "  grid: {channels: [[4, 8]]}\n", "compress.grid: expected unset with"),
        ('["2"]', '["2", "77"]', "compress.test_users: users ['77'] have no windows"),
    ],
)
def test_bad_prune_keys_give_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, message: str
) -> None:
    assert old in SCENARIO
    assert _run(tmp_path, tmp_path / "out", SCENARIO.replace(old, new, 1)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "Traceback" not in err


def _row(macs: int, f1_val: float, peak: int, entry: str = "full_training_arena") -> dict:
    return {
        "macs": macs,
        "f1_val": f1_val,
        "peak_memory_bytes": {entry: peak, "other": 0},
        "budget_entry": entry,
    }


def test_selection_rule() -> None:
    prune = PruneConfig(memory_budget_bytes=1000, f1_tolerance=0.01)
    base = {"f1_val": 0.90}
    # the smallest-MAC model within the budget and within 1 point of the base
    swept = [_row(500, 0.895, 900), _row(100, 0.80, 500), _row(200, 0.892, 990),
             _row(50, 0.95, 2000)]  # fmt: skip
    assert select(base, swept, prune) == 2
    # none near the base: the best validation F1 within the budget
    swept = [_row(500, 0.85, 900), _row(100, 0.80, 500), _row(50, 0.95, 2000)]
    assert select(base, swept, prune) == 0
    # none within the budget: the smallest peak memory
    swept = [_row(500, 0.85, 3000), _row(100, 0.80, 2500), _row(50, 0.95, 2000)]
    assert select(base, swept, prune) == 2
    # a row's budget is checked on its own entry (a PyTorch-only base: eq. 12's activations)
    swept = [_row(500, 0.895, 900), _row(100, 0.899, 1500, "inference_activations")]
    assert select(base, swept, prune) == 0
    with pytest.raises(ValueError, match="at least one"):
        select(base, [], prune)

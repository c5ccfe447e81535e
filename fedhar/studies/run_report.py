"""The report of a federation run: its identity, every user's No-Pers. record, then the
federation's records folded in.

:func:`general_report` pretrains (or loads from the cache) each fold's general model, scores
it on its users' TS_i and writes each user's record to ``OUT/report.json`` as soon as it is
known; ``resume`` skips users already there. :func:`finish_report` then folds the federation's
log (``OUT/clients.jsonl``) into the report and draws its pages. ``fedhar run`` calls the first
before the federation and the second after it; the ServerApp calls both at the end of a run
started by ``flwr run`` (run config ``report = "true"``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedhar.errors import InputError
from fedhar.mcu.profile import McuProfile, load_profile
from fedhar.models.spec import ModelSpec
from fedhar.ondevice.estimator import OpCounts
from fedhar.progress import progress
from fedhar.results.federation import FederationFailure, merge_federation, write_pages
from fedhar.results.journal import CLIENTS_FILE, journal_identity, scenario_identity
from fedhar.results.record import ClientRecord
from fedhar.results.report import FLOAT_DIGITS, ReportWriter
from fedhar.schema.scenario import Scenario
from fedhar.studies.pipeline import Prepared, evaluate_client, pretrain_folds
from fedhar.studies.pretrain import PretrainResult
from fedhar.wire.payload import is_network_format, layer_bits, payload_spec


@dataclass
class GeneralReport:
    """The report after the No-Pers. pass.

    Attributes:
        writer: the report's writer, holding every user's record.
        cache_hits: folds whose general model came from the cache.
        cache_misses: folds pretrained now.
        pretrain_s: wall seconds spent pretraining (or loading) general models, waiting for
            their worker processes included.
        evaluate_s: wall seconds spent scoring them.
        fold_train_s: per pretrained fold, the seconds its training took in its process.
        train_windows: training steps of every pretrained fold, one per window per epoch.
    """

    writer: ReportWriter
    cache_hits: int = 0
    cache_misses: int = 0
    pretrain_s: float = 0.0
    evaluate_s: float = 0.0
    fold_train_s: dict[str, float] = field(default_factory=dict)
    train_windows: int = 0


def report_header(scenario: Scenario, prepared: Prepared) -> dict[str, object]:
    """Identity of a run, stored in ``report.json``: resuming requires an equal header."""
    return {
        "scenario": scenario.name,
        "scenario_sha256": report_scenario_sha256(scenario),
        "dataset": prepared.dataset.name,
        "classes": list(prepared.dataset.classes),
        "seed": scenario.seed,
        "model": prepared.spec.name,
        "window": [prepared.spec.input_channels, prepared.spec.input_length],
        "modes": list(scenario.personalization.modes),
        "payload": scenario.federation.payload,
        **payload_header(scenario, prepared.spec),
        "rounds": scenario.federation.rounds,
        "aggregation": scenario.federation.aggregation,
        "mcu": scenario.mcu.profile,
    }


def payload_header(scenario: Scenario, spec: ModelSpec) -> dict[str, object]:
    """The header's figures of an integer network payload: its ``compression`` and
    ``payload_bits`` (layer → ``[w_bits, a_bits]``); none for a float payload."""
    fed = scenario.federation
    if not is_network_format(fed.payload):
        return {}
    bits = layer_bits(fed.payload, payload_spec(fed.payload, spec), fed.bits)
    return {"compression": fed.compression, "payload_bits": {k: list(v) for k, v in bits.items()}}


def refuse_foreign_results(scenario: Scenario, snapshot: Scenario, out: Path) -> None:
    """Refuses to run into ``out`` when it holds the results of another scenario or seed.

    Args:
        scenario: the scenario to run, as ``report.json`` identifies it.
        snapshot: the same scenario as the federation's journal identifies it (the copy the
            engines read, its file paths anchored).
        out: the ``--out`` folder.

    Raises:
        fedhar.errors.InputError: ``OUT/clients.jsonl`` or ``OUT/report.json`` was written for
            another scenario (name or content) or seed.
    """
    wanted = scenario_identity(snapshot)
    there: dict[str, object] | None = journal_identity(out / CLIENTS_FILE)
    if there is None:
        header = _report_header_at(out / "report.json")
        wanted = {
            "scenario": scenario.name,
            "scenario_sha256": report_scenario_sha256(scenario),
            "seed": scenario.seed,
        }
        there = {k: header[k] for k in wanted if k in header} if header else None
    if there is None:
        return
    differ = [k for k in ("scenario", "seed", "scenario_sha256") if there.get(k) != wanted[k]]
    if differ:
        what = ", ".join(
            "another content" if k == "scenario_sha256" else f"{k} {there.get(k)!r}" for k in differ
        )
        raise InputError(
            f"{out}: --out holds the results of another run ({what}); use another --out, "
            "--force to replace them, or --resume with that run's scenario"
        )


def _report_header_at(path: Path) -> dict[str, object] | None:
    """The header of an earlier ``report.json`` at ``path``, if one can be read."""
    try:
        header = json.loads(path.read_text(encoding="utf-8")).get("header")
    except (OSError, ValueError, AttributeError):
        return None
    return header if isinstance(header, dict) else None


def report_scenario_sha256(scenario: Scenario) -> str:
    """The scenario hash of a ``report.json`` header. It keeps the key names it was first taken
    with (``data.device``, ``device``, and ``battery`` inside it, since renamed
    ``data.recording_device``, ``battery`` and ``battery.cell``), and leaves an unset battery
    section out, so runs without a battery keep the hash they had before the section existed."""
    dumped = scenario.identity_dump()
    dumped["data"]["device"] = dumped["data"].pop("recording_device")
    battery = dumped.pop("battery")
    if battery is not None:
        battery["battery"] = battery.pop("cell")
        dumped["device"] = battery
    canonical = json.dumps(dumped, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def general_report(
    scenario: Scenario,
    prepared: Prepared,
    out: Path,
    *,
    resume: bool,
    use_cache: bool = True,
    jobs: int = 1,
    threads: int = 1,
    on_record: Callable[[ClientRecord], None] | None = None,
) -> GeneralReport:
    """Writes every user's No-Pers. record to ``out/report.json`` (``on_record`` sees each),
    fold by fold in the scenario's order. The uncached general models are pretrained in
    ``jobs`` processes of ``threads`` torch threads each
    (:func:`~fedhar.studies.pipeline.pretrain_folds`); the report is the same whatever ``jobs``.

    Raises:
        fedhar.results.report.ReportError: with ``resume``, a report of another run is there.
    """
    report = GeneralReport(ReportWriter(out, report_header(scenario, prepared), resume=resume))
    writer = report.writer
    folds = [f for f in prepared.folds if any(not writer.done(u) for u in f.test_users)]
    federated = scenario.pretrain.method == "federated"
    if federated and writer.pretrain is None:
        writer.pretrain = {"method": "federated", **scenario.pretrain.federated.model_dump()}
    profile = load_profile(scenario.mcu.profile) if federated else None
    models = pretrain_folds(
        prepared, folds, scenario, jobs=jobs, threads=threads, use_cache=use_cache
    )
    t0 = time.perf_counter()
    for fold, general in progress(models, desc="folds", total=len(folds)):
        report.cache_hits += general.from_cache
        report.cache_misses += not general.from_cache
        if not general.from_cache:
            report.fold_train_s[fold.name] = round(general.train_s, 3)
            report.train_windows += sum(e.windows for e in general.log)
        if writer.pretrain is not None and profile is not None:
            folds_block = writer.pretrain.setdefault("folds", {})
            folds_block[fold.name] = federated_figures(general, profile)
            writer.pretrain["totals"] = federated_totals(folds_block)
        t1 = time.perf_counter()
        for user in fold.test_users:
            if writer.done(user):
                continue
            record = evaluate_client(prepared, fold, prepared.users[user], general)
            writer.add(record)
            if on_record is not None:
                on_record(record)
        report.evaluate_s += time.perf_counter() - t1
    report.pretrain_s = time.perf_counter() - t0 - report.evaluate_s
    writer.write()
    return report


def federated_figures(general: PretrainResult, profile: McuProfile) -> dict[str, Any]:
    """A fold's federated pretraining for ``report.json``: the rounds run and the round kept,
    the training users, the parameter bytes down and up, the statistics exchange's bytes,
    and per round its participants (their number; their ids when not every training user
    took part), training loss, validation macro-F1 (None without validation users), bytes,
    and the clients' counted MACs and their cycles, seconds and energy (J) on ``profile``."""
    by_round = []
    for r in general.rounds:
        ops = OpCounts(**r.ops)
        cost = profile.cost(ops)
        entry: dict[str, Any] = {
            "round": r.round,
            "n_participants": len(r.participants),
            "train_loss": r.train_loss,
            "val_f1": r.val_f1,
            "bytes_down": r.bytes_down,
            "bytes_up": r.bytes_up,
            "windows": r.windows,
            "macs": ops.macs,
            "cycles": round(cost.cycles, FLOAT_DIGITS),
            "seconds": round(cost.seconds, FLOAT_DIGITS),
            "energy_j": round(cost.joules, FLOAT_DIGITS),
        }
        if len(r.participants) != len(general.train_users):
            entry["participants"] = list(r.participants)
        by_round.append(entry)
    return {
        "rounds_run": len(general.rounds),
        "best_round": general.best_epoch,
        "train_users": list(general.train_users),
        "val_users": list(general.val_users),
        "bytes_down": sum(r.bytes_down for r in general.rounds),
        "bytes_up": sum(r.bytes_up for r in general.rounds),
        "stats_bytes_down": general.stats_bytes.get("down", 0),
        "stats_bytes_up": general.stats_bytes.get("up", 0),
        "by_round": by_round,
    }


def federated_totals(folds: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Sums over the folds of :func:`federated_figures`: rounds run, bytes down and up (the
    statistics exchange's included), and the clients' cycles and energy (J); and the mean
    per fold of the rounds and bytes. The folds are summed in name order, and their figures
    are the report's rounded ones, so a resumed report, which reads them back, sums the same."""
    figures = [folds[name] for name in sorted(folds)]
    rounds = [r for f in figures for r in f["by_round"]]
    totals: dict[str, float] = {
        "folds": len(figures),
        "rounds_run": sum(f["rounds_run"] for f in figures),
        "bytes_down": sum(f["bytes_down"] + f["stats_bytes_down"] for f in figures),
        "bytes_up": sum(f["bytes_up"] + f["stats_bytes_up"] for f in figures),
        "cycles": sum(r["cycles"] for r in rounds),
        "energy_j": sum(r["energy_j"] for r in rounds),
    }
    for key in ("rounds_run", "bytes_down", "bytes_up"):
        totals[f"mean_{key}_per_fold"] = totals[key] / max(len(figures), 1)
    return totals


def finish_report(
    writer: ReportWriter, out: Path, failure: FederationFailure | None = None
) -> list[Path]:
    """Folds the federation's records and status (``failure``: it stopped before its end)
    into the report and draws its pages; returns the pages and figures written."""
    merge_federation(writer, out, failure)
    return write_pages(out)

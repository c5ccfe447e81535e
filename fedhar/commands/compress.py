"""``fedhar compress SCENARIO --out DIR [--resume]``: the compression study (Daghero et al. 2022
§4.1–4.2 and Contoli et al. 2023).

Trains every architecture of the scenario (its ``model``, or ``compress.grid``) in float, then
deploys it in every format: the post-training ``float32``, ``dynamic`` and ``full_int8``, PACT
QAT at each of ``compress.bits`` (``pact8`` … ``pact1``) and, with ``compress.mixed``, the EdMIPS
mixed-precision assignments. Each deployed model is scored by fedhar's C kernels and priced on
every profile. Writes ``models.jsonl`` (each model as it is scored; with ``--resume`` those are
not redone, and a DIR of another scenario is refused), ``states/`` (the trained float models),
``models.csv``, ``summary.json``, ``bits.json`` (the chosen mixed assignment, for a run's
``federation.bits_from``), ``fig8_memory.png``/``.svg``, ``fig10_cycles.png``/``.svg`` and
``report.html``.

With ``compress.prune`` it runs zhou2024's hardware-aware NAS with pruning instead
(:mod:`fedhar.studies.prune`): ``prune.jsonl`` (each search and trained model as it finishes;
``--resume`` reuses them), ``states/``, ``summary.json``, ``pareto_macs.png``/``.svg`` and
``report.html``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fedhar.commands import add_study_arguments

if TYPE_CHECKING:
    from fedhar.schema.compress import CompressConfig
    from fedhar.schema.scenario import Scenario


def run(args: argparse.Namespace) -> int:
    """Runs the study and writes its files; returns the exit code (2 on bad input)."""
    # Imported here so that `fedhar compress --help` does not pay for torch.
    from fedhar.commands import print_error
    from fedhar.data.paths import DatasetMissingError
    from fedhar.files import write_atomic
    from fedhar.progress import say
    from fedhar.results.journal import Journal, JournalError
    from fedhar.schema.base import SchemaError
    from fedhar.schema.compress import load_compress_scenario
    from fedhar.studies.compress import MODELS_FILE, run_study, study_identity
    from fedhar.studies.compress_report import (
        plot_front,
        summary,
        write_bits,
        write_models_csv,
        write_page,
    )

    try:
        scenario, cfg = load_compress_scenario(args.scenario)
    except SchemaError as exc:
        print_error(exc, "fedhar compress: error: ")
        return 2
    out = Path(args.out)
    start = time.monotonic()

    def log(line: str) -> None:
        say(f"[{time.monotonic() - start:6.1f} s] {line}")

    if cfg.prune is not None:
        return _run_prune(args, scenario, cfg, out, log)
    try:
        journal = Journal(out / MODELS_FILE, study_identity(scenario, cfg), resume=args.resume)
        result = run_study(scenario, cfg, args.data_dir, out, journal, log)
    except (DatasetMissingError, JournalError, ValueError) as exc:
        print_error(exc, "fedhar compress: error: ")
        return 2
    summ = summary(result, cfg, scenario.name)
    write_atomic(out / "summary.json", json.dumps(summ, indent=1) + "\n")
    write_models_csv(result, out / "models.csv")
    write_bits(result, out / "bits.json")
    figures = [
        plot_front(result, "memory", out / "fig8_memory.png", f"{scenario.name}: F1 vs memory"),
        plot_front(result, "cycles", out / "fig10_cycles.png", f"{scenario.name}: F1 vs cycles"),
    ]
    write_page(result, summ, figures, out / "report.html")
    log(f"wrote {out}")
    return 0


def _run_prune(
    args: argparse.Namespace, scenario: Scenario, cfg: CompressConfig, out: Path,
    log: Callable[[str], None],
) -> int:  # fmt: skip
    """The NAS study of ``compress.prune``: ``prune.jsonl``, ``states/``, ``summary.json``,
    ``pareto_macs.png``/``.svg`` and ``report.html``."""
    from fedhar.commands import print_error
    from fedhar.data.paths import DatasetMissingError
    from fedhar.files import write_atomic
    from fedhar.results.journal import Journal, JournalError
    from fedhar.studies.prune import PRUNE_FILE, run_study, study_identity
    from fedhar.studies.prune_report import plot_pareto, summary, write_page

    assert cfg.prune is not None
    try:
        result = run_study(
            scenario,
            cfg,
            args.data_dir,
            out,
            lambda: Journal(out / PRUNE_FILE, study_identity(scenario, cfg), resume=args.resume),
            log,
        )
    except (DatasetMissingError, JournalError, ValueError) as exc:
        print_error(exc, "fedhar compress: error: ")
        return 2
    summ = summary(result, cfg.prune, scenario.name)
    write_atomic(out / "summary.json", json.dumps(summ, indent=1) + "\n")
    figure = plot_pareto(result, out / "pareto_macs.png", f"{scenario.name}: F1 vs MACs")
    write_page(summ, figure, out / "report.html")
    log(f"wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``compress`` sub-command to the fedhar CLI."""
    parser = subparsers.add_parser(
        "compress",
        help="quantization study: PACT QAT at 8/4/2/1 bit, mixed precision, PTQ formats; or, "
        "with compress.prune, hardware-aware NAS with pruning (zhou2024)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_study_arguments(parser, "compress", "models.jsonl")
    parser.set_defaults(func=run)

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
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fedhar.commands import add_study_arguments


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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``compress`` sub-command to the fedhar CLI."""
    parser = subparsers.add_parser(
        "compress",
        help="quantization study: PACT QAT at 8/4/2/1 bit, mixed precision, PTQ formats",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_study_arguments(parser, "compress", "models.jsonl")
    parser.set_defaults(func=run)

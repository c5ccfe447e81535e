"""``fedhar adaptive SCENARIO --out DIR [--resume]``: input-adaptive inference study (Daghero et
al. 2022).

Searches a static grid over the Fig. 4a template, turns the largest-gain model into a
variable-width network with switchable BatchNorm, sweeps the score-margin threshold and writes:
``grid.jsonl`` (each grid model as it is scored; ``--resume`` continues a run of the same
scenario in DIR, a DIR of another scenario is refused; trained networks are cached by content
in the user cache, so no run trains a network twice), ``modes.json``/``modes.csv`` (one row
per Th),
``summary.json`` (with the fronts compared per pricing), ``static_grid.csv``, ``fig11.png``
(static, cascade and variable-width fronts), ``fig12.png`` (with ``adaptive.replicate``),
``model.pt`` (for
``fedhar.adaptive.artifact.load_classifier``) and, per personalized held-out user,
``users/<id>/modes_before.*``, ``modes_after.*`` and its personalized ``model.pt``, with
``personalized.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fedhar.commands import add_study_arguments


def run(args: argparse.Namespace) -> int:
    """Runs the study and writes its files; returns the exit code (2 on bad input)."""
    # Imported here so that `fedhar adaptive --help` does not pay for torch.
    from fedhar.adaptive.artifact import save_model
    from fedhar.commands import print_error
    from fedhar.data.paths import DatasetMissingError
    from fedhar.files import write_atomic
    from fedhar.progress import say
    from fedhar.results.journal import Journal, JournalError
    from fedhar.schema.adaptive import load_adaptive_scenario
    from fedhar.schema.base import SchemaError
    from fedhar.studies.adaptive import GRID_FILE, grid_identity, run_study
    from fedhar.studies.adaptive_report import (
        plot_fig11,
        plot_fig12,
        plot_personalized,
        summary,
        write_grid,
        write_modes,
    )

    try:
        scenario, cfg = load_adaptive_scenario(args.scenario)
    except SchemaError as exc:
        print_error(exc, "fedhar adaptive: error: ")
        return 2
    out = Path(args.out)
    start = time.monotonic()

    def log(line: str) -> None:
        say(f"[{time.monotonic() - start:6.1f} s] {line}")

    try:
        identity = grid_identity(scenario, cfg)
        result = run_study(
            scenario,
            cfg,
            args.data_dir,
            log,
            lambda: Journal(out / GRID_FILE, identity, resume=args.resume),
        )
    except (DatasetMissingError, JournalError, ValueError) as exc:
        # A key of the scenario that only the data can check names the file, as schema errors do.
        named = str(exc).startswith("adaptive.")
        print_error(
            ValueError(f"{args.scenario}: {exc}") if named else exc, "fedhar adaptive: error: "
        )
        return 2
    meta = {
        "scenario": scenario.name,
        "profile": cfg.profile,
        "small_width": result.small_width,
        "precision_priced": "float32",
    }
    write_modes(result.modes, out / "modes", meta)
    write_atomic(out / "summary.json", json.dumps(summary(result, cfg.profile), indent=1))
    write_grid(result, out / "static_grid.csv")
    plot_fig11(result, out / "fig11.png")
    if result.replicated:
        plot_fig12(result, out / "fig12.png")
    save_model(result.net, result.small_width, result.normalizer, out / "model.pt")
    for u in result.personalized:
        user_dir = out / "users" / u.user
        user_dir.mkdir(parents=True, exist_ok=True)
        write_modes(u.before, user_dir / "modes_before", {**meta, "user": u.user})
        write_modes(u.after, user_dir / "modes_after", {**meta, "user": u.user})
        save_model(u.net, result.small_width, result.normalizer, user_dir / "model.pt")
    if result.personalized:
        plot_personalized(result, out / "personalized.png")
    log(f"wrote {out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``adaptive`` sub-command to the fedhar CLI."""
    parser = subparsers.add_parser(
        "adaptive",
        help="variable-width adaptive inference: operating modes, costs and memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_study_arguments(parser, "adaptive", "grid.jsonl")
    parser.set_defaults(func=run)

"""``fedhar estimate``: memory, operations, cycles, time and energy of on-device training.

Repeated ``--input`` and ``--mode`` give one row per combination (inputs outermost).
``--calibration`` prints instead the calibration of the STM32L496 profile against
craighero2023 Table III. ``--emulate`` also runs each row's training batch on an emulated
Cortex-M4F (QEMU mps2-an386) and prints the executed instructions beside the predicted ones.
Bad arguments exit with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from typing import NoReturn

from fedhar.commands import print_error
from fedhar.mcu import list_profiles, load_profile
from fedhar.models.spec import MODEL_BUILDERS

PROG = "fedhar estimate"


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _mapping(text: str) -> dict:
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(f"expected a YAML mapping, got {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a YAML mapping, got {text!r}")
    return value


def _one_line_error(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(2)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds the ``estimate`` sub-command to the fedhar CLI."""
    parser = subparsers.add_parser(
        "estimate",
        help="memory, operations, cycles, time and energy of on-device training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.error = _one_line_error  # type: ignore[method-assign]
    parser.add_argument(
        "--model", default="cnn3", help=f"model: {', '.join(sorted(MODEL_BUILDERS))} (cnn3)"
    )
    parser.add_argument(
        "--model-options",
        type=_mapping,
        default=None,
        metavar="YAML",
        help="the model builder's options as a YAML or JSON mapping, as a scenario's "
        "model.options (e.g. for --model nas: '{kernels: [5, 3], filters: [8, 8], sensors: "
        "[0, 4]}'); the model then reads the sensors it keeps of --input's channels",
    )
    parser.add_argument(
        "--input",
        action="append",
        metavar="TxC",
        help="input size, T samples x C channels as in the paper (repeatable; default 100x3)",
    )
    parser.add_argument(
        "--mode",
        action="append",
        metavar="MODE",
        help="training mode: tl or full (repeatable; default full)",
    )
    parser.add_argument(
        "--mcu",
        default="stm32l496zg",
        help=f"MCU profile or alias: {', '.join(list_profiles())} (stm32l496zg)",
    )
    parser.add_argument("--batch", type=_int, default=32, help="samples per batch (32)")
    parser.add_argument("--classes", type=_int, default=6, help="output classes (6)")
    parser.add_argument(
        "--tl-layers", type=_int, default=2, help="dense layers trained in TL mode (2)"
    )
    parser.add_argument(
        "--momentum",
        type=_float,
        default=0.0,
        help="SGD momentum; > 0 adds the optimizer buffers (0, plain SGD as in the paper)",
    )
    parser.add_argument(
        "--stored-samples",
        type=_int,
        default=0,
        help="local training samples kept in the arena (0)",
    )
    parser.add_argument(
        "--calibration",
        action="store_true",
        help="print the STM32L496 calibration against craighero2023 Table III instead",
    )
    parser.add_argument(
        "--emulate",
        action="store_true",
        help="run each row on the emulated Cortex-M4F and print executed against predicted "
        "instructions (needs arm-none-eabi-gcc and qemu-system-arm)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the sub-command; returns the exit code (2 on bad input)."""
    from fedhar.ondevice.estimate import estimate_row, format_rows, parse_input

    try:
        if args.calibration:
            from fedhar.ondevice.calibration import calibrate, format_report

            report = calibrate(load_profile("stm32l496zg"))
            print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
            return 0
        profile = load_profile(args.mcu)
        inputs = [parse_input(text) for text in (args.input or ["100x3"])]
        modes = [m.strip().lower() for m in (args.mode or ["full"])]
        combos = list(itertools.product(inputs, modes))
        rows = [
            estimate_row(
                profile,
                model=args.model,
                input_length=t,
                input_channels=c,
                n_classes=args.classes,
                mode=mode,
                batch=args.batch,
                tl_layers=args.tl_layers,
                momentum=args.momentum,
                n_stored_samples=args.stored_samples,
                options=args.model_options,
            )
            for (t, c), mode in combos
        ]
    except ValueError as exc:  # an invalid MCU profile file gives one line per problem
        print_error(exc, f"{PROG}: error: ")
        return 2
    channels = [c for (_, c), _ in combos]  # the data view's, before a model keeps sensors
    emulated = _emulate(rows, channels, profile, args) if args.emulate else None
    if emulated is not None and not emulated:
        return 2
    if args.json:
        out = {
            "mcu": {
                "name": profile.name,
                "core": profile.core,
                "clock_hz": profile.clock_hz,
                "sram_bytes": profile.sram_bytes,
                "active_watts": profile.active_watts,
                "profile": profile.path,
            },
            "rows": [row.to_dict() for row in rows],
        }
        if emulated:
            from fedhar.ondevice.emulated import row_dict

            for row, em in zip(out["rows"], emulated, strict=True):
                row.update(row_dict(em))
        print(json.dumps(out, indent=2))
    else:
        print(format_rows(rows, profile))
        if emulated:
            from fedhar.ondevice.emulated import format_emulated

            print()
            print(format_emulated(rows, emulated, profile))
    return 0


def _emulate(rows: list, channels: list[int], profile: object, args: argparse.Namespace) -> list:
    """Each row's batch on the emulator (``channels``: each row's input channels as given,
    before the model keeps sensors); an empty list (after one line on stderr) when the tools
    are missing or the emulator fails."""
    from fedhar.models.spec import build_spec
    from fedhar.ondevice import emulator
    from fedhar.ondevice.emulated import emulate_row

    options = args.model_options or {}
    try:
        b = emulator.build()
        return [
            emulate_row(
                build_spec(r.model, c, r.input_length, r.n_classes, **options),
                r.mode,
                r.batch,
                args.tl_layers,
                r.momentum,
                timings=dict(profile.instruction_timings),  # type: ignore[attr-defined]
                b=b,
            )
            for r, c in zip(rows, channels, strict=True)
        ]
    except emulator.EmulatorError as exc:
        print(f"{PROG}: error: --emulate: {exc}", file=sys.stderr)
        return []

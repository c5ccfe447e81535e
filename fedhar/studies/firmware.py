"""Firmware for one user's personalized model: a C header, a ``main.c`` and the library.

:func:`write_firmware` writes a self-contained folder that builds with arm-none-eabi-gcc for a
Cortex-M4F, both for QEMU's ``mps2-an386`` (``make qemu``, semihosting reports the results)
and for a NUCLEO-L496ZG board (``make nucleo``, results in RAM for a debugger):

``fedhar_model.h``  the layer table, the model packed as fedhar's int8 payload
                    (:mod:`fedhar.wire.codec`: int8 weights with per-channel scales, int32
                    biases with per-tensor scales, float32 for the rest), one test window with
                    its label, and the host's logits of that window for a self-check;
``main.c``          (with the ``Makefile`` and ``README.md`` of ``fedhar/ondevice/emu/firmware``)
                    unpacks the model into the training library, classifies the window, runs
                    one TL training step on it and classifies it again;
``fedhar/``         the C library's sources; ``startup.c``, ``semihost.[ch]`` and the linker
                    scripts of ``fedhar/ondevice/emu/harness``.

The unpacking in ``main.c`` computes exactly what :func:`fedhar.wire.codec.decode_model`
computes (float32 ``q · s`` for weights, ``(float)((double) q · s)`` for biases), so the board
runs the model the report scored as ``f1_deployed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fedhar.files import write_atomic
from fedhar.models.spec import ModelSpec
from fedhar.ondevice import ctrain
from fedhar.ondevice.emulator import CSRC_DIR, EMU_DIR
from fedhar.wire.codec import encode_model

__all__ = ["RESULT_FILE", "write_firmware"]

RESULT_FILE = "fh_firmware_out.bin"
"""What ``make run`` (QEMU) writes: logits before, the TL step's loss, logits after (float32)."""

FIRMWARE_DIR = EMU_DIR / "firmware"
_ROLES = {"f32": 0, "q8": 1, "q32": 2}


def _floats(values: np.ndarray) -> str:
    """Exact C float literals (hexadecimal, C99)."""
    return ", ".join(f"{float(v).hex()}f" for v in np.asarray(values, dtype=np.float32).ravel())


def _ints(values: np.ndarray) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(values).ravel())


def _array(ctype: str, name: str, values: np.ndarray, fmt: str = "int") -> str:
    body = _floats(values) if fmt == "float" else _ints(values)
    n = max(int(np.asarray(values).size), 1)
    return f"static const {ctype} {name}[{n}] = {{{body or '0'}}};\n"


def _header(
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    trainable: Sequence[bool],
    window: np.ndarray,
    label: int,
    logits: np.ndarray,
    lr: float,
    user: str,
    arena: int,
) -> str:
    shapes = spec.param_shapes()
    record = encode_model(state, shapes, "int8")
    arrays = {
        name: np.frombuffer(record[name].data, dtype=record[name].dtype)
        for name in ("q8", "q32", "scale", "f32")
        if name in record
    }
    descs = ctrain.layer_descs(spec)
    lines = [
        f"/* fedhar_model.h - user {user}'s personalized {spec.name} ({spec.trainable_count()} "
        f"parameters, arena {arena} bytes), written by fedhar export. */",
        "#ifndef FEDHAR_MODEL_H",
        "#define FEDHAR_MODEL_H",
        '#include "fedhar_train.h"',
        f"#define FH_ARENA_BYTES {arena}",
        f"#define FH_MAX_TENSOR {max(int(np.prod(v)) for v in shapes.values())}",
        f"#define FH_N_LAYERS {len(spec.layers)}",
        f"#define FH_IN_C {spec.input_channels}",
        f"#define FH_IN_T {spec.input_length}",
        f"#define FH_N_CLASSES {spec.n_classes}",
        f"#define FH_TL_LR {float(np.float32(lr)).hex()}f",
        f"#define FH_LABEL {int(label)}",
        "/* kind, in_c, in_t, out_c, out_t, kernel, stride, pad_left, pad_right, eps */",
        "static const ft_layer_desc fh_layers[FH_N_LAYERS] = {",
    ]
    for d in descs:
        lines.append(
            f"    {{{d.kind}, {d.in_c}, {d.in_t}, {d.out_c}, {d.out_t}, {d.kernel}, {d.stride}, "
            f"{d.pad_left}, {d.pad_right}, {float(np.float32(d.eps)).hex()}f}},"
        )
    lines.append("};")
    lines.append(_array("uint8_t", "fh_trainable", np.array([int(t) for t in trainable])).strip())
    lines.append("/* tensors in spec order: layer, param, role (0 f32, 1 int8, 2 int32), elements,"
                 " rows (int8: output channels) */")  # fmt: skip
    rows = []
    for i, layer in enumerate(spec.layers):
        for key, shape in layer.param_shapes().items():
            role = "q8" if len(shape) >= 2 else ("q32" if key.endswith(".bias") else "f32")
            pid = ctrain.PARAM_IDS[key.rsplit(".", 1)[1]]
            rows.append(f"{{{i}, {pid}, {_ROLES[role]}, {int(np.prod(shape))}, {shape[0]}}}")
    lines.append(f"#define FH_N_TENSORS {len(rows)}")
    lines.append("static const int32_t fh_tensors[FH_N_TENSORS][5] = {" + ", ".join(rows) + "};")
    lines.append(_array("int8_t", "fh_q8", arrays.get("q8", np.zeros(0))).strip())
    lines.append(_array("int32_t", "fh_q32", arrays.get("q32", np.zeros(0))).strip())
    lines.append(_array("float", "fh_scale", arrays.get("scale", np.zeros(0)), "float").strip())
    lines.append(_array("float", "fh_f32", arrays.get("f32", np.zeros(0)), "float").strip())
    lines.append("/* one test window [C, T] of the user, normalized as the device sees it */")
    lines.append(_array("float", "fh_window", window, "float").strip())
    lines.append("/* the host's logits of that window with this model, for the self-check */")
    lines.append(_array("float", "fh_expected_logits", logits, "float").strip())
    lines.append("#endif /* FEDHAR_MODEL_H */")
    return "\n".join(lines) + "\n"


def write_firmware(
    out: Path,
    spec: ModelSpec,
    state: Mapping[str, np.ndarray],
    window: np.ndarray,
    label: int,
    tl_layers: int,
    lr: float,
    user: str,
) -> list[Path]:
    """Writes the firmware folder ``out`` (other files there are kept) for the model ``state``
    (float32, as decoded from its int8 payload), the normalized ``window [C, T]`` and its
    ``label``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    trainable = ctrain.trainable_flags(spec, "tl", tl_layers)
    host = ctrain.Trainer(spec, mode="tl", tl_layers=tl_layers, lr=lr)
    host.load_state_dict(state)
    x = np.ascontiguousarray(window, dtype=np.float32)[None]
    logits = host.logits(x)[0]
    arena = ctrain.Trainer.required_arena_bytes(spec, "tl", tl_layers)
    header = _header(spec, state, trainable, window, label, logits, lr, user, arena)
    write_atomic(out / "fedhar_model.h", header)
    written = [out / "fedhar_model.h"]
    sources = [FIRMWARE_DIR / n for n in ("main.c", "Makefile", "README.md")]
    sources += [EMU_DIR / "harness" / n for n in ("startup.c", "semihost.c", "semihost.h")]
    sources += sorted((EMU_DIR / "harness").glob("*.ld"))
    copies = [(src, out / src.name) for src in sources]
    copies += [
        (src, out / "fedhar" / src.name)
        for src in sorted(CSRC_DIR.glob("*.[ch]"))
        if src.name != "ft_conv1d_avx512.c"
    ]
    for src, dest in copies:
        write_atomic(dest, src.read_bytes())
        written.append(dest)
    return written

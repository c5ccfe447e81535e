"""Compares every per-user figure of two ``report.json`` files, whatever their format.

Usage: ``python scripts/compare_reports.py OLD/report.json NEW/report.json``

Format 1 kept parallel dicts per figure (``f1[mode]``, ``memory_bytes[mode][category]``, ...);
formats 2 to 4 keep one record per mode (``modes[mode].f1``, ...). Both are flattened into
``user → {figure path: value}`` with the same paths (``tl.f1``, ``tl.memory_bytes.total``,
``tl.ops.macs``, ``payload_bytes.down``, ``battery.soc_end``, ...). Every figure present in both
must be equal (floats within 1e-9); figures present in only one are listed, and the
per-mode summaries are compared too. Exit code 0 when all shared figures agree, else 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

IDENTITY = ("fold", "n_train", "n_test", "status", "reason", "round")


def flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Leaves of a nested dict under dotted paths."""
    if isinstance(value, dict):
        for key, inner in value.items():
            flatten(inner, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def figures_v1(client: dict[str, Any]) -> dict[str, Any]:
    """Format 1: ``figure[mode]`` dicts, ``macs[mode]``, battery fields at the top."""
    out: dict[str, Any] = {k: client[k] for k in IDENTITY if k in client}
    for figure in ("f1", "accuracy", "balanced_accuracy", "confusion", "f1_int8", "cycles",
                   "seconds", "energy_j", "memory_bytes"):  # fmt: skip
        for mode, value in client.get(figure, {}).items():
            flatten(value, f"{mode}.{figure}", out)
    for mode, value in client.get("macs", {}).items():
        out[f"{mode}.ops.macs"] = value
    flatten(client.get("payload_bytes", {}), "payload_bytes", out)
    for name in ("soc_end", "energy_j_by_load", "jobs"):
        if name in client:
            flatten(client[name], f"battery.{name}", out)
    return out


def figures_v2(client: dict[str, Any]) -> dict[str, Any]:
    """Formats 2 to 4: one record per mode under ``modes``, ``battery`` as one record (format
    4's ``f1_deployed`` is the ``f1_int8`` of the earlier ones)."""
    out: dict[str, Any] = {k: client[k] for k in IDENTITY if k in client}
    for mode, record in client.get("modes", {}).items():
        for figure, value in record.items():
            if value is None or value == {}:
                continue
            figure = "f1_deployed" if figure == "f1_int8" else figure
            flatten(value, f"{mode}.{figure}", out)
    out["payload_bytes.down"] = client.get("payload_bytes_down")
    out["payload_bytes.up"] = client.get("payload_bytes_up")
    if client.get("battery"):
        flatten(client["battery"], "battery", out)
    return out


def per_user(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """user → figure path → value."""
    read = figures_v2 if report.get("format", 1) >= 2 else figures_v1
    return {str(c["user"]): read(c) for c in report["clients"]}


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) <= 1e-9
    return a == b


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    old, new = (json.loads(Path(p).read_text()) for p in argv)
    a, b = per_user(old), per_user(new)
    problems: list[str] = []
    compared = 0
    only_old: set[str] = set()
    only_new: set[str] = set()
    for user in sorted(set(a) | set(b)):
        if user not in a or user not in b:
            problems.append(f"user {user}: only in {'new' if user in b else 'old'}")
            continue
        for path in sorted(set(a[user]) | set(b[user])):
            if path not in b[user]:
                only_old.add(path.split(".", 1)[-1] if "." in path else path)
                continue
            if path not in a[user]:
                only_new.add(path.split(".", 1)[-1] if "." in path else path)
                continue
            compared += 1
            if not equal(a[user][path], b[user][path]):
                problems.append(f"user {user}: {path}: {a[user][path]!r} != {b[user][path]!r}")
    summaries: dict[str, Any] = {}
    flatten(old.get("summary", {}), "", summaries)
    new_summaries: dict[str, Any] = {}
    flatten(new.get("summary", {}), "", new_summaries)
    for path in sorted(set(summaries) & set(new_summaries)):
        compared += 1
        if not equal(summaries[path], new_summaries[path]):
            problems.append(f"summary {path}: {summaries[path]!r} != {new_summaries[path]!r}")
    print(f"{len(a)} users, {compared} shared figures compared, {len(problems)} differ")
    if only_old:
        print(f"figures only in the old report: {sorted(only_old)}")
    if only_new:
        print(f"figures only in the new report: {sorted(only_new)}")
    for line in problems[:50]:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

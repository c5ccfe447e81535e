"""``report.html``: a run's summary, per-user table and figures on one self-contained page.

Figures are embedded as base64 PNG, so the page reads anywhere without the terminal or the
rest of the output directory.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fedhar.enums import MODES, PAPER_MODES
from fedhar.results.figures import MODE_LABELS, PAPER_TABLE2_WISDM
from fedhar.results.record import ClientRecord

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.bad { color: #a00; }
"""


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: int = 1) -> str:
    head = "".join(
        f'<th class="l">{html.escape(h)}</th>' if i < left else f"<th>{html.escape(h)}</th>"
        for i, h in enumerate(header)
    )
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="l">{_fmt(v)}</td>' if i < left else f"<td>{_fmt(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render(
    report: Mapping[str, Any],
    figures: Sequence[tuple[str, Path]],
    path: Path,
    sweep: Sequence[Mapping[str, Any]] = (),
) -> Path:
    """Writes ``path`` from a ``report.json`` payload, ``(title, png)`` figures and optional
    sweep rows (``{"window": T, "mean": {mode: F1}}``)."""
    header = report.get("header", {})
    clients = [ClientRecord.from_dict(c) for c in report.get("clients", [])]
    summary = report.get("summary", {})
    modes = [m for m in MODES if m in summary]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>fedhar report: {html.escape(str(header.get('scenario', '')))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>fedhar report: {html.escape(str(header.get('scenario', '')))}</h1>",
        _table(
            ["field", "value"],
            [
                [k, v if not isinstance(v, list) else ", ".join(map(str, v))]
                for k, v in header.items()
            ],
        ),  # fmt: skip
        "<h2>Summary (macro-F1 over users)</h2>",
        _table(
            ["mode", "mean", "std", "min", "max", "mean int8", "users improved", "users"],
            [
                [
                    MODE_LABELS.get(m, m),
                    summary[m].get("mean"),
                    summary[m].get("std"),
                    summary[m].get("min"),
                    summary[m].get("max"),
                    summary[m].get("mean_int8"),
                    summary[m].get("improved"),
                    summary[m].get("n_users"),
                ]
                for m in modes
            ],
        ),
    ]
    if sweep:
        parts.append("<h2>Table II: mean macro-F1 over input sizes (paper: WISDM v1.1)</h2>")
        rows = []
        for r in sweep:
            paper = PAPER_TABLE2_WISDM.get(int(r["window"]), {})
            rows.append(
                [f"({r['window']},3)"]
                + [r["mean"].get(m) for m in PAPER_MODES]
                + [paper.get(m) for m in PAPER_MODES]
            )
        parts.append(
            _table(
                ["input", "No Pers.", "TL", "Full", "paper No Pers.", "paper TL", "paper Full"],
                rows,
            )
        )
    for title, png in figures:
        parts += [f"<h2>{html.escape(title)}</h2>", _image(png, title)]
    parts.append("<h2>Per user</h2>")
    train_modes = [m for m in modes if m.trains]
    columns = ["user", "status", "n_train", "n_test"]
    columns += [f"F1 {MODE_LABELS.get(m, m)}" for m in modes]
    columns += [f"F1 int8 {MODE_LABELS.get(m, m)}" for m in modes]
    columns += [f"RAM {MODE_LABELS.get(m, m)} (B)" for m in train_modes]
    columns += [f"energy {MODE_LABELS.get(m, m)} (J)" for m in train_modes]
    columns += ["payload down (B)", "reason"]
    rows = []
    for c in clients:
        row: list[Any] = [c.user, c.status.value, c.n_train, c.n_test]
        row += [c.modes[m].f1 if m in c.modes else None for m in modes]
        row += [c.modes[m].f1_int8 if m in c.modes else None for m in modes]
        row += [c.modes[m].memory_bytes.get("total") if m in c.modes else None for m in train_modes]
        row += [c.modes[m].energy_j if m in c.modes else None for m in train_modes]
        row += [c.payload_bytes_down, c.reason]
        rows.append(row)
    parts.append(_table(columns, rows, left=2))
    parts.append("</body></html>\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path

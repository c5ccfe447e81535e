"""HTML pages of every command: one style, tables and embedded figures.

:func:`write_page` writes one self-contained document: figures are embedded as base64 PNG
(:func:`image`), so a page reads anywhere without the terminal or the rest of the output
directory. :func:`table`, :func:`heading` and :func:`paragraph` build its parts and
:func:`escape` anything else. :func:`render` is the run's ``report.html``; the battery study's
page (:mod:`fedhar.studies.battery_report`) is built from the same helpers.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fedhar.enums import MODES, PAPER_MODES
from fedhar.files import write_atomic
from fedhar.results.figures import MODE_LABELS, PAPER_TABLE2_WISDM
from fedhar.results.record import ClientRecord

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
"""


def escape(value: object) -> str:
    """``value`` as HTML text."""
    return html.escape(str(value))


def cell(value: object, number: str = ".3f") -> str:
    """A table cell's text: ``–`` for None, a float in the ``number`` format, anything else
    escaped."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return format(value, number)
    return escape(value)


def _row(tag: str, texts: Sequence[str], left: int) -> str:
    cells = "".join(
        f'<{tag} class="l">{text}</{tag}>' if i < left else f"<{tag}>{text}</{tag}>"
        for i, text in enumerate(texts)
    )
    return f"<tr>{cells}</tr>"


def table(
    header: Sequence[str], rows: Sequence[Sequence[Any]], *, left: int = 1, number: str = ".3f"
) -> str:
    """A table of ``rows`` under ``header``; the first ``left`` columns (labels) are aligned
    left, the others right; floats are written in the ``number`` format."""
    head = _row("th", [escape(h) for h in header], left)
    body = "".join(_row("td", [cell(v, number) for v in row], left) for row in rows)
    return f"<table>{head}{body}</table>"


def heading(text: str) -> str:
    """A section heading."""
    return f"<h2>{escape(text)}</h2>"


def paragraph(text: str) -> str:
    """A paragraph of plain text."""
    return f"<p>{escape(text)}</p>"


def image(path: Path, alt: str) -> str:
    """The PNG at ``path``, embedded in the page."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def write_page(path: Path, title: str, parts: Iterable[str]) -> Path:
    """Writes a self-contained page: ``title`` as its title and first heading, then
    ``parts`` (HTML); returns ``path``."""
    lines = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        *parts,
        "</body></html>\n",
    ]
    write_atomic(path, "\n".join(lines))
    return path


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
        table(
            ["field", "value"],
            [
                [k, v if not isinstance(v, list) else ", ".join(map(str, v))]
                for k, v in header.items()
            ],
        ),  # fmt: skip
        heading("Summary (macro-F1 over users)"),
        table(
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
        parts.append(heading("Table II: mean macro-F1 over input sizes (paper: WISDM v1.1)"))
        rows = []
        for r in sweep:
            paper = PAPER_TABLE2_WISDM.get(int(r["window"]), {})
            rows.append(
                [f"({r['window']},3)"]
                + [r["mean"].get(m) for m in PAPER_MODES]
                + [paper.get(m) for m in PAPER_MODES]
            )
        parts.append(
            table(
                ["input", "No Pers.", "TL", "Full", "paper No Pers.", "paper TL", "paper Full"],
                rows,
            )
        )
    for title, png in figures:
        parts += [heading(title), image(png, title)]
    parts.append(heading("Per user"))
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
    parts.append(table(columns, rows, left=2))
    return write_page(path, f"fedhar report: {header.get('scenario', '')}", parts)

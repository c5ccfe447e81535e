"""HTML pages of every command: one style, tables and embedded figures.

:func:`write_page` writes one self-contained document: figures are embedded as base64 PNG
(:func:`image`), so a page reads anywhere without the terminal or the rest of the output
directory. :func:`table`, :func:`heading` and :func:`paragraph` build its parts and
:func:`escape` anything else; :func:`section` wraps a part under an anchor. The run's
``report.html`` (:mod:`fedhar.results.run_page`) and the battery study's page
(:mod:`fedhar.studies.battery_report`) are built from these helpers.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fedhar.files import write_atomic

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; overflow-wrap: anywhere; }
tr.skipped td { background: #fff4e0; }
img { max-width: 100%; height: auto; border: 1px solid #eee; margin: 0.5em 0; }
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


def _row(tag: str, texts: Sequence[str], left: int, css: str = "") -> str:
    cells = "".join(
        f'<{tag} class="l">{text}</{tag}>' if i < left else f"<{tag}>{text}</{tag}>"
        for i, text in enumerate(texts)
    )
    return f'<tr class="{css}">{cells}</tr>' if css else f"<tr>{cells}</tr>"


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    left: int = 1,
    number: str = ".3f",
    marked: Sequence[bool] = (),
) -> str:
    """A table of ``rows`` under ``header``; the first ``left`` columns (labels) are aligned
    left, the others right; floats are written in the ``number`` format. A row whose entry in
    ``marked`` is True is shaded (class ``skipped``)."""
    flags = [*marked, *[False] * (len(rows) - len(marked))]
    head = _row("th", [escape(h) for h in header], left)
    body = "".join(
        _row("td", [cell(v, number) for v in row], left, "skipped" if flag else "")
        for row, flag in zip(rows, flags, strict=False)
    )
    return f"<table>{head}{body}</table>"


def section(anchor: str, title: str, parts: Iterable[str]) -> str:
    """A ``<section id=anchor>`` headed by ``title`` holding ``parts`` (HTML)."""
    return f'<section id="{escape(anchor)}">{heading(title)}{"".join(parts)}</section>'


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

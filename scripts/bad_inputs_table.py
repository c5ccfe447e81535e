"""Prints docs/bad_inputs.md: every case of tests/test_bad_input.py run through the real CLI,
with its exit code and the stderr line exactly as printed (temporary paths shortened to
``TMP``).

    .venv/bin/python scripts/bad_inputs_table.py > docs/bad_inputs.md
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def main() -> int:
    """Runs every case and prints the Markdown table; returns 0."""
    spec = importlib.util.spec_from_file_location(
        "bad_inputs", HERE / "tests" / "test_bad_input.py"
    )
    assert spec is not None and spec.loader is not None
    cases = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = cases
    spec.loader.exec_module(cases)
    rows = []
    for case in cases.CASES:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            os.environ["FEDHAR_CACHE_DIR"] = str(root / "cache")
            (root / "out").mkdir()
            argv = case.setup(root)
            err, out = io.StringIO(), io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = cases.main(argv)
            message = " ".join(err.getvalue().strip().replace(tmp, "TMP").split())
            command = " ".join(a.replace(tmp, "TMP") for a in argv)
        rows.append((case.name, command, code, message.replace("|", "\\|")))
    print("# Bad inputs: what fedhar prints\n")
    print(
        "Every row is a case of `tests/test_bad_input.py`, run through the real command line by "
        "`scripts/bad_inputs_table.py`, which wrote this page; the message is stderr as printed "
        "(the temporary folder shown as `TMP`). Each must exit 2 with this one line, print no "
        "traceback, and leave the output folder as it was. Ctrl-C exits 130 with one line; a "
        "closed pipe (`fedhar ... | head`) ends quietly.\n"
    )
    print("| # | case | command | exit | message |")
    print("|---|---|---|---|---|")
    for i, (name, command, code, message) in enumerate(rows, start=1):
        print(f"| {i} | {name} | `fedhar {command}` | {code} | `{message}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

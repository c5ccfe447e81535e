"""``report.html`` as a person sees it: opened in headless Chromium at a 1280-px viewport, the
cost section (and, for a battery run, the battery section) is laid out with a size, no table
is wider than the page, and the screenshot shows those sections drawn.

Chromium (Debian's ``chromium``) is installed by ``scripts/setup.sh``; without it the tests
skip, except in CI (``CI=true``), where they fail. Each Chromium runs in its own process group,
killed when it is done or times out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fedhar.cli import main

REPO = Path(__file__).resolve().parents[2]
VIEWPORT = 1280
IN_CI = os.environ.get("CI", "").lower() == "true"
TIMEOUT_S = 240 if IN_CI else 90
MEASURE = """<script>
window.addEventListener("load", () => {
  const box = (id) => {
    const e = document.getElementById(id);
    if (!e) return null;
    const r = e.getBoundingClientRect();
    const style = getComputedStyle(e);
    return {top: r.top + window.scrollY, width: r.width, height: r.height,
            display: style.display, visibility: style.visibility};
  };
  const out = {
    innerWidth: window.innerWidth,
    pageWidth: document.documentElement.scrollWidth,
    pageHeight: document.documentElement.scrollHeight,
    sections: {battery: box("battery"), cost: box("cost")},
    tables: [...document.querySelectorAll("table")].map((t) => t.scrollWidth),
  };
  const pre = document.createElement("pre");
  pre.id = "fedhar-measure";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        message = "chromium is not installed (scripts/setup.sh installs it as root)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def _run_chromium(args: list[str], profile: Path) -> str:
    """Runs headless Chromium with ``args`` in its own process group; returns its stdout.
    Every process of the group is killed when it ends or times out."""
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=10000",
        *args,
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish within {TIMEOUT_S} s: {' '.join(args)}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    assert proc.returncode == 0, f"chromium exited with {proc.returncode}"
    return out


def measure(page: Path, work: Path) -> dict[str, Any]:
    """Layout figures of ``page`` at a :data:`VIEWPORT`-px window, measured in the browser by
    a script added to a copy of it (the page itself is not changed)."""
    work.mkdir(parents=True, exist_ok=True)
    probe = work / "probe.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = _run_chromium(
        [f"--window-size={VIEWPORT},900", "--dump-dom", probe.as_uri()], work / "profile"
    )
    found = re.search(r'<pre id="fedhar-measure">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    return json.loads(found.group(1))


def screenshot(page: Path, height: int, work: Path) -> Image.Image:
    """A :data:`VIEWPORT` × ``height`` px screenshot of ``page``."""
    png = work / "screenshot.png"
    _run_chromium(
        [f"--window-size={VIEWPORT},{height}", f"--screenshot={png}", page.as_uri()],
        work / "profile",
    )
    return Image.open(png).convert("L")


def _check_page(out: Path, work: Path, *, battery: bool) -> None:
    page = out / "report.html"
    layout = measure(page, work)
    assert layout["innerWidth"] == VIEWPORT
    assert layout["pageWidth"] <= VIEWPORT, "the page scrolls sideways"
    assert layout["tables"], "no table on the page"
    wide = [w for w in layout["tables"] if w > VIEWPORT]
    assert not wide, f"tables wider than the {VIEWPORT}-px viewport: {wide}"
    names = ["cost", "battery"] if battery else ["cost"]
    if not battery:
        assert layout["sections"]["battery"] is None
    height = min(int(layout["pageHeight"]) + 10, 16000)
    shot = screenshot(page, height, work)
    assert shot.size == (VIEWPORT, height)
    for name in names:
        box = layout["sections"][name]
        assert box is not None, f"section {name} is not in the DOM"
        assert box["width"] > 0 and box["height"] > 0, f"section {name} has no size"
        assert box["display"] != "none" and box["visibility"] == "visible"
        # The section is drawn: its part of the screenshot is not blank.
        top = int(box["top"])
        region = shot.crop((0, top, VIEWPORT, min(height, top + int(box["height"]))))
        low, high = region.getextrema()
        assert high - low > 100, f"section {name} looks blank in the screenshot"


@pytest.fixture(scope="module")
def battery_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "quickstart_battery"
    scenario = str(REPO / "scenarios" / "quickstart_battery.yaml")
    assert main(["run", scenario, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def wisdm_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("browser") / "wisdm2019_loso"
    scenario = str(REPO / "scenarios" / "wisdm2019_loso.yaml")
    argv = ["run", scenario, "--out", str(out), "--data-dir", str(data_dir), "--jobs", "2"]
    assert main(argv) == 0
    return out


def test_battery_report_shows_battery_and_cost_and_fits_the_page(
    battery_run: Path, tmp_path: Path
) -> None:
    _check_page(battery_run, tmp_path, battery=True)


def test_wisdm2019_loso_report_shows_cost_and_fits_the_page(
    wisdm_run: Path, tmp_path: Path
) -> None:
    _check_page(wisdm_run, tmp_path, battery=False)


def test_a_table_wider_than_the_viewport_is_caught(tmp_path: Path) -> None:
    cells = "".join(f"<td>column-{i:03d}-of-a-wide-table</td>" for i in range(60))
    page = tmp_path / "wide.html"
    page.write_text(f"<!doctype html><html><body><table><tr>{cells}</tr></table></body></html>")
    layout = measure(page, tmp_path / "work")
    assert layout["tables"][0] > VIEWPORT

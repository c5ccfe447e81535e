"""The report's figures: PNG at 150 dpi or more and SVG beside it, the same bytes for the same
data, and legends outside the axes, so they never cover data."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from fedhar.enums import Mode
from fedhar.results import figures
from fedhar.results.figures import legend_outside, plt
from fedhar.results.record import ClientRecord, ModeRecord


def _clients() -> list[ClientRecord]:
    out = []
    for k, user in enumerate(("1", "2", "3")):
        trained = ModeRecord(0.9 - k / 10, 0.9, 0.9, [[5, 1], [0, 6]], energy_j=0.4 + k,
                             curve={"loss": [1.0, 0.6, 0.4], "f1": [0.5, 0.7, 0.8]},
                             curve_on="train")  # fmt: skip
        none = ModeRecord(0.6, 0.6, 0.6, [[4, 2], [2, 4]])
        modes = {Mode.NONE: none, Mode.FULL: trained}
        out.append(ClientRecord(user, f"loso-{user}", 12, 12, modes=modes))
    return out


def test_every_figure_is_a_150_dpi_png_and_an_svg_that_repeat(tmp_path: Path) -> None:
    clients = _clients()
    battery = {
        "users": {
            "1": {"energy_j_by_load": {"sensor": 1.0, "training": 2.0}, "soc_end": {"1": 0.8},
                  "jobs": {"full": 1}, "skipped_rounds": [2]},
        },
    }  # fmt: skip
    draw = {
        "f1_by_user": lambda p: figures.f1_by_user(clients, p),
        "confusion": lambda p: figures.confusion(clients, ["a", "b"], p),
        "learning_curves": lambda p: figures.learning_curves(clients, p),
        "soc_by_round": lambda p: figures.soc_by_round(battery, p),
        "energy_by_user": lambda p: figures.energy_by_user(battery, p),
    }
    for name, fn in draw.items():
        first = [fn(tmp_path / "a" / f"{name}.png"), tmp_path / "a" / f"{name}.svg"]
        second = [fn(tmp_path / "b" / f"{name}.png"), tmp_path / "b" / f"{name}.svg"]
        assert all(p.read_bytes() == q.read_bytes() for p, q in zip(first, second, strict=True))
        dpi = Image.open(first[0]).info["dpi"]
        assert min(dpi) >= 149.9, (name, dpi)
        assert first[1].read_text().lstrip().startswith("<?xml"), name


def test_legend_stands_outside_the_axes() -> None:
    fig, ax = plt.subplots(figsize=(4, 3))
    for k in range(6):
        ax.plot([0, 1, 2], [k, k + 1, k], label=f"series {k}")
    legend_outside(ax)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    axes = ax.get_window_extent(renderer)
    plt.close(fig)
    assert legend.x0 >= axes.x1  # wholly right of the plotting area

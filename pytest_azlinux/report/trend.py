"""Charts of metrics across runs (e.g. throughput per image over nights), as one PNG.

One panel per metric (units differ), one line per image / test / metric. Needs matplotlib
(the ``trend`` extra); rendered with the Agg backend, so no display is needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ReportError
from .compare import ImageRun, load_run

MAX_LEGEND = 20


@dataclass(frozen=True)
class Run:
    label: str
    images: dict[str, ImageRun]


@dataclass
class Series:
    """One line: the value of a metric of one test of one image, per run (None = absent)."""

    image: str
    test: str
    metric: str
    unit: str
    better: str
    values: list[float | None] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.image} {self.test}"

    @property
    def points(self) -> int:
        return sum(v is not None for v in self.values)


def run_paths(paths: Sequence[Path]) -> list[Path]:
    """The runs, in order: the paths given, or the subdirectories (by name) of one parent."""
    if len(paths) == 1 and paths[0].is_dir() and not any(paths[0].glob("*.xml")):
        subdirs = sorted((p for p in paths[0].iterdir() if p.is_dir() and any(p.glob("*.xml"))),
                         key=lambda p: p.name)
        if not subdirs:
            raise ReportError(f"{paths[0]}: neither JUnit reports (*.xml) nor run "
                              "subdirectories holding them")
        return subdirs
    return list(paths)


def load_runs(paths: Sequence[Path]) -> list[Run]:
    return [Run(p.name or str(p), load_run(p)) for p in run_paths(paths)]


def collect_series(runs: Sequence[Run], metrics: Iterable[str] = ()) -> list[Series]:
    wanted = set(metrics)
    series: dict[tuple[str, str, str], Series] = {}
    for index, run in enumerate(runs):
        for image in run.images.values():
            for case in image.cases.values():
                for m in case.metrics:
                    if wanted and m.name not in wanted:
                        continue
                    key = (image.name, case.nodeid, m.name)
                    line = series.get(key)
                    if line is None:
                        line = series[key] = Series(image.name, case.nodeid, m.name, m.unit,
                                                    m.better, [None] * len(runs))
                    line.values[index] = m.value
    if not series:
        which = f" named {', '.join(sorted(wanted))}" if wanted else ""
        raise ReportError(f"no metrics{which} in the {len(runs)} run(s) given")
    return [series[k] for k in sorted(series, key=lambda k: (k[2], k[0], k[1]))]


# Ten well-separated hues, then the same hues lighter: distinct colours for 20 lines; beyond
# that, the dash pattern and the marker change too, so no two lines of a panel look alike.
_DARK = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
         "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22")
_LIGHT = ("#aec7e8", "#ff9896", "#98df8a", "#ffbb78", "#c5b0d5",
          "#c49c94", "#f7b6d2", "#9edae5", "#c7c7c7", "#dbdb8d")
_PALETTE = _DARK + _LIGHT
_DASHES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def line_style(index: int) -> tuple[str, str, str]:
    """(colour, line style, marker) of the ``index``-th line of a panel; all distinct."""
    colour = _PALETTE[index % len(_PALETTE)]
    round_ = index // len(_PALETTE)
    # Lighter hues are harder to see: give them a dashed line as a second cue.
    dash = _DASHES[(round_ + (index % len(_PALETTE) >= len(_DARK))) % len(_DASHES)]
    marker = _MARKERS[round_ % len(_MARKERS)]
    return colour, dash, marker


def build_figure(runs: Sequence[Run], series: Sequence[Series],
                 title: str = "azl metrics across runs") -> Any:
    """The chart as a matplotlib figure (constrained layout: the title gets its own room)."""
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ReportError("azl report trend needs matplotlib: pip install "
                          "'pytest-azlinux[trend]'") from None
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    names = sorted({s.metric for s in series})
    labels = [r.label for r in runs]
    fig = Figure(figsize=(12, 3.6 * len(names)), dpi=100, layout="constrained")
    axes = fig.subplots(len(names), 1, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        lines = [s for s in series if s.metric == name]
        for index, s in enumerate(lines):
            xs = [i for i, v in enumerate(s.values) if v is not None]
            ys = [v for v in s.values if v is not None]
            colour, dash, marker = line_style(index)
            ax.plot(xs, ys, color=colour, linestyle=dash, marker=marker, markersize=4,
                    label=s.label)
        unit = lines[0].unit
        ax.set_title(f"{name} ({lines[0].better} is better)", fontsize=10, loc="left")
        ax.set_ylabel(f"{name} [{unit}]" if unit else name)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
        ax.grid(True, alpha=0.3)
        if len(lines) <= MAX_LEGEND:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
        else:
            ax.text(1.01, 0.5, f"{len(lines)} series", transform=ax.transAxes)
    fig.suptitle(title, fontsize=13)
    return fig


def render_png(runs: Sequence[Run], series: Sequence[Series], out: Path,
               title: str = "azl metrics across runs") -> tuple[int, int]:
    """Draw the chart; returns its (width, height) in pixels."""
    fig = build_figure(runs, series, title)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    except OSError as exc:
        raise ReportError(f"{out}: cannot write: {exc.strerror or exc}") from None
    width, height = fig.canvas.get_width_height()
    return int(width), int(height)


def trend(paths: Sequence[Path], out: Path, metrics: Iterable[str] = ()) -> list[Series]:
    runs = load_runs(paths)
    series = collect_series(runs, metrics)
    render_png(runs, series, out)
    return series

"""Bar charts as inline SVG, computed here and drawn by the ``bar_chart`` template macro: every
bar has a ``<title>`` (its label and value) and the chart a table with the same numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 480, 220
TOP, BOTTOM, SIDE = 22, 34, 6  # room for the values above the bars and the labels below


@dataclass(frozen=True)
class Bar:
    label: str  # in full, for the title and the table
    short: str  # under the bar
    value: int
    x: float
    y: float
    width: float
    height: float
    css: str


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    summary: str
    x_label: str
    y_label: str
    bars: tuple[Bar, ...]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def baseline(self) -> float:
        return float(self.height - BOTTOM)

    @property
    def empty(self) -> bool:
        return not any(b.value for b in self.bars)


def bar_chart(
    chart_id: str,
    title: str,
    x_label: str,
    y_label: str,
    points: Sequence[tuple[str, str, int]],
    css: str | Sequence[str] = "bar",
) -> Chart:
    """``points`` are (label, short label, value); ``css`` one class for all bars or one each."""
    classes = [css] * len(points) if isinstance(css, str) else list(css)
    top = max((v for _, _, v in points), default=0) or 1
    plot_w, plot_h = WIDTH - 2 * SIDE, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(points), 1)
    bars = []
    for i, ((label, short, value), klass) in enumerate(zip(points, classes, strict=True)):
        height = plot_h * value / top
        bars.append(
            Bar(label, short, value, x=round(SIDE + i * slot + slot * 0.15, 2),
                y=round(TOP + plot_h - height, 2), width=round(slot * 0.7, 2), height=round(height, 2),
                css=klass)
        )  # fmt: skip
    peak = max(points, key=lambda p: p[2]) if points else None
    summary = (
        f"{len(points)} bars; the highest is {peak[0]} with {peak[2]:,}; the last is "
        f"{points[-1][0]} with {points[-1][2]:,}."
        if peak and peak[2]
        else "No data yet: every bar is zero."
    )
    return Chart(chart_id, title, summary, x_label, y_label, tuple(bars))

"""SVG chart primitives and layout helpers for the HTML report (pure geometry, no markup).

A :class:`Chart` is a list of marks (rectangles, texts, lines) in a ``width x height`` user-space
box; the Jinja template draws them as inline SVG, escaping every text, and the page's CSS colours
them through their ``cls`` (so light/dark/print themes need no change here). Tooltips are SVG
``<title>`` children (``tip``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "CHAR_PX",
    "WIDTH",
    "Chart",
    "HBarLayout",
    "LegendItem",
    "Line",
    "Mark",
    "Rect",
    "Text",
    "fit_label",
    "nice_ticks",
]

#: Default chart width in SVG user units (px at 100 % zoom).
WIDTH = 960
#: Approximate advance of one 12 px character (monospace labels; generous for sans-serif).
CHAR_PX = 7.2
#: Longest row label in characters before it is shortened (the tooltip keeps the full name).
MAX_LABEL_CHARS = 34


@dataclass(frozen=True)
class Rect:
    """A rectangle (bars, cells); ``tip`` becomes its hover tooltip."""

    x: float
    y: float
    w: float
    h: float
    cls: str
    tip: str = ""
    kind: ClassVar[str] = "rect"


@dataclass(frozen=True)
class Text:
    """A text label; ``anchor`` is ``start``, ``middle`` or ``end``."""

    x: float
    y: float
    text: str
    cls: str = ""
    anchor: str = "start"
    tip: str = ""
    kind: ClassVar[str] = "text"


@dataclass(frozen=True)
class Line:
    """A line segment (axes, grid lines, reference lines)."""

    x1: float
    y1: float
    x2: float
    y2: float
    cls: str = "grid"
    kind: ClassVar[str] = "line"


Mark = Rect | Text | Line


@dataclass(frozen=True)
class LegendItem:
    """One legend entry: a swatch of class ``cls`` and its label."""

    cls: str
    label: str


@dataclass(frozen=True)
class Chart:
    """One SVG chart.

    Attributes:
        id: unique element id (built from indices, never from user text).
        title: the chart's title (SVG ``<title>`` and the figure caption).
        desc: a sentence describing what the chart shows and its key numbers (SVG ``<desc>``).
        width: width in SVG user units.
        height: height in SVG user units.
        marks: what to draw.
        legend: legend entries (drawn in HTML above the chart).
        note: a short line shown under the chart (e.g. dead/saturated channels).
    """

    id: str
    title: str
    desc: str
    width: float
    height: float
    marks: tuple[Mark, ...]
    legend: tuple[LegendItem, ...] = ()
    note: str = ""


def nice_ticks(vmax: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``vmax`` (steps of 1, 2, 2.5 or 5 x 10^k).

    Example:
        >>> nice_ticks(2.18)
        [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    """
    if not vmax > 0 or not math.isfinite(vmax):
        return [0.0, 1.0]
    raw = vmax / count
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1.0, 2.0, 2.5, 5.0, 10.0) if raw <= m * mag * (1 + 1e-9))
    n = math.ceil(vmax / step - 1e-9)
    return [round(i * step, 12) for i in range(n + 1)]


def fit_label(text: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """Shorten a label to ``max_chars`` keeping its end (``…layers.3.attn``); dotted tails say most."""
    return text if len(text) <= max_chars else "…" + text[-(max_chars - 1) :]


@dataclass(frozen=True)
class HBarLayout:
    """Geometry of a horizontal bar chart: row labels left, value axis on top, value labels right.

    Attributes:
        rows: number of rows.
        label_w: width of the row-label column.
        row_h: height of one row.
        vmax: value at the right end of the plot area.
        width: total width.
        top: y of the first row (room for the axis above).
        right: room right of the plot for value labels.
    """

    rows: int
    label_w: float
    row_h: float
    vmax: float
    width: float = WIDTH
    top: float = 40.0
    right: float = 64.0

    @classmethod
    def for_labels(cls, labels: Sequence[str], row_h: float, vmax: float, **kw: float) -> HBarLayout:
        """A layout whose label column fits ``labels`` (shortened to ``MAX_LABEL_CHARS``)."""
        longest = max((len(fit_label(s)) for s in labels), default=4)
        return cls(rows=len(labels), label_w=longest * CHAR_PX + 14, row_h=row_h, vmax=vmax, **kw)

    @property
    def x0(self) -> float:
        """Left end of the plot area."""
        return self.label_w

    @property
    def x1(self) -> float:
        """Right end of the plot area."""
        return self.width - self.right

    @property
    def height(self) -> float:
        """Total height including the axis and a bottom margin."""
        return self.top + self.rows * self.row_h + 8

    def x(self, value: float) -> float:
        """Horizontal position of ``value`` on the linear value axis."""
        return self.x0 + (self.x1 - self.x0) * (value / self.vmax if self.vmax > 0 else 0.0)

    def y(self, row: int) -> float:
        """Vertical position of the top of row ``row``."""
        return self.top + row * self.row_h

    def axis(self, ticks: Sequence[float], fmt: Callable[[float], str], title: str) -> list[Mark]:
        """Vertical grid lines with tick labels on top, and the axis title at the top left."""
        bottom = self.top + self.rows * self.row_h
        marks: list[Mark] = [Text(self.x0, 12, title, "axis-title")]
        for tick in ticks:
            x = self.x(tick)
            marks.append(Line(x, self.top - 4, x, bottom, "grid"))
            marks.append(Text(x, self.top - 8, fmt(tick), "tick", "middle"))
        return marks

    def row_labels(self, labels: Sequence[str], tips: Sequence[str] | None = None) -> list[Mark]:
        """Right-aligned row labels (monospace), vertically centred in each row."""
        tips = tips or labels
        return [
            Text(self.x0 - 8, self.y(i) + self.row_h / 2 + 4, fit_label(label), "lbl", "end", tip)
            for i, (label, tip) in enumerate(zip(labels, tips, strict=True))
        ]

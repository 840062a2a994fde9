"""Side-by-side charts of a comparison: grouped bars, one colour per entry (pure geometry; see :mod:`.svg`).

Per profile, each energy term of each entry (:func:`term_charts`); per layer, matched by name across
entries, the energy on each profile, the MACs, the SOPs and the firing rates (:func:`layer_charts`).
Every value is per sample (energies in pJ); a layer an entry does not have is drawn as "—".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from snnprof.reports.build import Report
from snnprof.reports.model import LayerRow, ModelReport
from snnprof.reports.side import MatchedLayer, SideBySide, TermComparison
from snnprof.reports.svg import CHAR_PX, Chart, HBarLayout, LegendItem, Line, Mark, Rect, Text, nice_ticks
from snnprof.units import format_count, format_energy_pj, format_rate

__all__ = ["GroupRow", "entry_class", "grouped_chart", "layer_charts", "term_charts"]

#: Colour classes of the entries after the first (the ratio chart uses the same ones).
_OTHER_CLASSES = 6
#: Height of one bar, and the padding around each group of bars.
BAR_H, GROUP_PAD = 11.0, 10.0
#: Row label of the layers that are neither synaptic nor neuron layers, summed.
OTHER_LAYERS = "other layers (summed)"

Fmt = Callable[[float], str]


def entry_class(index: int) -> str:
    """CSS class of entry ``index``'s colour (``e0`` for the reference, then ``v1`` .. ``v6``)."""
    return "e0" if index == 0 else f"v{(index - 1) % _OTHER_CLASSES + 1}"


@dataclass(frozen=True)
class GroupRow:
    """One group of bars: a label and one value per series (``None``: the series has no such row).

    Attributes:
        label: the row label (layer or term name).
        values: one value per series, in series order.
        tip: the label's tooltip (default: the label).
        unpriced: per series, events with no price on the profile, in words (drawn as a warning
            after the bar: what the bar leaves out); empty for none.
    """

    label: str
    values: tuple[float | None, ...]
    tip: str = ""
    unpriced: tuple[str, ...] = ()

    @property
    def notes(self) -> tuple[str, ...]:
        """``unpriced`` with one (possibly empty) text per series."""
        return self.unpriced or ("",) * len(self.values)


def _trim_tick(text: str) -> str:
    """``10.0 M`` -> ``10 M`` (axis labels of round values)."""
    head, _, unit = text.partition(" ")
    if "." in head:
        head = head.rstrip("0").rstrip(".")
    return f"{head} {unit}".rstrip()


def _label(value: float, unpriced: str, fmt: Fmt) -> str:
    """A bar's value label; unpriced events are named after the value (``no price: 1.15 G MACs``)."""
    if not unpriced:
        return fmt(value)
    return f"{fmt(value)} + no price: {unpriced}" if value else f"no price: {unpriced}"


def _right_margin(rows: Sequence[GroupRow], fmt: Fmt) -> float:
    """Room right of the plot for the longest label drawn after a full-length bar."""
    longest = max((len(_label(v or 0.0, u, fmt)) for r in rows for v, u in zip(r.values, r.notes, strict=True)),
                  default=0)
    return max(84.0, longest * CHAR_PX + 8)


def _bar(lay: HBarLayout, y: float, value: float | None, *, cls: str, fmt: Fmt, tip: str,
         unpriced: str = "") -> list[Mark]:
    """One bar with its value label, or a "—" where the series has no such row.

    Unpriced events are named after the value, so a short bar never passes for a cheap layer.
    """
    if value is None:
        return [Text(lay.x0 + 4, y + BAR_H - 2, "—", "val small muted", tip=f"{tip}: not in this entry")]
    width = lay.x(value) - lay.x0
    label = _label(value, unpriced, fmt)
    text = f"{tip}: {label}"
    return [Rect(lay.x0, y, max(width, 1.0 if value > 0 else 0.0), BAR_H - 1, cls, text),
            Text(lay.x0 + width + 4, y + BAR_H - 2, label, "val small warn" if unpriced else "val small", tip=text)]


def grouped_chart(chart_id: str, title: str, desc: str, rows: Sequence[GroupRow], *,
                  series: Sequence[tuple[int, str]], fmt: Fmt, axis_title: str, note: str = "") -> Chart:
    """Horizontal grouped bars: one group per row, one bar per series, linear axis from 0.

    Args:
        chart_id: element id (from indices, never from user text).
        title: the chart's title.
        desc: the sentence describing it (SVG ``<desc>``).
        rows: the groups, top to bottom.
        series: ``(entry index, label)`` of each bar in a group (the index picks the colour).
        fmt: formats a value (labels, tooltips and ticks).
        axis_title: the value axis' title.
        note: a line under the chart.

    Returns:
        The chart.
    """
    vmax = max((v for r in rows for v in r.values if v is not None), default=0.0)
    ticks = nice_ticks(vmax)
    group_h = BAR_H * len(series) + GROUP_PAD
    lay = HBarLayout.for_labels([r.label for r in rows], row_h=group_h, vmax=ticks[-1],
                                right=_right_margin(rows, fmt))
    marks: list[Mark] = lay.axis(ticks, lambda v: _trim_tick(fmt(v)), axis_title)
    marks += lay.row_labels([r.label for r in rows], [r.tip or r.label for r in rows])
    for i, row in enumerate(rows):
        if i:
            marks.append(Line(lay.x0 - 4, lay.y(i), lay.x1, lay.y(i), "sep"))
        for j, ((index, label), value, unpriced) in enumerate(zip(series, row.values, row.notes, strict=True)):
            y = lay.y(i) + GROUP_PAD / 2 + j * BAR_H
            marks += _bar(lay, y, value, cls=entry_class(index), fmt=fmt, tip=f"{label}, {row.label}",
                          unpriced=unpriced)
    legend = tuple(LegendItem(entry_class(index), label) for index, label in series)
    return Chart(chart_id, title, desc, lay.width, lay.height, tuple(marks), legend, note)


# --------------------------------------------------------------------------- energy terms


def term_chart(t: TermComparison, number: int, labels: Sequence[str]) -> Chart:
    """Each energy term of each entry on one profile (per sample), unpriced operations named."""
    rows = [GroupRow(term, values, unpriced=unpriced)
            for term, values, unpriced in zip(t.terms, t.values, t.unpriced, strict=True)]
    series = [(k, labels[k]) for k in t.entries]
    totals = "; ".join(f"{labels[k]} {format_energy_pj(v)}" for k, v in zip(t.entries, t.totals, strict=True))
    desc = (f"Grouped bars of the per-sample energy of each term on {t.profile}, one bar per entry "
            f"({', '.join(labels[k] for k in t.entries)}). Totals: {totals}.")
    title = f"Energy per term on {t.profile}, side by side"
    note = "; ".join(f"not comparable: {reason}" for reason in t.reasons)
    return grouped_chart(f"side-terms{number}", title, desc, rows, series=series, fmt=format_energy_pj,
                         axis_title="energy per sample", note=note)


def term_charts(report: Report) -> list[Chart]:
    """One grouped chart of the energy terms per profile (empty for a single entry)."""
    if report.side is None:
        return []
    labels = [m.label for m in report.models]
    return [term_chart(t, k, labels) for k, t in enumerate(report.side.terms)]


# --------------------------------------------------------------------------- layers

Getter = Callable[[LayerRow], float | None]
Series = list[tuple[int, str]]


def _layer_rows(layers: Sequence[MatchedLayer], series: Series, get: Getter, category: str | None, *,
                keep_zero: bool = False, profile: str | None = None) -> list[GroupRow]:
    """One group per matched layer (of ``category``, when given) with a nonzero value in some series.

    ``keep_zero`` keeps layers whose values are all 0 (a layer that never fired says something);
    ``profile`` names the layer's synaptic operations it leaves unpriced (and keeps those layers).
    """
    out = []
    for layer in layers:
        if category is not None and layer.category != category:
            continue
        rows = [layer.rows[k] for k, _ in series]
        values = tuple(None if r is None else get(r) for r in rows)
        unpriced = tuple(layer.unpriced[profile][k] for k, _ in series) if profile in layer.unpriced else ()
        if any(values) or any(unpriced) or (keep_zero and any(v is not None for v in values)):
            out.append(GroupRow(layer.name, values, unpriced=unpriced))
    return out


def _layer_desc(what: str, rows: Sequence[GroupRow], series: Series) -> str:
    """The ``<desc>`` sentence of a per-layer chart."""
    return (f"Grouped bars of the {what} of {len(rows)} layers matched by name across "
            f"{', '.join(label for _, label in series)} (the union of their layers in call order); "
            "a dash marks a layer an entry does not have.")


def _energy_chart(side: SideBySide, models: Sequence[ModelReport], profile: str, number: int) -> Chart | None:
    """Per-layer energy on ``profile`` of every entry priced there, with the other layers summed."""
    series = [(m.index, m.label) for m in models if m.energy(profile) is not None]
    if len(series) < 2:
        return None
    rows = _layer_rows(side.layers, series, lambda r: r.energy_pj.get(profile, 0.0), None, profile=profile)
    other = side.other_energy_pj.get(profile, ())
    if any(other[k] for k, _ in series):
        rows.append(GroupRow(OTHER_LAYERS, tuple(other[k] for k, _ in series),
                             "elementwise, reshape, pooling and other layers that are neither synaptic nor neuron"))
    if not rows:
        return None
    return grouped_chart(f"side-energy{number}", f"Energy per layer on {profile}, side by side",
                         _layer_desc(f"per-sample energy on {profile}", rows, series), rows, series=series,
                         fmt=format_energy_pj, axis_title="energy per sample")


def _count_chart(side: SideBySide, models: Sequence[ModelReport], key: str, what: str) -> Chart | None:
    """Per-layer ``macs`` or ``sops`` of every entry (synaptic layers with a nonzero value in some entry)."""
    series = [(m.index, m.label) for m in models]
    rows = _layer_rows(side.layers, series, lambda r: getattr(r, key), "synaptic")
    if not rows:
        return None
    return grouped_chart(f"side-{key}", f"{what} per layer, side by side", _layer_desc(f"{what} per sample", rows,
                         series), rows, series=series, fmt=format_count, axis_title=f"{what} per sample")


def _rate_chart(side: SideBySide, models: Sequence[ModelReport], valid: bool) -> Chart | None:
    """Firing rate (or valid firing rate) per neuron layer of every SNN entry that records it."""
    series = [(m.index, m.label) for m in models if not m.is_ann and (m.has_valid_rate or not valid)]
    get: Getter = (lambda r: r.firing_rate_valid) if valid else (lambda r: r.firing_rate)
    rows = _layer_rows(side.layers, series, get, "neuron", keep_zero=True) if series else []
    if not rows:
        return None
    if valid:
        title, what, chart_id = "Valid firing rate per layer, side by side", "valid firing rate", "side-valid"
    else:
        title, what, chart_id = "Firing rate per layer, side by side", "firing rate", "side-rate"
    axis = "spikes in valid slots / valid updates" if valid else "spikes / neuron updates"
    return grouped_chart(chart_id, title, _layer_desc(what, rows, series), rows, series=series, fmt=format_rate,
                         axis_title=axis)


def layer_charts(report: Report) -> list[Chart]:
    """Per-layer side-by-side charts: energy on each profile, MACs, SOPs, firing rates (empty for one entry)."""
    side, models = report.side, report.models
    if side is None:
        return []
    charts = [_energy_chart(side, models, p, k) for k, p in enumerate(report.profiles)]
    charts += [_count_chart(side, models, "macs", "MACs (dense input)"), _count_chart(side, models, "sops", "SOPs"),
               _rate_chart(side, models, valid=False), _rate_chart(side, models, valid=True)]
    return [c for c in charts if c is not None]

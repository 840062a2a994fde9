"""The report's charts, laid out as SVG marks from the report model (pure; see :mod:`.svg`).

Charts (all per sample): operations per layer (MACs vs SOPs with the dense-MAC outline), energy
per layer stacked by term for each profile, energy terms per profile, firing rate per layer,
firing rate per time step (heatmap), per-channel firing-rate histograms with dead and saturated
channels, and for comparisons the ratios against the first entry on a log scale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from snnprof.reports.build import Report
from snnprof.reports.model import EnergySummary, ModelReport, NeuronLayer
from snnprof.reports.svg import WIDTH, Chart, HBarLayout, LegendItem, Line, Mark, Rect, Text, fit_label, nice_ticks
from snnprof.units import format_count, format_energy_pj, format_rate

__all__ = [
    "HEAT_BINS",
    "TERM_CLASSES",
    "channel_charts",
    "comparison_chart",
    "energy_charts",
    "energy_layers_chart",
    "energy_terms_chart",
    "model_charts",
    "ops_chart",
    "rate_layers_chart",
    "rate_steps_chart",
    "term_class",
]

#: Energy term -> CSS class of its colour (other terms share ``t-x``).
TERM_CLASSES: dict[str, str] = {
    "mac": "t0",
    "ac": "t1",
    "neuron_update": "t2",
    "spike": "t3",
    "mem_weight_read": "t4",
    "mem_input_read": "t5",
    "mem_output_write": "t6",
    "mem_state_read": "t7",
    "mem_state_write": "t8",
    "crossbar": "t9",
}
#: Colour bins of the firing-rate heatmap (classes ``h1`` .. ``h8``; ``hz`` is exactly zero).
HEAT_BINS = 8
#: Histogram bins between "dead" and "saturated" in the per-channel charts.
CHANNEL_BINS = 10
_VARIANT_CLASSES = 6
_TRAILING_ZEROS = re.compile(r"^(\d+)\.0+(?=\D|$)|(?<=\.\d)0+(?=\D|$)")
_MAX_DECADES = 6


def term_class(term: str) -> str:
    """CSS class of an energy term's colour."""
    return TERM_CLASSES.get(term, "t-x")


def _pct(value: float) -> str:
    """A firing rate (0..1) as a short percentage for labels (three significant digits)."""
    return format_rate(value).replace(" ", "\u00a0")


def _trim(text: str) -> str:
    """Drop trailing zeros of the number in a formatted label (``10.0 M`` -> ``10 M``, ``2.50 mJ`` -> ``2.5 mJ``)."""
    return _TRAILING_ZEROS.sub(r"\1", text)


def _count_tick(value: float) -> str:
    """Axis label of an operation count."""
    return _trim(format_count(value))


def _energy_tick(value: float) -> str:
    """Axis label of an energy in pJ."""
    return _trim(format_energy_pj(value))


def _pct_tick(value: float) -> str:
    """A round axis value (0..1) as a percentage without trailing zeros (``12.5 %``)."""
    return f"{value * 100:.4g}\u00a0%"


# --------------------------------------------------------------------------- operations


def ops_chart(model: ModelReport) -> Chart | None:
    """MACs (dense input) and exact SOPs per synaptic layer, with dense MACs as an outline.

    Returns:
        The chart, or ``None`` when the model has no synaptic layer.
    """
    rows = [row for row in model.layers if row.category == "synaptic"]
    if not rows:
        return None
    vmax = max(max(r.dense_macs, r.macs, r.sops) for r in rows)
    ticks = nice_ticks(vmax)
    lay = HBarLayout.for_labels([r.name for r in rows], row_h=30, vmax=ticks[-1])
    marks: list[Mark] = lay.axis(ticks, _count_tick, "operations per sample")
    marks += lay.row_labels([r.name for r in rows], [f"{r.name} ({r.type}, input {r.input_kind})" for r in rows])
    for i, r in enumerate(rows):
        y = lay.y(i)
        head = f"{r.name} ({r.type}, input {r.input_kind})"
        marks.append(Rect(lay.x0, y + 2, lay.x(r.dense_macs) - lay.x0, 24, "dense", f"{head}: dense MACs "
                          f"{format_count(r.dense_macs)} per sample (the ANN view)"))
        for value, cls, what, dy in ((r.macs, "s-mac", "MACs", 5), (r.sops, "s-sop", "SOPs", 15)):
            tip = f"{head}: {what} {format_count(value)} per sample"
            marks.append(Rect(lay.x0, y + dy, lay.x(value) - lay.x0, 8, cls, tip))
            if value > 0:
                marks.append(Text(lay.x(value) + 4, y + dy + 8, format_count(value), "val", tip=tip))
        if not (r.macs or r.sops):
            marks.append(Text(lay.x(r.dense_macs) + 6, y + 17, "no MACs, no SOPs (silent input)", "val small muted"))
    tot = model.per_sample
    desc = (
        f"Horizontal bars for {len(rows)} synaptic layers of {model.label}: MACs on dense inputs and exact "
        f"SOPs per sample, outlined by the dense MACs (ANN view). Per sample: MACs {format_count(tot['macs'])}, "
        f"SOPs {format_count(tot['sops'])}, dense MACs {format_count(tot['dense_macs'])}."
    )
    legend = (
        LegendItem("s-mac", "MACs (dense input)"),
        LegendItem("s-sop", "SOPs (spike/count input)"),
        LegendItem("dense", "dense MACs (ANN view)"),
    )
    title = f"Operations per layer: MACs vs SOPs ({model.label})"
    return Chart(f"m{model.index}-ops", title, desc, lay.width, lay.height, tuple(marks), legend)


# --------------------------------------------------------------------------- energy


def _terms(energy: EnergySummary) -> list[str]:
    """Terms with nonzero energy, in the profile's order."""
    return [t for t, v in energy.by_term_pj.items() if v > 0]


def energy_layers_chart(model: ModelReport, energy: EnergySummary, number: int) -> Chart | None:
    """Per-sample energy per layer on one profile, each bar stacked by energy term.

    Args:
        model: the entry.
        energy: its estimate on one profile.
        number: index of the profile within the entry (for the element id).

    Returns:
        The chart, or ``None`` when no layer costs energy on this profile.
    """
    rows = [r for r in model.layers if energy.layers_pj.get(r.name, 0.0) > 0]
    if not rows:
        return None
    terms = _terms(energy)
    ticks = nice_ticks(max(energy.layers_pj[r.name] for r in rows))
    lay = HBarLayout.for_labels([r.name for r in rows], row_h=22, vmax=ticks[-1], right=72)
    marks: list[Mark] = lay.axis(ticks, _energy_tick, "energy per sample")
    marks += lay.row_labels([r.name for r in rows])
    for i, r in enumerate(rows):
        x, y = lay.x0, lay.y(i) + 4
        parts = energy.layer_terms_pj.get(r.name, {})
        for term in terms:
            value = parts.get(term, 0.0)
            if value <= 0:
                continue
            w = lay.x(value) - lay.x0
            marks.append(Rect(x, y, w, 14, term_class(term), f"{r.name}: {term} {format_energy_pj(value)} per sample"))
            x += w
        total = energy.layers_pj[r.name]
        marks.append(Text(x + 4, y + 11, format_energy_pj(total), "val", tip=f"{r.name}: {format_energy_pj(total)}"))
    top = max(rows, key=lambda r: energy.layers_pj[r.name])
    desc = (
        f"Stacked horizontal bars of per-sample energy on {energy.profile} for {len(rows)} layers of "
        f"{model.label}, split by energy term ({', '.join(terms)}). Total {format_energy_pj(energy.per_sample_pj)} "
        f"per sample; the largest layer is {top.name} with {format_energy_pj(energy.layers_pj[top.name])}."
    )
    legend = tuple(LegendItem(term_class(t), t) for t in terms)
    title = f"Energy per layer on {energy.profile} ({model.label})"
    return Chart(f"m{model.index}-energy{number}", title, desc, lay.width, lay.height, tuple(marks), legend)


def energy_terms_chart(model: ModelReport) -> Chart | None:
    """Share of each energy term per profile (100 % bars), labelled with the per-sample total.

    Returns:
        The chart, or ``None`` when no profile has nonzero energy.
    """
    rows = [e for e in model.energies if e.per_sample_pj > 0]
    if not rows:
        return None
    lay = HBarLayout.for_labels([e.profile for e in rows], row_h=30, vmax=1.0, right=72)
    marks: list[Mark] = lay.axis([0.0, 0.25, 0.5, 0.75, 1.0], lambda v: f"{v:.0%}", "share of per-sample energy")
    marks += lay.row_labels([e.profile for e in rows])
    seen: dict[str, None] = {}
    for i, e in enumerate(rows):
        x, y = lay.x0, lay.y(i) + 5
        for term in _terms(e):
            seen[term] = None
            share = e.by_term_pj[term] / e.per_sample_pj
            w = lay.x(share) - lay.x0
            tip = f"{e.profile}: {term} {format_energy_pj(e.by_term_pj[term])} per sample ({share:.1%})"
            marks.append(Rect(x, y, w, 20, term_class(term), tip))
            if w >= 44:
                marks.append(Text(x + w / 2, y + 14, f"{share:.0%}", f"in {term_class(term)}", "middle", tip))
            x += w
        marks.append(Text(lay.x1 + 6, y + 14, format_energy_pj(e.per_sample_pj), "val"))
    desc = "Share of each energy term in the per-sample energy of " + model.label + ": " + "; ".join(
        f"{e.profile} {format_energy_pj(e.per_sample_pj)}" for e in rows
    ) + "."
    legend = tuple(LegendItem(term_class(t), t) for t in seen)
    title = f"Energy per term for each profile ({model.label})"
    return Chart(f"m{model.index}-terms", title, desc, lay.width, lay.height, tuple(marks), legend)


# --------------------------------------------------------------------------- firing rates


def rate_layers_chart(model: ModelReport) -> Chart | None:
    """Firing rate of each spiking-neuron layer; silent layers are called out.

    Returns:
        The chart, or ``None`` for a model without spiking neurons.
    """
    rows = model.neuron_layers
    if not rows:
        return None
    ticks = nice_ticks(max(*(n.firing_rate for n in rows), 0.01))
    lay = HBarLayout.for_labels([n.name for n in rows], row_h=22, vmax=ticks[-1], right=150)
    marks: list[Mark] = lay.axis(ticks, _pct_tick, "firing rate (spikes per neuron update)")
    marks += lay.row_labels([n.name for n in rows], [f"{n.name} ({n.type}, {n.neurons:,} neurons)" for n in rows])
    for i, n in enumerate(rows):
        y = lay.y(i) + 4
        tip = f"{n.name} ({n.type}): firing rate {_pct(n.firing_rate)}"
        marks.append(Rect(lay.x0, y, lay.x(n.firing_rate) - lay.x0, 14, "s-rate", tip))
        label, cls = (f"{_pct(0.0)}: never fired", "val warn") if n.silent else (_pct(n.firing_rate), "val")
        marks.append(Text(lay.x(n.firing_rate) + 4, y + 11, label, cls, tip=tip))
    silent = [n.name for n in rows if n.silent]
    desc = (
        f"Horizontal bars of the firing rate of {len(rows)} spiking-neuron layers of {model.label}; mean "
        f"{_pct(model.firing_rate)}." + (f" Never fired: {', '.join(silent)}." if silent else "")
    )
    title = f"Firing rate per layer ({model.label})"
    return Chart(f"m{model.index}-rate", title, desc, lay.width, lay.height, tuple(marks))


def _heat_class(rate: float, vmax: float) -> str:
    """Colour class of a heatmap cell (``hz`` for exactly zero, else ``h1`` .. ``h8``)."""
    if rate <= 0:
        return "hz"
    return f"h{min(int(rate / vmax * HEAT_BINS), HEAT_BINS - 1) + 1}"


def _heat_legend(x: float, y: float, vmax: float) -> list[Mark]:
    """Colour-scale swatches under the heatmap."""
    marks: list[Mark] = [Text(x, y + 11, "scale:", "tick")]
    x += 44
    marks.append(Rect(x, y, 22, 14, "hz", "exactly 0 (no spike)"))
    marks.append(Text(x + 11, y + 27, "0", "tick", "middle"))
    for k in range(1, HEAT_BINS + 1):
        lo, hi = (k - 1) / HEAT_BINS * vmax, k / HEAT_BINS * vmax
        marks.append(Rect(x + 24 * k, y, 22, 14, f"h{k}", f"{_pct(lo)} to {_pct(hi)}"))
    marks.append(Text(x + 24 * HEAT_BINS + 11, y + 27, _pct(vmax), "tick", "middle"))
    return marks


def rate_steps_chart(model: ModelReport) -> Chart | None:
    """Heatmap of the firing rate per time step: one row per neuron layer plus the model-wide row.

    Returns:
        The chart, or ``None`` when no per-step rates were recorded.
    """
    rows = [("all neuron layers", model.rate_per_step)]
    rows += [(n.name, n.rate_per_step) for n in model.neuron_layers if n.rate_per_step]
    steps = max(len(r) for _, r in rows)
    if steps == 0 or len(rows) == 1:
        return None
    vmax = max(max(r, default=0.0) for _, r in rows) or 1.0
    label_w = max(len(fit_label(name)) for name, _ in rows) * 7.2 + 14
    cell_w = max(min((WIDTH - label_w - 16) / steps, 90.0), 2.0)
    every = max(1, math.ceil(28 / cell_w))
    top, row_h = 34.0, 20.0
    marks: list[Mark] = [Text(label_w, 11, "time step", "axis-title")]
    marks += [Text(label_w + (t + 0.5) * cell_w, top - 6, str(t), "tick", "middle") for t in range(0, steps, every)]
    for i, (name, rates) in enumerate(rows):
        y = top + i * row_h + (6 if i else 0)
        cls = "lbl strong" if i == 0 else "lbl"
        marks.append(Text(label_w - 8, y + 14, fit_label(name), cls, "end", name))
        for t, rate in enumerate(rates):
            tip = f"{name}, step {t}: firing rate {_pct(rate)}"
            marks.append(Rect(label_w + t * cell_w, y, cell_w - (1 if cell_w > 4 else 0), row_h - 2,
                              _heat_class(rate, vmax), tip))
            if cell_w >= 56:
                marks.append(Text(label_w + (t + 0.5) * cell_w, y + 13, _pct(rate),
                                  f"in {_heat_class(rate, vmax)}", "middle", tip))
    bottom = top + len(rows) * row_h + 6 + 10
    marks += _heat_legend(label_w, bottom, vmax)
    width = max(label_w + steps * cell_w + 8, label_w + 44 + 24 * (HEAT_BINS + 1) + 40)
    desc = (
        f"Heatmap of the firing rate of each spiking-neuron layer of {model.label} (rows) at each of {steps} "
        f"time steps (columns); the first row is the model-wide rate: "
        + ", ".join(_pct(r) for r in model.rate_per_step[:12]) + ("…" if steps > 12 else "") + "."
    )
    title = f"Firing rate per time step ({model.label})"
    return Chart(f"m{model.index}-steps", title, desc, width, bottom + 34, tuple(marks))


# --------------------------------------------------------------------------- per channel


def _upper(layer: NeuronLayer) -> float:
    """Right end of the histogram's rate axis: a round value above the highest unsaturated rate."""
    sat = set(layer.saturated_channels)
    top = max((r for i, r in enumerate(layer.rate_per_channel) if i not in sat), default=0.0)
    return next((c for c in (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0) if top <= c), 1.0)


def _bins(layer: NeuronLayer, upper: float) -> list[int]:
    """Channel counts: ``[dead, bin 1 .. bin CHANNEL_BINS, saturated]``."""
    counts = [0] * (CHANNEL_BINS + 2)
    dead, sat = set(layer.dead_channels), set(layer.saturated_channels)
    for i, rate in enumerate(layer.rate_per_channel):
        if i in dead:
            counts[0] += 1
        elif i in sat:
            counts[-1] += 1
        else:
            counts[1 + min(max(math.ceil(rate / upper * CHANNEL_BINS) - 1, 0), CHANNEL_BINS - 1)] += 1
    return counts


def _channel_chart(model: ModelReport, k: int, layer: NeuronLayer) -> Chart:
    """Histogram of one layer's per-channel firing rates with dead/saturated bars at both ends."""
    width, height, x0, x1, top, bottom = 360.0, 180.0, 40.0, 352.0, 24.0, 138.0
    upper = _upper(layer)
    counts = _bins(layer, upper)
    ticks = nice_ticks(max(counts), 3)
    slot = (x1 - x0) / len(counts)
    marks: list[Mark] = []
    for tick in ticks:
        y = bottom - (bottom - top) * tick / ticks[-1]
        marks += [Line(x0, y, x1, y, "grid"), Text(x0 - 5, y + 4, f"{tick:g}", "tick", "end")]
    for j, count in enumerate(counts):
        cls = "dead" if j == 0 else "sat" if j == len(counts) - 1 else "s-rate"
        lo, hi = (j - 1) / CHANNEL_BINS * upper, j / CHANNEL_BINS * upper
        what = "dead (rate 0)" if j == 0 else "saturated (rate 1)" if cls == "sat" else f"rate {_pct(lo)}–{_pct(hi)}"
        tip = f"{layer.name}: {count} of {layer.channels} channels {what}"
        h = (bottom - top) * count / ticks[-1]
        marks.append(Rect(x0 + j * slot + 2, bottom - h, slot - 4, h, cls, tip))
        if count:
            marks.append(Text(x0 + (j + 0.5) * slot, bottom - h - 3, str(count), "val small", "middle", tip))
    marks.append(Line(x0, bottom, x1, bottom, "axis"))
    for j, text in ((0, "dead"), (len(counts) - 1, "sat.")):
        marks.append(Text(x0 + (j + 0.5) * slot, bottom + 13, text, "tick", "middle"))
    for j, frac in ((1, 0.0), (1 + CHANNEL_BINS // 2, 0.5), (1 + CHANNEL_BINS, 1.0)):
        marks.append(Text(x0 + j * slot, bottom + 26, _pct_tick(frac * upper), "tick", "middle"))
    marks.append(Text(4, 10, "channels", "tick"))
    marks.append(Text((x0 + x1) / 2, bottom + 40, "firing rate of the channel", "tick", "middle"))
    note = f"{layer.channels} channels · {len(layer.dead_channels)} dead · {len(layer.saturated_channels)} saturated"
    desc = (
        f"Histogram of the firing rates of the {layer.channels} channels of {layer.name} ({layer.type}) in "
        f"{model.label}: {len(layer.dead_channels)} dead (never fired), {len(layer.saturated_channels)} saturated "
        f"(fired at every update), the rest binned between 0 and {_pct(upper)}."
    )
    return Chart(f"m{model.index}-ch{k}", layer.name, desc, width, height, tuple(marks), note=note)


def channel_charts(model: ModelReport) -> list[Chart]:
    """One per-channel firing-rate histogram per neuron layer that recorded channels."""
    return [_channel_chart(model, k, n) for k, n in enumerate(model.neuron_layers) if n.rate_per_channel]


# --------------------------------------------------------------------------- comparison


def _ratio_text(ratio: float) -> str:
    """``0.213×``, ``12.3×``."""
    return f"{ratio:.3g}×"


def comparison_chart(report: Report) -> Chart | None:
    """Ratios of every compared metric against the first entry, as bars from 1× on a log scale.

    Returns:
        The chart, or ``None`` for a single entry or when no ratio exists.
    """
    others = report.models[1:]
    rows = [r for r in report.comparison if any(x is not None for x in r.ratios[1:])]
    if not others or not rows:
        return None
    logs = [abs(math.log10(x)) for r in rows for x in r.ratios[1:] if x]
    decades = min(max(1, math.ceil(max(logs, default=1.0) - 1e-9)), _MAX_DECADES)
    bar_h, group_h = 12.0, 12.0 * len(others) + 12
    lay = HBarLayout.for_labels([r.label for r in rows], row_h=group_h, vmax=2.0 * decades, right=64)

    def x_of(ratio: float) -> float:
        clamped = min(max(math.log10(ratio), -decades), decades)
        return lay.x(clamped + decades)

    ticks = [float(d + decades) for d in range(-decades, decades + 1)]
    reference = report.models[0].label
    marks: list[Mark] = lay.axis(ticks, lambda v: _ratio_text(10 ** (v - decades)), f"ratio to {reference}")
    marks += lay.row_labels([r.label for r in rows])
    marks.append(Line(x_of(1.0), lay.top - 4, x_of(1.0), lay.y(len(rows)), "ref"))
    for i, r in enumerate(rows):
        for j, (m, ratio) in enumerate(zip(others, r.ratios[1:], strict=True)):
            y = lay.y(i) + 6 + j * bar_h
            cls = f"v{j % _VARIANT_CLASSES + 1}"
            if ratio is None or ratio == 0:
                text = "n/a" if ratio is None else "0×"
                marks.append(Text(x_of(1.0) + 4, y + 9, text, "val small", tip=f"{m.label}: {r.label} {text}"))
                continue
            a, b = sorted((x_of(1.0), x_of(ratio)))
            tip = f"{m.label}: {r.label} {_ratio_text(ratio)} of {report.models[0].label}"
            marks.append(Rect(a, y, max(b - a, 1.0), bar_h - 2, cls, tip))
            tx, anchor = (b + 4, "start") if ratio >= 1 else (a - 4, "end")
            marks.append(Text(tx, y + 9, _ratio_text(ratio), "val small", anchor, tip))
    desc = (
        f"Bars of each metric of {', '.join(m.label for m in others)} divided by that of "
        f"{report.models[0].label} (log scale centred on 1×, clipped at 10^±{decades}); left of the line is less."
    )
    legend = tuple(LegendItem(f"v{j % _VARIANT_CLASSES + 1}", m.label) for j, m in enumerate(others))
    title = f"Ratios against {report.models[0].label}"
    return Chart("compare", title, desc, lay.width, lay.height, tuple(marks), legend)


def energy_charts(model: ModelReport) -> list[Chart]:
    """The per-layer energy chart of every profile that prices something."""
    charts = (energy_layers_chart(model, e, k) for k, e in enumerate(model.energies))
    return [c for c in charts if c is not None]


def model_charts(model: ModelReport) -> dict[str, Sequence[Chart]]:
    """Every chart of one entry by section key (``ops``, ``energy``, ``terms``, ``rate``, ``steps``, ``channels``).

    A section without a chart (e.g. firing rates of an ANN) maps to an empty list.
    """
    return {
        "ops": [c for c in (ops_chart(model),) if c],
        "energy": energy_charts(model),
        "terms": [c for c in (energy_terms_chart(model),) if c],
        "rate": [c for c in (rate_layers_chart(model),) if c],
        "steps": [c for c in (rate_steps_chart(model),) if c],
        "channels": channel_charts(model),
    }

"""Chart geometry: scales, bar lengths, histogram bins, heat classes, log ratios, nothing drawn outside the box."""

from __future__ import annotations

import math

import pytest

from snnprof import estimate_energy
from snnprof.reports import charts, side_charts
from snnprof.reports.build import build_report
from snnprof.reports.model import NeuronLayer
from snnprof.reports.side_charts import GroupRow, entry_class, grouped_chart
from snnprof.reports.svg import CHAR_PX, Chart, Rect, Text, fit_label, nice_ticks
from snnprof.run import Run
from tests.reports.test_model import REPRO, hand_result


def report_of(*results, labels=None, profiles=("cmos45nm_fp32", "cmos45nm_fp32_mem", "loihi", "spikesim_rram")):
    labels = labels or [r.model for r in results]
    entries = [Run(label, r, {p: estimate_energy(r, p) for p in profiles})
               for r, label in zip(results, labels, strict=True)]
    return build_report(entries, REPRO)


def all_charts(report) -> list[Chart]:
    out = [c for m in report.models for section in charts.model_charts(m).values() for c in section]
    out += side_charts.term_charts(report) + side_charts.layer_charts(report)
    return out + ([c] if (c := charts.comparison_chart(report)) else [])


@pytest.mark.parametrize("vmax", [0.004, 1.0, 2.18, 7.0, 453e6, 1.07e9, 12345.0])
def test_nice_ticks_cover_the_range_with_round_steps(vmax):
    ticks = nice_ticks(vmax)
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert ticks[0] == 0 and ticks[-1] >= vmax and ticks[-2] < vmax
    assert round(mantissa, 6) in (1.0, 2.0, 2.5, 5.0)
    assert 3 <= len(ticks) <= 7


def test_nice_ticks_degenerate():
    assert nice_ticks(0) == [0.0, 1.0]
    assert nice_ticks(float("nan")) == [0.0, 1.0]


def test_fit_label_keeps_the_tail():
    assert fit_label("features.0") == "features.0"
    long = "encoder.layers.11.self_attention.q_proj.weight_fn"
    short = fit_label(long, 20)
    assert len(short) == 20 and short.startswith("…") and long.endswith(short[1:])


def test_ops_bars_are_proportional_to_counts(ann_result):
    chart = charts.ops_chart(report_of(ann_result).models[0])
    macs = [m for m in chart.marks if isinstance(m, Rect) and m.cls == "s-mac"]
    dense = [m for m in chart.marks if isinstance(m, Rect) and m.cls == "dense"]
    conv, fc = macs  # conv: 8*16*16*2*9 = 36864 MACs per sample, fc: 2048*10 = 20480
    assert conv.w / fc.w == pytest.approx(36864 / 20480)
    assert [d.w for d in dense] == pytest.approx([m.w for m in macs])  # dense input: MACs == dense MACs
    assert any(isinstance(m, Text) and m.text == "36.9 k" for m in chart.marks)


def test_ann_has_no_firing_charts(ann_result):
    sections = charts.model_charts(report_of(ann_result).models[0])
    assert sections["rate"] == [] and sections["steps"] == [] and sections["channels"] == []
    assert sections["ops"] and sections["terms"]


def test_energy_stack_segments_sum_to_the_layer_total(snn_result):
    model = report_of(snn_result).models[0]
    energy = model.energy("cmos45nm_fp32_mem")
    chart = charts.energy_layers_chart(model, energy, 1)
    rects = [m for m in chart.marks if isinstance(m, Rect)]
    drawn = {name: sum(r.w for r in rects if r.tip.startswith(f"{name}:")) for name in energy.layers_pj}
    top = max(energy.layers_pj, key=energy.layers_pj.get)
    scale = drawn[top] / energy.layers_pj[top]
    assert len({r.tip.split(":")[0] for r in rects}) == sum(v > 0 for v in energy.layers_pj.values()) >= 3
    for name, total in energy.layers_pj.items():
        assert drawn[name] == pytest.approx(total * scale)


def test_terms_chart_rows_are_full_width(snn_result):
    chart = charts.energy_terms_chart(report_of(snn_result).models[0])
    rows: dict[float, float] = {}
    for m in chart.marks:
        if isinstance(m, Rect):
            rows[m.y] = rows.get(m.y, 0.0) + m.w
    widths = list(rows.values())
    assert len(widths) == 4 and widths == pytest.approx([widths[0]] * 4)  # 100 % bars


def test_silent_layer_is_called_out():
    model = report_of(hand_result(), profiles=("loihi",)).models[0]
    chart = charts.rate_layers_chart(model)
    assert any(isinstance(m, Text) and "never fired" in m.text and "warn" in m.cls for m in chart.marks)
    assert "Never fired: b." in chart.desc


@pytest.mark.parametrize(
    ("rate", "vmax", "cls"), [(0.0, 0.5, "hz"), (1e-9, 0.5, "h1"), (0.25, 0.5, "h5"), (0.5, 0.5, "h8")]
)
def test_heat_classes(rate, vmax, cls):
    assert charts._heat_class(rate, vmax) == cls


def test_steps_heatmap_has_one_cell_per_layer_and_step(snn_result):
    model = report_of(snn_result).models[0]
    chart = charts.rate_steps_chart(model)
    cells = [m for m in chart.marks if isinstance(m, Rect) and "step" in m.tip]
    assert len(cells) == (1 + len(model.neuron_layers)) * snn_result.time_steps


def test_channel_histogram_bins_closed_form():
    layer = NeuronLayer(name="n", type="LIFNode", neurons=8, firing_rate=0.3,
                        rate_per_step=(0.3,), rate_per_channel=(0.0, 0.0, 0.01, 0.05, 0.1, 0.19, 1.0, 0.2),
                        dead_channels=(0, 1), saturated_channels=(6,))
    assert charts._upper(layer) == 0.2  # highest unsaturated rate 0.2 -> axis to 20 %
    # bins of width 2 %: (0, 2] holds 0.01; (4, 6] 0.05; (8, 10] 0.1; (18, 20] 0.19 and 0.2
    assert charts._bins(layer, 0.2) == [2, 1, 0, 1, 0, 1, 0, 0, 0, 0, 2, 1]
    chart = charts._channel_chart(report_of(hand_result(), profiles=()).models[0], 0, layer)
    assert chart.note == "8 channels · 2 dead · 1 saturated"
    assert {m.cls for m in chart.marks if isinstance(m, Rect)} == {"dead", "s-rate", "sat"}


def test_comparison_chart_log_bars(snn_result, ann_result):
    report = report_of(snn_result, ann_result, labels=["SNN", "ANN"])
    chart = charts.comparison_chart(report)
    ref = next(m for m in chart.marks if getattr(m, "cls", "") == "ref")
    dense_row = next(r for r in report.comparison if r.key == "dense_macs")
    dense = next(m for m in chart.marks if isinstance(m, Rect) and "dense MACs" in m.tip)
    assert dense_row.ratios[1] < 1 and dense.x + dense.w == pytest.approx(ref.x1)  # less: drawn left of 1x
    energy = next(m for m in chart.marks if isinstance(m, Rect) and "cmos45nm_fp32" in m.tip)
    assert energy.x == pytest.approx(ref.x1)  # the ANN costs more: drawn right of 1x
    assert any(isinstance(m, Text) and m.text == "0×" for m in chart.marks)  # ANN SOPs
    assert charts.comparison_chart(report_of(snn_result)) is None


def _text_extent(mark: Text) -> tuple[float, float]:
    width = len(mark.text) * CHAR_PX
    start = {"start": mark.x, "middle": mark.x - width / 2, "end": mark.x - width}[mark.anchor]
    return start, start + width


def test_grouped_bars_one_per_entry_proportional_with_dashes_and_unpriced_named():
    rows = [GroupRow("a", (1.0, 3.0)), GroupRow("b", (None, 0.0), unpriced=("", "5 MACs"))]
    chart = grouped_chart("g", "t", "d", rows, series=[(0, "A"), (3, "D")], fmt=lambda v: f"{v:g}", axis_title="x")
    bars = [m for m in chart.marks if isinstance(m, Rect)]
    assert [b.cls for b in bars] == ["e0", "v3", "v3"]  # entry 0 and entry 3; A has no row "b"
    assert bars[1].w / bars[0].w == pytest.approx(3.0) and bars[2].w == 0
    texts = {m.text: m for m in chart.marks if isinstance(m, Text)}
    assert texts["—"].tip == "A, b: not in this entry"
    assert "warn" in texts["no price: 5 MACs"].cls and texts["3"].x == pytest.approx(bars[1].x + bars[1].w + 4)
    assert [(item.cls, item.label) for item in chart.legend] == [("e0", "A"), ("v3", "D")]
    assert [entry_class(i) for i in (0, 1, 6, 7)] == ["e0", "v1", "v6", "v1"]


def test_side_by_side_charts_of_a_comparison(snn_result, ann_result):
    report = report_of(snn_result, ann_result, labels=["SNN", "ANN"])
    terms = side_charts.term_charts(report)
    assert [c.id for c in terms] == ["side-terms0", "side-terms1", "side-terms2", "side-terms3"]
    cmos = terms[0]
    mac = [m for m in cmos.marks if isinstance(m, Rect) and m.tip.endswith(", mac: 264 nJ")]
    assert [m.cls for m in mac] == ["v1"]  # the ANN's 4.6 pJ x 57 344 MACs per sample
    layers = side_charts.layer_charts(report)
    assert [c.id for c in layers] == ["side-energy0", "side-energy1", "side-energy2", "side-energy3", "side-macs",
                                      "side-sops", "side-rate"]
    loihi = next(c for c in layers if c.id == "side-energy2")
    unpriced = [m.text for m in loihi.marks if isinstance(m, Text) and "no price" in m.text]
    assert unpriced == ["no price: 36.9 k dense-input MACs", "no price: 20.5 k dense-input MACs"]  # none on Loihi
    assert side_charts.term_charts(report_of(snn_result)) == [] == side_charts.layer_charts(report_of(snn_result))


def test_every_mark_lies_inside_its_chart(snn_result, ann_result):
    report = report_of(snn_result, ann_result, hand_result(), labels=["SNN", "ANN", "hand"])
    drawn = all_charts(report)
    assert len(drawn) >= 25
    for chart in drawn:
        for m in chart.marks:
            if isinstance(m, Rect):
                assert m.x >= 0 and m.y >= 0 and m.w >= 0 and m.h >= 0, chart.id
                assert m.x + m.w <= chart.width + 0.5 and m.y + m.h <= chart.height + 0.5, chart.id
            elif isinstance(m, Text):
                lo, hi = _text_extent(m)
                assert lo >= -4 and hi <= chart.width + 4, (chart.id, m.text)
                assert 0 < m.y <= chart.height, (chart.id, m.text)

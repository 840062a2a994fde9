"""The comparison page's answer to "which costs less, and why": verdicts, explaining rows, matched layers, banner.

Every run here is hand-built (counts, render statistics and energies written in the test), so each
expected value is derived in the test.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from snnprof.comparison import EnergyVerdict, firing_rate_valid
from snnprof.config import parse_config
from snnprof.counting.results import LayerRecord, ProfileResult, Totals
from snnprof.energy.estimate import EnergyResult
from snnprof.pipeline import core
from snnprof.reports.build import build_report
from snnprof.reports.render import render_html
from snnprof.reports.side import merge_order, verdict_cell
from snnprof.run import RenderSummary, Run
from tests.reports.test_model import REPRO, hand_result

REPO_ROOT = Path(__file__).resolve().parents[2]

BATCH = 2
#: Two render chunks: (T=4, B=5, M=14) and (T=6, B=5, M=16): 30 valid points in 20 + 30 slots.
RENDER = RenderSummary(chunks=2, rays=8, points=30, time_steps_mean=5.0, time_steps_max=6, batch_mean=5.0,
                       batch_max=5, padding_fraction=1 - 30 / 50)
NERF_ROWS = ["time_steps", "time_steps_max", "batch_mean", "batch_max", "padding_fraction", "points",
             "neuron_updates", "valid_updates", "firing_rate", "firing_rate_valid"]


def neuron(name: str, updates: int, spikes: int, valid: int | None = None, valid_rate: float | None = None):
    rec = LayerRecord(name=name, type="LIFNode", neurons=4, neuron_updates=updates, spikes=spikes,
                      firing_rate=spikes / updates)
    if valid is not None:  # the fields the counting engine adds for padded models
        rec.valid_updates, rec.firing_rate_valid = valid, valid_rate
        rec.valid_spikes = round(valid * valid_rate) if valid_rate is not None else None
    return rec


def result(name: str, layers: list[LayerRecord], checkpoint: str | None = None, model: bool = True) -> ProfileResult:
    config = {"input": {"seed": 0, "batch_size": BATCH, "time_steps": 1}}
    if model:
        config["model"] = {"name": name, **({"checkpoint": checkpoint} if checkpoint else {})}
    return ProfileResult(model=name, layers=layers, totals=Totals.from_layers(layers, params=10), batch_size=BATCH,
                         time_steps=1, config=config)


def nerf_like(name: str = "tcp", checkpoint: str | None = None) -> ProfileResult:
    """A padded SNN colour MLP: 80 updates (40 valid), 20 spikes (16 in valid slots), an add first."""
    return result(name, [
        LayerRecord(name="rgb/add.0", type="add", flops=10),
        LayerRecord(name="rgb.fc1", type="Linear", input_kind="dense", dense_macs=400, macs=400, flops=800),
        neuron("rgb.lif", 80, 20, valid=40, valid_rate=0.4),
        LayerRecord(name="rgb.fc2", type="Linear", input_kind="spike", dense_macs=80, sops=20, flops=160),
    ], checkpoint)


def ann_like(name: str = "ann", checkpoint: str | None = "w.pt") -> ProfileResult:
    return result(name, [LayerRecord(name="rgb.fc1", type="Linear", input_kind="dense", dense_macs=800, macs=800),
                         LayerRecord(name="rgb.relu", type="ReLU", flops=8)], checkpoint)


def energy(profile: str, per_sample: float, term: str = "mac", unpriced: dict[str, int] | None = None,
           coverage: float = 1.0) -> EnergyResult:
    total = per_sample * BATCH
    return EnergyResult(profile, total, per_sample, by_term_pj={term: total}, layers={}, layer_terms={},
                        provenance={"fidelity": "derived"}, unpriced=dict(unpriced or {}), coverage=coverage)


def explain(report) -> dict[str, tuple]:
    return {m.key: m.values for m in report.side.explain}


# --------------------------------------------------------------------------- explaining rows


def test_explaining_rows_of_a_nerf_like_run_and_only_the_rows_that_apply():
    runs = [Run("tcp", nerf_like(), {"p": energy("p", 30.0)}, render=RENDER),
            Run("plain", hand_result(), {"p": energy("p", 120.0)})]
    report = build_report(runs, REPRO)
    rows = explain(report)
    assert list(rows) == NERF_ROWS
    assert rows["time_steps"] == (5.0, 2.0)  # the SNN tensor's mean T per chunk, not the config's 1; plain: T = 2
    assert rows["time_steps_max"] == (6.0, None) and rows["batch_mean"] == (5.0, None)
    assert rows["batch_max"] == (5.0, None) and rows["padding_fraction"] == (0.4, None)
    assert rows["points"] == (30 / BATCH, None)
    assert rows["neuron_updates"] == (80 / BATCH, (20 + 8) / BATCH)  # hand_result: layers a (20) and b (8)
    assert rows["valid_updates"] == (40 / BATCH, None)
    assert rows["firing_rate"] == (20 / 80, 12 / 28)
    assert rows["firing_rate_valid"] == (0.4, None)
    nerf_page = render_html(report)

    plain = build_report([Run("a", hand_result()), Run("b", hand_result())], REPRO)
    assert list(explain(plain)) == ["time_steps", "neuron_updates", "firing_rate"]  # no NeRF rows
    page = render_html(plain)
    for nerf_only in ("T per chunk (max)", "B per chunk (mean)", "padding", "valid points per sample",
                      "firing rate (valid slots)"):
        assert f'<th scope="row">{nerf_only}</th>' not in page, nerf_only
        assert f'<th scope="row">{nerf_only}</th>' in nerf_page, nerf_only


def test_real_time_steps_in_the_headers_and_the_summary():
    runs = [Run("tcp", nerf_like(), {"p": energy("p", 30.0)}, render=RENDER),
            Run("ann", ann_like(), {"p": energy("p", 120.0)})]
    report = build_report(runs, REPRO)
    assert report.models[0].real_time_steps == 5.0 and report.models[1].real_time_steps is None
    page = render_html(report)
    assert "T = 5 per render chunk (mean; max 6) · B = 5 per chunk (mean; max 5) · 40.0 % padding" in page
    assert '<td class="n">5 <span class="muted">(mean per chunk, max 6)</span></td>' in page  # headline table
    assert "T per render chunk (mean)" in page  # the explaining row's label
    assert "1 time step" not in page and "no time steps (ANN)" in page


def test_valid_firing_rate_weighs_each_layer_by_its_valid_updates():
    layers = [neuron("a", 80, 20, valid=40, valid_rate=0.4), neuron("b", 20, 5, valid=10, valid_rate=0.1),
              neuron("c", 8, 1)]  # c has no validity mask: all its slots are valid (the engine's totals)
    run = Run("x", result("x", layers))
    assert firing_rate_valid(run) == pytest.approx((0.4 * 40 + 0.1 * 10 + 1) / (50 + 8))
    assert firing_rate_valid(Run("y", hand_result())) is None
    m = build_report([run], REPRO).models[0]
    assert m.valid_updates == 58 / BATCH and m.has_valid_rate
    assert [r.valid_updates for r in m.layers] == [40 / BATCH, 10 / BATCH, None]
    page = render_html(build_report([run], REPRO))
    assert "valid rate" in page and "40.0 %" in page


# --------------------------------------------------------------------------- verdicts


@pytest.mark.parametrize(
    ("subject_pj", "baseline_pj", "cheaper", "factor", "saving"),
    [(30.0, 120.0, "A", 4.0, 75.0), (120.0, 30.0, "B", 4.0, 75.0),
     (100.0, 100.02, None, 1.0002, (1 - 100 / 100.02) * 100)],
)
def test_verdict_cell_names_the_cheaper_entry(subject_pj, baseline_pj, cheaper, factor, saving):
    cell = verdict_cell(EnergyVerdict("p", "A", "B", subject_pj, baseline_pj, subject_pj / baseline_pj), (1.0, 1.0))
    assert cell.cheaper == cheaper and cell.factor == pytest.approx(factor)
    assert cell.saving_pct == pytest.approx(saving)
    assert cell.pricier == ({"A": "B", "B": "A"}[cheaper] if cheaper else None)
    assert cell.same is (cheaper is None)


def test_not_comparable_verdict_shows_its_reason_and_no_ratio():
    runs = [Run("snn", nerf_like(checkpoint="w.pt"),
                {"cmos": energy("cmos", 30.0), "loihi": energy("loihi", 50.0, "ac")}),
            Run("ann", ann_like(), {"cmos": energy("cmos", 120.0),
                                    "loihi": energy("loihi", 0.0, "ac", unpriced={"mac": 800}, coverage=0.0)})]
    report = build_report(runs, REPRO)
    cmos, loihi = report.side.verdicts
    assert (cmos.cheaper, cmos.pricier, cmos.factor, cmos.saving_pct) == ("snn", "ann", 4.0, 75.0)
    reason = "ann: 400 dense-input MACs per sample have no price on loihi"
    assert not loihi.verdict.comparable and loihi.verdict.reason == reason
    assert loihi.verdict.ratio is None and loihi.cheaper is None and loihi.factor is None
    page = render_html(report)
    row = re.search(r'<tr class="not-comparable">(.*?)</tr>', page, flags=re.S).group(1)
    assert f"<strong>not comparable:</strong> {reason}</td>" in row
    assert "×" not in row and "less" not in row  # no ratio, no winner
    assert "<strong>snn</strong> costs <strong>75.0 % less</strong> than ann (4× lower)" in page
    assert "0.25×" in page
    energy_row = next(m for m in report.comparison if m.key == "energy_pj.loihi")
    assert energy_row.ratios == (1.0, None)
    # the term chart names the unpriced MACs per sample where the ANN's bar would be
    terms = {t.profile: t for t in report.side.terms}["loihi"]
    assert terms.terms == ("ac", "mac") and terms.values == ((50.0, 0.0), (0.0, 0.0))
    assert terms.unpriced == (("", ""), ("", "400 dense-input MACs")) and terms.reasons == (reason,)
    fc1 = next(layer for layer in report.side.layers if layer.name == "rgb.fc1")
    assert fc1.unpriced["loihi"] == ("", "400 dense-input MACs") and fc1.unpriced["cmos"] == ("", "")


def test_each_pair_once_per_profile_in_snn_ann_orientation():
    runs = [Run("ann", ann_like(), {"p": energy("p", 120.0)}),
            Run("tcp", nerf_like("tcp"), {"p": energy("p", 30.0)}),
            Run("tp", nerf_like("tp"), {"p": energy("p", 60.0)})]
    cells = build_report(runs, REPRO).side.verdicts
    pairs = [(c.verdict.subject, c.verdict.baseline) for c in cells if c.profile == "p"]
    assert pairs == [("tcp", "ann"), ("tp", "ann")]  # the reference (an ANN) meets each SNN as its baseline
    runs = [runs[1], runs[2], runs[0]]
    pairs = [(c.verdict.subject, c.verdict.baseline) for c in build_report(runs, REPRO).side.verdicts]
    assert pairs == [("tcp", "tp"), ("tcp", "ann"), ("tp", "ann")]


# --------------------------------------------------------------------------- untrained weights


def test_untrained_banner_names_exactly_the_entries_without_a_checkpoint():
    runs = [Run("trained_one", ann_like("trained_one", "w.pt"), {"p": energy("p", 1.0)}),
            Run("random_one", nerf_like("random_one"), {"p": energy("p", 2.0)}),
            Run("api_one", result("api_one", [neuron("n", 8, 2)], model=False), {"p": energy("p", 3.0)})]
    report = build_report(runs, REPRO)
    assert [m.trained for m in report.models] == [True, False, None]
    assert report.untrained == ("random_one",)
    assert not any(n.startswith("untrained weights") for n in report.notes)  # the banner says it once
    page = render_html(report)
    banner = re.search(r'<div class="banner" id="untrained" role="note">(.*?)</div>', page, flags=re.S).group(1)
    assert re.findall(r'<strong class="name">(.*?)</strong>', banner) == ["random_one"]
    assert "trained_one" not in banner and "api_one" not in banner and " has no " in banner
    marks = {(c.verdict.subject, c.verdict.baseline): c.verdict.untrained for c in report.side.verdicts}
    assert marks[("random_one", "trained_one")] == ("random_one",) and marks[("api_one", "trained_one")] == ()
    assert "untrained: random_one</span>" in page  # the per-verdict mark stays
    trained = build_report([runs[0], runs[0]], REPRO)
    assert trained.untrained == () and 'id="untrained"' not in render_html(trained)
    single = render_html(build_report([runs[1]], REPRO))
    assert 'id="untrained"' in single and "untrained-badge" in single


# --------------------------------------------------------------------------- layers


def test_layers_matched_by_name_union_in_call_order():
    first = hand_result()  # conv, a, b
    layers = [LayerRecord(name="conv", type="Conv2d", input_kind="spike", dense_macs=100, sops=10),
              neuron("x", 8, 2), LayerRecord(name="pool", type="MaxPool2d", flops=4), neuron("a", 8, 4)]
    report = build_report([Run("one", first), Run("two", result("two", layers))], REPRO)
    matched = report.side.layers
    assert [m.name for m in matched] == ["conv", "x", "a", "b"]  # no "pool": only synaptic and neuron layers
    assert [m.category for m in matched] == ["synaptic", "neuron", "neuron", "neuron"]
    presence = [tuple(r is not None for r in m.rows) for m in matched]
    assert presence == [(True, True), (False, True), (True, True), (True, False)]
    a = next(m for m in matched if m.name == "a")
    assert [r.firing_rate for r in a.rows] == [None, 0.5]  # hand_result sets no firing_rate field; two: 4/8


@pytest.mark.parametrize(
    ("sequences", "expected"),
    [([["a", "c"], ["a", "b", "c", "d"]], ["a", "b", "c", "d"]),
     ([["a", "b"], ["c", "a", "d"]], ["c", "a", "d", "b"]),
     ([["a"], ["x", "y"]], ["a", "x", "y"]),
     ([["a", "b"], ["b", "a"]], ["a", "b"])],
)
def test_merge_order(sequences, expected):
    assert merge_order(sequences) == expected


def test_other_rows_come_after_the_key_rows_in_the_table():
    m = build_report([Run("tcp", nerf_like())], REPRO).models[0]
    assert [r.name for r in m.layers] == ["rgb/add.0", "rgb.fc1", "rgb.lif", "rgb.fc2"]  # call order
    assert [r.name for r in m.table_rows] == ["rgb.fc1", "rgb.lif", "rgb.fc2", "rgb/add.0"]
    assert m.other_layers == 1


# --------------------------------------------------------------------------- wall time


def test_wall_time_is_the_second_unprofiled_run(monkeypatch):
    text = (REPO_ROOT / "configs" / "sj_spiking_cnn.toml").read_text(encoding="utf-8")
    cfg = parse_config(text.replace("batch_size = 4", "batch_size = 1").replace("time_steps = 8", "time_steps = 2"),
                       REPO_ROOT / "configs" / "sj_spiking_cnn.toml")
    events: list[str] = []
    real_run = core.run_model
    clock = iter([10.0, 12.5])

    def run_model(*args):
        events.append("run")
        return real_run(*args)

    def perf_counter() -> float:
        events.append("clock")
        return next(clock)

    monkeypatch.setattr(core, "run_model", run_model)
    monkeypatch.setattr(core, "time", SimpleNamespace(perf_counter=perf_counter))
    run = core.run_config(cfg, ["cmos45nm_fp32"], side_by_side=True)
    assert events == ["run", "clock", "run", "clock", "run"]  # warm-up, timed run, profiled run
    assert run.wall_s == 2.5


def test_labels_in_the_banner_verdicts_and_side_charts_are_escaped():
    xss = "<script>alert(1)</script>"
    runs = [Run(xss, nerf_like(xss), {"p": energy("p", 30.0)}, render=RENDER),
            Run("ann", ann_like(), {"p": energy("p", 120.0)})]
    page = render_html(build_report(runs, REPRO))
    assert xss not in page and page.count("<script") == 1
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f'<strong class="name">{escaped}</strong>' in page  # the banner
    assert f"<strong>{escaped}</strong> costs <strong>75.0 % less</strong>" in page  # the verdict
    assert f"{escaped}, rgb.fc1: " in page  # a side-by-side bar's tooltip


def test_a_second_count_with_fold_pooling_is_another_entry_named_by_its_option():
    folded = nerf_like("folded")
    folded.config["count"] = {"sop_convention": "exact", "fold_pooling": True}
    plain = nerf_like("plain")
    plain.config["count"] = {"sop_convention": "exact", "fold_pooling": False}
    report = build_report([Run("plain", plain), Run("folded", folded)], REPRO)
    assert [m.count_options for m in report.models] == [(), (("fold_pooling", "true"),)]
    assert [m.name for m in report.side.layers] == ["rgb.fc1", "rgb.lif", "rgb.fc2"]  # every layer matched
    assert all(None not in m.rows for m in report.side.layers)
    assert render_html(report).count("<code>fold_pooling = true</code>") == 1

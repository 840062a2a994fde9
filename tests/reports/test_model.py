"""The report data model: per-sample values, neuron statistics, comparisons, SNN/ANN ratios, measured energy."""

from __future__ import annotations

import dataclasses
import json

import pytest

from snnprof import estimate_energy
from snnprof.counting.results import LayerRecord, ProfileResult, Totals
from snnprof.energy.measured import load_measured, parse_measured
from snnprof.errors import ConfigError
from snnprof.reports.build import Reproducibility, build_report
from snnprof.reports.model import energy_summary
from snnprof.run import Run
from tests.reports.conftest import DENSE_MACS_PER_SAMPLE, B, measured

REPRO = Reproducibility(command="snnprof report x.toml", date="2025-01-02 03:04:05 UTC", versions={"torch": "x"},
                        device="CPU", platform="test")


def entry(result: ProfileResult, label: str, profiles=("cmos45nm_fp32", "loihi"), **kw) -> Run:
    energies = {p: estimate_energy(result, p) for p in profiles}
    return Run(label, result, energies, **kw)


def hand_result() -> ProfileResult:
    """Two neuron layers with hand-written per-step and per-channel counts (batch 2, T 2)."""
    a = LayerRecord(name="a", type="LIFNode", neurons=5, neuron_updates=20, spikes=12,
                    spikes_per_step=[4, 8], updates_per_step=[10, 10],
                    spikes_per_channel=[0, 4, 8, 0], updates_per_channel=[4, 8, 8, 0])
    b = LayerRecord(name="b", type="IFNode", neurons=2, neuron_updates=8, spikes=0,
                    spikes_per_step=[0, 0], updates_per_step=[4, 4],
                    spikes_per_channel=[0, 0], updates_per_channel=[4, 4])
    conv = LayerRecord(name="conv", type="Conv2d", input_kind="spike", dense_macs=100, sops=30, flops=200)
    layers = [conv, a, b]
    return ProfileResult(model="hand", layers=layers, totals=Totals.from_layers(layers, params=7),
                         batch_size=2, time_steps=2, config={"input": {"seed": 3}, "path": "cfg.toml"})


def test_ann_per_sample_counts_and_energy_closed_form(ann_result):
    report = build_report([entry(ann_result, "ANN")], REPRO)
    m = report.models[0]
    assert m.is_ann and not report.is_comparison and report.comparison == ()
    assert m.per_sample["dense_macs"] == DENSE_MACS_PER_SAMPLE
    assert m.per_sample["macs"] == DENSE_MACS_PER_SAMPLE  # dense inputs: every MAC is a MAC
    assert m.per_sample["sops"] == 0
    cmos = m.energy("cmos45nm_fp32")
    assert cmos.per_sample_pj == pytest.approx(4.6 * DENSE_MACS_PER_SAMPLE)
    assert cmos.by_term_pj["mac"] == pytest.approx(4.6 * DENSE_MACS_PER_SAMPLE)
    assert sum(cmos.layers_pj.values()) == pytest.approx(cmos.per_sample_pj)
    assert m.neuron_layers == () and m.rate_per_step == ()


def test_layer_rows_are_whole_run_divided_by_batch(snn_result):
    m = build_report([entry(snn_result, "SNN")], REPRO).models[0]
    assert [r.name for r in m.layers] == [rec.name for rec in snn_result.layers]
    for row, rec in zip(m.layers, snn_result.layers, strict=True):
        assert row.sops == rec.sops / B and row.dense_macs == rec.dense_macs / B and row.spikes == rec.spikes / B
        assert row.neurons == rec.neurons
    lif = next(r for r in m.layers if r.name == "lif")
    assert lif.category == "neuron" and lif.firing_rate == snn_result.layer("lif").firing_rate
    assert next(r for r in m.layers if r.name == "0").category == "synaptic"
    loihi = estimate_energy(snn_result, "loihi")
    assert lif.energy_pj["loihi"] == pytest.approx(loihi.layers["lif"] / B)


def test_dead_and_saturated_channels_from_integer_counts():
    m = build_report([entry(hand_result(), "hand", profiles=("loihi",))], REPRO).models[0]
    a, b = m.neuron_layers
    assert a.dead_channels == (0,)  # 0 of 4 updates
    assert a.saturated_channels == (2,)  # 8 of 8 updates; channel 3 had no updates: neither
    assert a.rate_per_channel == (0.0, 0.5, 1.0, 0.0)
    assert b.dead_channels == (0, 1) and b.silent and not a.silent
    assert m.dead_channels == 3 and m.saturated_channels == 1
    assert a.rate_per_step == (4 / 10, 8 / 10)
    assert m.rate_per_step == (4 / 14, 8 / 14)  # summed over layers: (4+0)/(10+4), (8+0)/(10+4)
    assert m.firing_rate == 12 / 28 and m.seed == 3 and m.config_path == "cfg.toml"


def test_config_text_verbatim_or_json_of_parsed_config():
    result = hand_result()
    with_text = build_report([entry(result, "x", config_text="[model]\nname = 'x'\n")], REPRO).models[0]
    assert with_text.config_text == "[model]\nname = 'x'\n" and with_text.config_is_text
    without = build_report([entry(result, "x")], REPRO).models[0]
    assert json.loads(without.config_text) == result.config and not without.config_is_text


def test_comparison_ratios_against_the_first(snn_result, ann_result):
    report = build_report([entry(snn_result, "SNN"), entry(ann_result, "ANN")], REPRO)
    rows = {r.key: r for r in report.comparison}
    dense = rows["dense_macs"]
    assert dense.values == (snn_result.totals.dense_macs / B, DENSE_MACS_PER_SAMPLE)
    assert dense.ratios == (1.0, DENSE_MACS_PER_SAMPLE / (snn_result.totals.dense_macs / B))
    assert rows["macs"].ratios == (None, None)  # the SNN (reference) has no dense-input MACs
    assert rows["sops"].ratios == (1.0, 0.0)
    cmos = rows["energy_pj.cmos45nm_fp32"]
    snn_pj = estimate_energy(snn_result, "cmos45nm_fp32").per_sample_pj
    assert cmos.values[0] == pytest.approx(snn_pj)
    assert cmos.ratios[1] == pytest.approx(4.6 * DENSE_MACS_PER_SAMPLE / snn_pj)
    assert "measured" not in rows and report.profiles == ("cmos45nm_fp32", "loihi")


def test_snn_ann_ratio_per_profile_and_measured(snn_result, ann_result):
    entries = [entry(snn_result, "SNN", measured=parse_measured(measured(0.002))),
               entry(ann_result, "ANN", measured=parse_measured(measured(0.005)))]
    report = build_report(entries, REPRO)
    ratios = {r.profile: r for r in report.snn_ann}
    snn_pj = estimate_energy(snn_result, "cmos45nm_fp32").per_sample_pj
    assert ratios["cmos45nm_fp32"].ratio == pytest.approx(snn_pj / (4.6 * DENSE_MACS_PER_SAMPLE))
    assert ratios["loihi"].baseline_pj == 0.0 and ratios["loihi"].ratio is None  # loihi prices no MACs
    assert ratios["measured"].ratio == pytest.approx(0.4)
    assert ratios["measured"].subject_pj == pytest.approx(0.002e12)
    assert {r.key for r in report.comparison} >= {"measured"}


def test_no_snn_ann_ratio_without_an_ann(snn_result):
    report = build_report([entry(snn_result, "a"), entry(snn_result, "b")], REPRO)
    assert report.snn_ann == ()


def test_labels_made_unique_and_default_titles(snn_result):
    report = build_report([entry(snn_result, "a")] * 3, REPRO)
    assert [m.label for m in report.models] == ["a", "a (2)", "a (3)"]
    assert report.title == "a vs a (2) vs a (3): comparison"
    assert build_report([entry(snn_result, "a")], REPRO, title="T").title == "T"
    with pytest.raises(ValueError, match="at least one"):
        build_report([], REPRO)


def test_different_seeds_are_noted():
    r1, r2 = hand_result(), hand_result()
    r2 = dataclasses.replace(r2, config={"input": {"seed": 4}})
    report = build_report([entry(r1, "x", profiles=()), entry(r2, "y", profiles=())], REPRO)
    assert len(report.notes) == 1 and "different input seeds" in report.notes[0]
    assert "seed 3" in report.notes[0] and "seed 4" in report.notes[0]


def test_provenance_once_per_profile(snn_result, ann_result):
    report = build_report([entry(snn_result, "SNN"), entry(ann_result, "ANN")], REPRO)
    assert [p.profile for p in report.provenance] == ["cmos45nm_fp32", "loihi"]
    cmos = report.provenance[0]
    assert cmos.year == "2014" and cmos.technology == "45 nm" and cmos.fidelity == "derived"
    assert "Horowitz" in cmos.source and ("doi", "10.1109/ISSCC.2014.6757323") in cmos.links


def test_energy_summary_is_per_sample(snn_result):
    energy = estimate_energy(snn_result, "loihi")
    summary = energy_summary("loihi", energy, B)
    assert summary.by_term_pj == {k: v / B for k, v in energy.by_term_pj.items()}
    assert summary.total_pj == energy.total_pj and summary.fidelity == "simulated"


# --------------------------------------------------------------------------- measured energy


def test_measured_accepts_number_or_mean_std():
    m = parse_measured(measured(0.004, mode="inference", trials=5, nested={"a": 1}))
    assert (m.joules_per_sample, m.joules_per_sample_std) == (0.004, 0.0002)
    assert m.per_sample_pj == pytest.approx(4e9)
    assert m.details == {"mode": "inference", "trials": "5"}
    bare = parse_measured({"joules_per_sample": 1, "gpu_name": "G", "method": "sampling"})
    assert bare.joules_per_sample == 1.0 and bare.joules_per_sample_std is None


@pytest.mark.parametrize(
    ("patch", "key"),
    [
        ({"joules_per_sample": None}, "joules_per_sample"),
        ({"joules_per_sample": -1.0}, "joules_per_sample"),
        ({"joules_per_sample": True}, "joules_per_sample"),
        ({"joules_per_sample": {"std": 1}}, "joules_per_sample.mean"),
        ({"joules_per_sample": {"mean": 1, "std": "x"}}, "joules_per_sample.std"),
        ({"gpu_name": ""}, "gpu_name"),
        ({"method": 3}, "method"),
    ],
)
def test_measured_errors_name_the_key(patch, key):
    data = {**measured(), **patch}
    with pytest.raises(ConfigError) as err:
        parse_measured(data, "m.json")
    assert err.value.key == key and err.value.path == "m.json"


def test_measured_missing_key_and_not_an_object():
    data = measured()
    del data["joules_per_sample"]
    with pytest.raises(ConfigError, match="joules_per_sample: required key missing"):
        parse_measured(data, "m.json")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        parse_measured([1, 2], "m.json")  # type: ignore[arg-type]


def test_load_measured_file(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(measured(0.001, model="tiny")))
    m, raw = load_measured(path)
    assert m.source == str(path) and raw["model"] == "tiny"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json: cannot read measured-energy JSON"):
        load_measured(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_measured(tmp_path / "missing.json")

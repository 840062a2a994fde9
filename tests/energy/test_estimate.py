"""Energy estimation: closed-form checks on hand-built profiling results."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from snnprof.counting.results import LayerRecord, ProfileResult, Totals
from snnprof.energy import EnergyResult, HardwareProfile, estimate_energy, list_profiles, load_profile
from snnprof.energy.estimate import crossbar_pe_cycles, pe_cycle_energy_pj
from snnprof.errors import ProfileFileError

T, B = 4, 2

# SpikeSim constants, written out here so the test checks the profile file, not itself.
XBAR, XBAR_AR, TILE, TEMP, SUB, ADC = 64, 1.76423, 397.0, 0.2, 1.15e-6, 2.03084
HTREE, MUX, FETCH, NEURON = 19.64 * 8, 0.094245, 4.64, 1.274 * 4.0


def spikesim_pe_cycle(k2: int) -> float:
    pe_ar = k2 * XBAR_AR + (XBAR / 8) * (ADC + MUX)
    return HTREE + FETCH + NEURON + (XBAR / 8) * pe_ar + (XBAR / 8) * 16 * SUB + (XBAR / 8) * TEMP + TILE


def conv_layer(frames: int = T * B, macs: int = 0, sops: int = 1000) -> LayerRecord:
    return LayerRecord(
        name="conv1",
        type="Conv2d",
        input_kind="spike" if sops else "dense",
        calls=1,
        params=100 * 70 * 9,
        macs=macs,
        dense_macs=70 * 100 * 9 * 64 * frames,
        flops=2 * 70 * 100 * 9 * 64 * frames,
        sops=sops,
        weight_read_bytes=4 * 100 * 70 * 9,
        input_read_bytes=4 * 70 * 100 * frames,
        output_write_bytes=4 * 100 * 64 * frames,
        geometry={
            "in_channels": 70,
            "out_channels": 100,
            "kernel_elems": 9,
            "out_positions": 64,
            "frames": frames,
        },
    )


def lif_layer(frames: int = T * B, spikes: int = 300) -> LayerRecord:
    return LayerRecord(
        name="lif1",
        type="LIFNode",
        calls=1,
        neurons=100 * 64,
        neuron_updates=100 * 64 * frames,
        spikes=spikes,
        firing_rate=spikes / (100 * 64 * frames),
        input_read_bytes=4 * 100 * 64 * frames,
        output_write_bytes=100 * 64 * frames,
        state_read_bytes=4 * 100 * 64 * frames,
        state_write_bytes=4 * 100 * 64 * frames,
    )


def fc_layer(frames: int = T * B, macs: int = 0, sops: int = 250) -> LayerRecord:
    return LayerRecord(
        name="fc",
        type="Linear",
        input_kind="spike",
        calls=1,
        params=6400 * 10,
        macs=macs,
        dense_macs=6400 * 10 * frames,
        sops=sops,
        weight_read_bytes=4 * 6400 * 10,
        geometry={
            "in_channels": 6400,
            "out_channels": 10,
            "kernel_elems": 1,
            "out_positions": 1,
            "frames": frames,
        },
    )


def make_result(layers: list[LayerRecord], batch: int = B, steps: int = T) -> ProfileResult:
    return ProfileResult(
        model="toy",
        layers=layers,
        totals=Totals.from_layers(layers, params=sum(layer.params for layer in layers)),
        batch_size=batch,
        time_steps=steps,
    )


def sample_result(frames: int = T * B) -> ProfileResult:
    """A conv (dense input) -> LIF -> linear (spike input) net."""
    return make_result([conv_layer(frames, macs=5000, sops=0), lif_layer(frames), fc_layer(frames)])


def assert_sums(energy: EnergyResult) -> None:
    assert math.fsum(energy.layers.values()) == pytest.approx(energy.total_pj, rel=1e-12, abs=1e-9)
    assert math.fsum(energy.by_term_pj.values()) == pytest.approx(energy.total_pj, rel=1e-12, abs=1e-9)
    for name, terms in energy.layer_terms.items():
        assert math.fsum(terms.values()) == pytest.approx(energy.layers[name], rel=1e-12, abs=1e-9)
    assert energy.per_sample_pj == pytest.approx(energy.total_pj / B)


# ------------------------------------------------------------------------------------ per-event


def test_fp32_closed_form():
    result = sample_result()
    energy = estimate_energy(result, "cmos45nm_fp32")
    macs, sops = result.totals.macs, result.totals.sops
    assert energy.profile == "cmos45nm_fp32"
    assert set(energy.by_term_pj) == {"mac", "ac"}
    assert energy.by_term_pj["mac"] == pytest.approx(4.6 * macs)
    assert energy.by_term_pj["ac"] == pytest.approx(0.9 * sops)
    assert energy.total_pj == pytest.approx(4.6 * macs + 0.9 * sops)
    assert energy.per_sample_pj == pytest.approx((4.6 * macs + 0.9 * sops) / B)
    assert energy.layers == pytest.approx({"conv1": 4.6 * 5000, "lif1": 0.0, "fc": 0.9 * 250})
    assert energy.layer_terms["fc"] == pytest.approx({"mac": 0.0, "ac": 0.9 * 250})
    assert energy.provenance == load_profile("cmos45nm_fp32").provenance
    assert_sums(energy)


@pytest.mark.parametrize(
    ("name", "mac", "ac"),
    [("cmos45nm_fp32", 4.6, 0.9), ("cmos45nm_fp16", 1.5, 0.4), ("cmos45nm_int8", 0.23, 0.03)],
)
def test_horowitz_presets(name, mac, ac):
    result = sample_result()
    energy = estimate_energy(result, name)
    assert energy.by_term_pj["mac"] == pytest.approx(mac * result.totals.macs)
    assert energy.by_term_pj["ac"] == pytest.approx(ac * result.totals.sops)


def test_ann_view_all_dense():
    layer = replace(conv_layer(sops=0), macs=conv_layer().dense_macs)
    energy = estimate_energy(make_result([layer]), "cmos45nm_fp32")
    assert energy.total_pj == pytest.approx(4.6 * layer.dense_macs)


def test_memory_terms():
    result = sample_result()
    tot = result.totals
    energy = estimate_energy(result, "cmos45nm_fp32_mem")
    assert energy.by_term_pj == pytest.approx(
        {
            "mac": 4.6 * tot.macs,
            "ac": 0.9 * tot.sops,
            "mem_weight_read": 12.5 * tot.weight_read_bytes,
            "mem_input_read": 2.5 * tot.input_read_bytes,
            "mem_output_write": 2.5 * tot.output_write_bytes,
            "mem_state_read": 2.5 * tot.state_read_bytes,
            "mem_state_write": 2.5 * tot.state_write_bytes,
        }
    )
    [note] = energy.warnings  # compute + memory priced; only neuron updates/spikes are not
    assert "neuron updates" in note
    assert "memory" not in note
    assert_sums(energy)


def test_loihi_prices_events_and_warns_on_macs():
    result = sample_result()
    tot = result.totals
    energy = estimate_energy(result, "loihi")
    assert "mac" not in energy.by_term_pj
    assert energy.by_term_pj == pytest.approx(
        {"ac": 23.6 * tot.sops, "neuron_update": 52.0 * tot.neuron_updates, "spike": 1.7 * tot.spikes}
    )
    mac_warnings = [w for w in energy.warnings if "MACs are not priced" in w]
    assert len(mac_warnings) == 1
    assert f"{tot.macs:,}" in mac_warnings[0]
    assert "loihi" in mac_warnings[0]
    assert_sums(energy)


def test_no_mac_warning_without_dense_macs():
    result = make_result([conv_layer(macs=0, sops=1000), lif_layer()])
    energy = estimate_energy(result, "loihi")
    assert not [w for w in energy.warnings if "MAC" in w]
    [note] = energy.warnings
    assert "memory traffic" in note
    assert "neuron" not in note


def test_truenorth_all_in_no_extra_warnings():
    result = make_result([conv_layer(macs=0, sops=1000), lif_layer()])
    energy = estimate_energy(result, "truenorth")
    assert energy.total_pj == pytest.approx(26.0 * 1000)
    assert energy.by_term_pj["neuron_update"] == 0.0
    assert energy.warnings == []


def test_unpriced_sops_warn():
    prof = HardwareProfile(
        name="mac_only",
        provenance={
            "source": "x",
            "year": 2020,
            "technology_nm": 7,
            "precision": "fp32",
            "fidelity": "derived",
        },
        energy_pj={"mac": 1.0},
    )
    result = sample_result()
    energy = estimate_energy(result, prof)
    assert energy.total_pj == pytest.approx(1.0 * result.totals.macs)
    assert any("synaptic operations" in w and "not priced" in w for w in energy.warnings)


def test_unpriced_neuron_updates_are_named():
    result = sample_result()
    energy = estimate_energy(result, "cmos45nm_fp32")
    [note] = energy.warnings
    assert f"{result.totals.neuron_updates:,} neuron updates" in note
    assert f"{result.totals.spikes:,} spikes" in note
    tot = result.totals
    nbytes = sum(getattr(tot, f"{k}_bytes") for k in ("weight_read", "input_read", "output_write"))
    nbytes += tot.state_read_bytes + tot.state_write_bytes
    assert f"{nbytes:,} bytes of memory traffic" in note


def test_profile_by_path_and_object(tmp_path):
    result = sample_result()
    shipped = load_profile("cmos45nm_fp32")
    path = tmp_path / "p.toml"
    path.write_text(
        '[profile]\nname = "p"\nmodel = "per_event"\n'
        '[provenance]\nsource = "s"\nyear = 2014\ntechnology_nm = 45\n'
        'precision = "fp32"\nfidelity = "derived"\n'
        "[energy_pj]\nmac = 4.6\nac = 0.9\n",
        encoding="utf-8",
    )
    by_name = estimate_energy(result, "cmos45nm_fp32")
    by_path = estimate_energy(result, path)
    by_obj = estimate_energy(result, shipped)
    assert by_path.total_pj == by_name.total_pj == by_obj.total_pj
    assert by_path.profile == "p"


def test_repeated_layer_names_accumulate():
    layers = [fc_layer(sops=100), fc_layer(sops=50)]
    energy = estimate_energy(make_result(layers), "cmos45nm_fp32")
    assert energy.layers == pytest.approx({"fc": 0.9 * 150})
    assert_sums(energy)


@pytest.mark.parametrize("name", list_profiles())
def test_every_profile_estimates_consistently(name):
    result = sample_result()
    energy = estimate_energy(result, name)
    assert energy.total_pj > 0
    assert set(energy.layers) == {"conv1", "lif1", "fc"}
    assert_sums(energy)
    out = energy.to_dict()
    assert set(out) == {
        "total_pj",
        "per_sample_pj",
        "by_term_pj",
        "layers",
        "layer_terms",
        "provenance",
        "warnings",
        "unpriced",
        "coverage",
        "host_profile",
    }
    assert 0.0 <= out["coverage"] <= 1.0 and all(isinstance(v, int) for v in out["unpriced"].values())
    assert isinstance(out["total_pj"], float)
    assert all(isinstance(v, float) for v in out["by_term_pj"].values())
    assert all(isinstance(v, float) for v in out["layers"].values())
    assert out["provenance"]["fidelity"] in ("measured", "simulated", "derived")
    json.dumps(out)


def test_zero_batch_does_not_divide():
    result = make_result([fc_layer()], batch=0)
    energy = estimate_energy(result, "cmos45nm_fp32")
    assert energy.per_sample_pj == energy.total_pj


# ------------------------------------------------------------------------------------ crossbar


def test_pe_cycle_energy_matches_spikesim():
    xbar = load_profile("spikesim_rram").crossbar
    assert pe_cycle_energy_pj(xbar, 1) == pytest.approx(715.58, abs=0.01)
    assert pe_cycle_energy_pj(xbar, 9) == pytest.approx(828.49, abs=0.01)
    assert spikesim_pe_cycle(1) == pytest.approx(715.58, abs=0.01)
    assert spikesim_pe_cycle(9) == pytest.approx(828.49, abs=0.01)
    for k2 in (1, 4, 9, 25):
        assert pe_cycle_energy_pj(xbar, k2) == pytest.approx(spikesim_pe_cycle(k2), rel=1e-12)


def test_pe_cycles_ceil():
    assert crossbar_pe_cycles({"in_channels": 64, "out_channels": 64, "out_positions": 10}, 64) == 10
    assert crossbar_pe_cycles({"in_channels": 65, "out_channels": 64, "out_positions": 10}, 64) == 20
    assert crossbar_pe_cycles({"in_channels": 70, "out_channels": 130, "out_positions": 1}, 64) == 6


def test_crossbar_closed_form():
    result = sample_result()
    energy = estimate_energy(result, "spikesim_rram")
    conv = math.ceil(100 / 64) * math.ceil(70 / 64) * 64 * spikesim_pe_cycle(9) * T * B
    fc = math.ceil(10 / 64) * math.ceil(6400 / 64) * 1 * spikesim_pe_cycle(1) * T * B
    assert energy.layers == pytest.approx({"conv1": conv, "lif1": 0.0, "fc": fc}, rel=1e-12)
    assert energy.by_term_pj == pytest.approx({"crossbar": conv + fc}, rel=1e-12)
    assert energy.total_pj == pytest.approx(conv + fc, rel=1e-12)
    assert energy.per_sample_pj == pytest.approx((conv + fc) / B, rel=1e-12)
    assert energy.warnings == []
    assert_sums(energy)


def test_crossbar_scales_with_time_steps_not_spikes():
    base = estimate_energy(sample_result(frames=T * B), "spikesim_rram")
    doubled = estimate_energy(
        make_result(sample_result(frames=2 * T * B).layers, steps=2 * T), "spikesim_rram"
    )
    assert doubled.total_pj == pytest.approx(2 * base.total_pj, rel=1e-12)
    quiet = make_result([conv_layer(sops=0), lif_layer(spikes=0), fc_layer(sops=0)])
    assert estimate_energy(quiet, "spikesim_rram").total_pj == pytest.approx(base.total_pj, rel=1e-12)


def test_crossbar_warns_on_missing_geometry():
    attn = LayerRecord(name="attn/matmul.0", type="matmul", macs=0, dense_macs=4096, sops=300)
    result = make_result([fc_layer(), attn])
    energy = estimate_energy(result, "spikesim_rram")
    assert energy.layers["attn/matmul.0"] == 0.0
    [note] = energy.warnings
    assert "attn/matmul.0" in note
    assert "not priced" in note


# ------------------------------------------------------------------------------------ coverage and host


def test_unpriced_counts_and_coverage_closed_form():
    result = sample_result()
    tot = result.totals
    ops = tot.macs + tot.sops + tot.neuron_updates + tot.spikes
    loihi = estimate_energy(result, "loihi")
    memory = {f"mem_{k}": getattr(tot, f"{k}_bytes") for k in
              ("weight_read", "input_read", "output_write", "state_read", "state_write")}
    assert loihi.unpriced == {"mac": tot.macs, **{k: v for k, v in memory.items() if v}}
    assert loihi.coverage == 1 - tot.macs / ops
    cmos = estimate_energy(result, "cmos45nm_fp32")
    assert cmos.unpriced == {"neuron_update": tot.neuron_updates, "spike": tot.spikes,
                             **{k: v for k, v in memory.items() if v}}
    assert cmos.coverage == 1 - (tot.neuron_updates + tot.spikes) / ops
    assert estimate_energy(result, "cmos45nm_fp32_mem").unpriced == {"neuron_update": tot.neuron_updates,
                                                                      "spike": tot.spikes}
    assert cmos.counts["mac"] == tot.macs and cmos.counts["ac"] == tot.sops


def test_crossbar_coverage_leaves_only_layers_without_geometry():
    bare = replace(fc_layer(macs=40, sops=250), name="matmul", geometry={})
    result = make_result([conv_layer(macs=0, sops=1000), lif_layer(), bare])
    energy = estimate_energy(result, "spikesim_rram")
    assert energy.unpriced == {"mac": 40, "ac": 250}
    ops = 1000 + 40 + 250 + lif_layer().neuron_updates + lif_layer().spikes
    assert energy.coverage == 1 - (40 + 250) / ops


def test_no_operations_is_full_coverage():
    result = make_result([replace(fc_layer(), dense_macs=0, sops=0, weight_read_bytes=0)])
    assert estimate_energy(result, "loihi").coverage == 1.0


def test_host_profile_prices_what_the_chip_cannot_as_separate_terms():
    result = sample_result()
    tot = result.totals
    alone = estimate_energy(result, "loihi")
    mixed = estimate_energy(result, "loihi", host_profile="cmos45nm_fp32")
    assert mixed.host_profile == "cmos45nm_fp32" and alone.host_profile is None
    assert mixed.by_term_pj["host_mac"] == pytest.approx(4.6 * tot.macs)
    assert mixed.by_term_pj["host_ac"] == 0.0  # loihi prices the SOPs itself
    assert mixed.total_pj == pytest.approx(alone.total_pj + 4.6 * tot.macs)
    assert "mac" not in mixed.unpriced and mixed.coverage == 1.0
    assert any("host profile 'cmos45nm_fp32'" in w and "host_mac" in w for w in mixed.warnings)
    assert not any("MACs are not priced" in w for w in mixed.warnings)
    assert_sums(mixed)
    full = estimate_energy(result, "cmos45nm_fp32", host_profile="cmos45nm_fp32")
    assert full.total_pj == estimate_energy(result, "cmos45nm_fp32").total_pj  # nothing to take over


def test_host_profile_must_be_per_event():
    with pytest.raises(ProfileFileError, match="per_event host profile"):
        estimate_energy(sample_result(), "loihi", host_profile="spikesim_rram")

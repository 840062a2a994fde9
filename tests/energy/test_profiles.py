"""Hardware-profile loading and validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnprof.energy.profiles import (
    CROSSBAR_KEYS,
    FIDELITIES,
    HardwareProfile,
    list_profiles,
    load_profile,
)
from snnprof.errors import ProfileFileError

SHIPPED = {
    "cmos45nm_fp32",
    "cmos45nm_fp16",
    "cmos45nm_int8",
    "cmos45nm_fp32_mem",
    "loihi",
    "truenorth",
    "spikesim_rram",
}

GOOD = """
[profile]
name = "mine"
description = "a test profile"
model = "per_event"

[provenance]
source = "me"
year = 2024
technology_nm = 7
precision = "fp32"
fidelity = "derived"

[energy_pj]
mac = 1.0
ac = 0.5
"""

CROSSBAR = """
[profile]
name = "xbar"
model = "crossbar"

[provenance]
source = "me"
year = 2023
technology_nm = 65
precision = "analog"
fidelity = "simulated"

[crossbar]
xbar_size = 64
xbar_ar_pj = 1.76423
tile_buffer_pj = 397.0
temp_buffer_pj = 0.2
sub_pj = 1.15e-6
adc_pj = 2.03084
htree_pj = 157.12
mux_pj = 0.094245
mem_fetch_pj = 4.64
neuron_pj = 5.096
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------ shipped


def test_list_profiles_sorted_and_complete():
    names = list_profiles()
    assert names == sorted(names)
    assert set(names) >= SHIPPED


@pytest.mark.parametrize("name", list_profiles())
def test_shipped_profile_loads_with_provenance(name):
    prof = load_profile(name)
    assert isinstance(prof, HardwareProfile)
    assert prof.name == name
    assert prof.description
    prov = prof.provenance
    for key in ("source", "year", "technology_nm", "precision", "fidelity"):
        assert key in prov, key
    assert isinstance(prov["source"], str) and prov["source"]
    assert isinstance(prov["year"], int)
    assert prov["technology_nm"] > 0
    assert prov["fidelity"] in FIDELITIES
    assert prov.get("notes"), "shipped profiles explain their numbers"
    if prof.model == "per_event":
        assert prof.energy_pj
        assert not prof.crossbar
    else:
        assert set(prof.crossbar) == set(CROSSBAR_KEYS)


@pytest.mark.parametrize(
    ("name", "mac", "ac"),
    [("cmos45nm_fp32", 4.6, 0.9), ("cmos45nm_fp16", 1.5, 0.4), ("cmos45nm_int8", 0.23, 0.03)],
)
def test_horowitz_compute_profiles(name, mac, ac):
    prof = load_profile(name)
    assert prof.energy_pj == {"mac": mac, "ac": ac}
    assert prof.memory_pj_per_byte == {}
    assert prof.provenance["technology_nm"] == 45
    assert prof.provenance["year"] == 2014
    assert prof.provenance["fidelity"] == "derived"
    assert prof.provenance["doi"] == "10.1109/ISSCC.2014.6757323"
    assert "derived" in prof.provenance["notes"]


def test_memory_profile_values():
    prof = load_profile("cmos45nm_fp32_mem")
    assert prof.energy_pj == {"mac": 4.6, "ac": 0.9}
    # 1 MB SRAM: 100 pJ per 64-bit word; 32 KB SRAM: 20 pJ per 64-bit word.
    assert prof.memory_pj_per_byte == {
        "weight_read": 100 / 8,
        "input_read": 20 / 8,
        "output_write": 20 / 8,
        "state_read": 20 / 8,
        "state_write": 20 / 8,
    }
    assert prof.provenance["fidelity"] == "derived"


def test_loihi_values():
    prof = load_profile("loihi")
    assert prof.energy_pj == {"ac": 23.6, "neuron_update": 52.0, "spike": 1.7}
    assert "mac" not in prof.energy_pj
    assert prof.provenance["fidelity"] == "simulated"
    assert prof.provenance["technology_nm"] == 14
    assert prof.provenance["year"] == 2018


def test_truenorth_values():
    prof = load_profile("truenorth")
    assert prof.energy_pj["ac"] == 26.0
    assert "mac" not in prof.energy_pj
    assert prof.provenance["fidelity"] == "measured"
    assert prof.provenance["technology_nm"] == 28
    assert "all-in" in prof.provenance["notes"]


def test_spikesim_values():
    prof = load_profile("spikesim_rram")
    assert prof.model == "crossbar"
    assert prof.crossbar == {
        "xbar_size": 64,
        "xbar_ar_pj": 1.76423,
        "tile_buffer_pj": 397.0,
        "temp_buffer_pj": 0.2,
        "sub_pj": 1.15e-6,
        "adc_pj": 2.03084,
        "htree_pj": pytest.approx(19.64 * 8),
        "mux_pj": 0.094245,
        "mem_fetch_pj": 4.64,
        "neuron_pj": pytest.approx(1.274 * 4),
    }
    assert isinstance(prof.crossbar["xbar_size"], int)
    assert prof.provenance["fidelity"] == "simulated"


# ------------------------------------------------------------------------------------ loading


def test_load_by_path_str_and_pathlike(tmp_path):
    path = _write(tmp_path, GOOD)
    for arg in (path, str(path)):
        prof = load_profile(arg)
        assert prof.name == "mine"
        assert prof.energy_pj == {"mac": 1.0, "ac": 0.5}
        assert prof.path == str(path)


def test_load_passes_profile_through():
    prof = load_profile("cmos45nm_fp32")
    assert load_profile(prof) is prof


def test_crossbar_file_loads(tmp_path):
    prof = load_profile(_write(tmp_path, CROSSBAR))
    assert prof.model == "crossbar"
    assert prof.crossbar == load_profile("spikesim_rram").crossbar


def test_to_dict_round_trip():
    for name in list_profiles():
        prof = load_profile(name)
        again = HardwareProfile.from_dict(prof.to_dict(), path=prof.path)
        assert again == prof


def test_unknown_name_lists_shipped():
    with pytest.raises(ProfileFileError) as info:
        load_profile("no_such_chip")
    message = str(info.value)
    assert "no_such_chip" in message
    for name in SHIPPED:
        assert name in message


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ProfileFileError) as info:
        load_profile(path)
    assert str(path) in str(info.value)
    assert "not found" in str(info.value)


# ------------------------------------------------------------------------------------ bad files

BAD = [
    pytest.param(GOOD.replace("mac = 1.0", "mac = = 1.0"), "", "valid TOML", id="invalid-toml"),
    pytest.param(GOOD + "sop = 0.9\n", "energy_pj.sop", "unknown key; allowed: mac, ac", id="unknown-energy-key"),
    pytest.param(GOOD + "[extra]\nx = 1\n", "extra", "known table", id="unknown-table"),
    pytest.param(
        GOOD.replace('fidelity = "derived"', 'fidelity = "derived"\ncolor = "red"'),
        "provenance.color",
        "unknown key; allowed: source, year",
        id="unknown-provenance-key",
    ),
    pytest.param(GOOD.replace("mac = 1.0", 'mac = "1.0"'), "energy_pj.mac", "number", id="wrong-type-str"),
    pytest.param(GOOD.replace("mac = 1.0", "mac = true"), "energy_pj.mac", "number", id="wrong-type-bool"),
    pytest.param(GOOD.replace("year = 2024", 'year = "2024"'), "provenance.year", "year", id="wrong-year"),
    pytest.param(GOOD.replace("mac = 1.0", "mac = -1.0"), "energy_pj.mac", "non-negative", id="negative"),
    pytest.param(GOOD.replace("mac = 1.0", "mac = nan"), "energy_pj.mac", "finite", id="nan"),
    pytest.param(GOOD.replace("year = 2024\n", ""), "provenance.year", "missing", id="missing-year"),
    pytest.param(GOOD.replace('model = "per_event"\n', ""), "profile.model", "missing", id="missing-model"),
    pytest.param(GOOD.replace('name = "mine"\n', ""), "profile.name", "missing", id="missing-name"),
    pytest.param(GOOD.replace("derived", "guessed"), "provenance.fidelity", "measured", id="bad-fidelity"),
    pytest.param(GOOD.replace("per_event", "magic"), "profile.model", "crossbar", id="bad-model"),
    pytest.param(
        GOOD.split("[provenance]", maxsplit=1)[0] + "[energy_pj]\nmac = 1.0\n",
        "provenance",
        "table",
        id="no-provenance",
    ),
    pytest.param(GOOD.split("[energy_pj]", maxsplit=1)[0], "energy_pj", "at least one", id="no-energy"),
    pytest.param(
        GOOD.replace("technology_nm = 7", "technology_nm = 0"),
        "provenance.technology_nm",
        "positive",
        id="zero-node",
    ),
    pytest.param(
        GOOD + "[crossbar]" + CROSSBAR.split("[crossbar]")[1],
        "crossbar",
        "model",
        id="crossbar-in-per-event",
    ),
    pytest.param(CROSSBAR.split("[crossbar]", maxsplit=1)[0], "crossbar", "required", id="crossbar-missing"),
    pytest.param(CROSSBAR.replace("adc_pj = 2.03084\n", ""), "crossbar.adc_pj", "missing", id="xbar-key"),
    pytest.param(
        CROSSBAR.replace("xbar_size = 64", "xbar_size = 64.0"),
        "crossbar.xbar_size",
        "integer",
        id="xbar-float",
    ),
    pytest.param(
        CROSSBAR.replace("sub_pj = 1.15e-6", "sub_pj = -1.15e-6"),
        "crossbar.sub_pj",
        "non-negative",
        id="xbar-negative",
    ),
]


@pytest.mark.parametrize(("text", "key", "expected"), BAD)
def test_bad_profile_files(tmp_path, text, key, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ProfileFileError) as info:
        load_profile(path)
    err = info.value
    message = str(err)
    assert str(path) in message
    assert err.path == str(path)
    assert err.key == key
    assert key in message
    assert expected in message


def test_from_dict_validates():
    with pytest.raises(ProfileFileError) as info:
        HardwareProfile.from_dict({"profile": {"name": "x", "model": "per_event"}}, path="<mine>")
    assert info.value.path == "<mine>"

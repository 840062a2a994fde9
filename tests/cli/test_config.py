"""Config validation: every bad config gives one ConfigError naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnprof.config import RunConfig, load_config, parse_config
from snnprof.errors import ConfigError, ProfileFileError
from snnprof.models import get_entry, list_models

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIGS = sorted((REPO / "configs").glob("*.toml"))

GOOD = """\
[model]
name = "sj_spiking_cnn"
kwargs = { in_channels = 2, num_classes = 10, image_size = 16 }
[input]
source = "synthetic"
batch_size = 2
time_steps = 3
seed = 1
kwargs = { image_size = 16 }
[count]
sop_convention = "exact"
count_weighting = "nonzero"
overrides = { "conv1" = "dense" }
strict = false
[energy]
profiles = ["cmos45nm_fp32", "loihi"]
"""


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def replace(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new)


def test_good_config_parses(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)
    assert cfg.path == path
    assert cfg.text == GOOD
    assert cfg.model.name == "sj_spiking_cnn"
    assert cfg.model.kwargs == {"in_channels": 2, "num_classes": 10, "image_size": 16}
    assert cfg.model.checkpoint is None
    assert (cfg.input.batch_size, cfg.input.time_steps, cfg.input.seed) == (2, 3, 1)
    assert cfg.input.kwargs == {"image_size": 16}
    assert cfg.count.count_weighting == "nonzero"
    assert cfg.count.overrides == {"conv1": "dense"}
    assert cfg.energy.profiles == ("cmos45nm_fp32", "loihi")


def test_to_dict_is_the_resolved_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    data = cfg.to_dict()
    assert set(data) == {"path", "model", "input", "count", "energy"}
    assert data["input"]["batch_size"] == 2
    assert data["energy"]["profiles"] == ["cmos45nm_fp32", "loihi"]


def test_defaults_come_from_the_zoo_entry(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[model]\nname = "sj_spiking_cnn"\n'))
    defaults = get_entry("sj_spiking_cnn").defaults
    assert cfg.input.batch_size == defaults["batch_size"]
    assert cfg.input.time_steps == defaults["time_steps"]
    assert cfg.input.source == "synthetic"
    assert cfg.count.sop_convention == "exact"
    assert cfg.count.count_weighting == "value"
    assert cfg.count.strict is False
    assert cfg.energy.profiles == ("cmos45nm_fp32",)


@pytest.mark.parametrize("path", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tomllib

    inp = tomllib.loads(path.read_text(encoding="utf-8")).get("input", {})
    if inp.get("source") == "dataset":  # the data a shipped dataset config reads comes from `snnprof data synth`
        from snnprof.data.synth import write_synthetic

        monkeypatch.chdir(tmp_path)
        write_synthetic(inp["reader"], tmp_path / inp["path"])
    cfg = load_config(path)
    assert cfg.model.name in list_models()


BAD_CASES = {
    "unknown_section": (GOOD + "[extra]\nx = 1\n", "extra", "allowed: model, input, count, energy"),
    "unknown_key": (replace("seed = 1", "sed = 1"), "input.sed", "allowed:"),
    "wrong_type_batch": (replace("batch_size = 2", 'batch_size = "2"'), "input.batch_size", "integer"),
    "bool_is_not_int": (replace("batch_size = 2", "batch_size = true"), "input.batch_size", "integer"),
    "wrong_type_kwargs": (replace("kwargs = { image_size = 16 }", "kwargs = 16"), "input.kwargs", "table"),
    "wrong_type_strict": (replace("strict = false", 'strict = "no"'), "count.strict", "boolean"),
    "wrong_type_profiles": (
        replace('profiles = ["cmos45nm_fp32", "loihi"]', 'profiles = "loihi"'),
        "energy.profiles",
        "array",
    ),
    "missing_model_name": (replace('name = "sj_spiking_cnn"', ""), "model.name", "required"),
    "missing_model_section": ("[input]\nbatch_size = 1\n", "model", "required"),
    "unknown_model": (
        replace('name = "sj_spiking_cnn"', 'name = "resnet9000"'),
        "model.name",
        "sj_spiking_cnn",
    ),
    "unknown_profile": (replace('"loihi"]', '"loihi2000"]'), "energy.profiles", "cmos45nm_fp32"),
    "negative_batch": (replace("batch_size = 2", "batch_size = -4"), "input.batch_size", "positive"),
    "zero_time_steps": (replace("time_steps = 3", "time_steps = 0"), "input.time_steps", "positive"),
    "bad_override_kind": (
        replace('"conv1" = "dense"', '"conv1" = "analog"'),
        "count.overrides.conv1",
        "spike",
    ),
    "bad_sop_convention": (
        replace('sop_convention = "exact"', 'sop_convention = "rate"'),
        "count.sop_convention",
        "exact",
    ),
    "bad_count_weighting": (
        replace('count_weighting = "nonzero"', 'count_weighting = "binary"'),
        "count.count_weighting",
        "nonzero",
    ),
    "bad_source": (replace('source = "synthetic"', 'source = "camera"'), "input.source", "synthetic"),
    "dataset_source": (
        replace('source = "synthetic"', 'source = "dataset"'),
        "input.path",
        "needs both",
    ),
    "dataset_missing_path": (
        replace('source = "synthetic"', 'source = "dataset"\npath = "no/such/dir"\nreader = "x"'),
        "input.reader",
        "unknown reader",
    ),
    "path_without_dataset": (replace("seed = 1", 'seed = 1\npath = "data/"'), "input.path", "dataset"),
    "missing_checkpoint": (
        replace("[input]", 'checkpoint = "nope/model.pt"\n[input]'),
        "model.checkpoint",
        "nope/model.pt",
    ),
    "missing_profile_file": (replace('"loihi"]', '"hw/mine.toml"]'), "energy.profiles", "hw/mine.toml"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_config_names_path_and_key(tmp_path: Path, case: str) -> None:
    text, key, expected = BAD_CASES[case]
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.key == key
    assert str(path) in str(err)
    assert key in str(err)
    assert expected in str(err)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="not found") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_invalid_toml_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[model]\nname = "sj_spiking_cnn"\nkwargs = { oops\n')
    with pytest.raises(ConfigError, match="invalid TOML") as info:
        load_config(path)
    assert "line 3" in str(info.value)
    assert str(path) in str(info.value)


def test_checkpoint_resolves_relative_to_config(tmp_path: Path) -> None:
    (tmp_path / "ckpt.pt").write_bytes(b"")
    cfg = load_config(write(tmp_path, replace("[input]", 'checkpoint = "ckpt.pt"\n[input]')))
    assert cfg.model.checkpoint == tmp_path / "ckpt.pt"


def test_profile_file_path_is_accepted(tmp_path: Path) -> None:
    from snnprof.energy import load_profile

    shipped = Path(load_profile("loihi").path)
    mine = tmp_path / "mine.toml"
    mine.write_text(shipped.read_text(encoding="utf-8"), encoding="utf-8")
    cfg = load_config(write(tmp_path, replace('"loihi"]', '"mine.toml"]')))
    assert cfg.energy.profiles == ("cmos45nm_fp32", str(mine))


def test_invalid_profile_file_is_a_profile_error(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text("[profile]\n", encoding="utf-8")
    with pytest.raises(ProfileFileError):
        load_config(write(tmp_path, replace('"loihi"]', '"broken.toml"]')))


def test_parse_config_from_text() -> None:
    cfg = parse_config(GOOD, "inline.toml")
    assert cfg.path == Path("inline.toml")
    assert cfg.model.name == "sj_spiking_cnn"

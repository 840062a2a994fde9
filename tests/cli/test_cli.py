"""The ``snnprof`` CLI: exit codes, one-line errors, nothing written on failure, JSON/CSV outputs.

Tests in the "engine" section run the real counting engine and energy estimator end to end on
small inputs (batch 1, few time steps) so they stay fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from snnprof import __version__
from snnprof.cli import app
from snnprof.errors import HardwareMissingError
from snnprof.models import create_model, list_models

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()

SMALL_SJ = """\
[model]
name = "sj_spiking_cnn"
kwargs = { in_channels = 2, num_classes = 10, image_size = 16 }
[input]
source = "synthetic"
batch_size = 2
time_steps = 2
seed = 0
kwargs = { image_size = 16 }
[count]
sop_convention = "exact"
overrides = {}
[energy]
profiles = ["cmos45nm_fp32", "loihi"]
"""

INT_FIELDS = ("params", "macs", "dense_macs", "flops", "sops", "neurons", "neuron_updates", "spikes")


def write(tmp_path: Path, text: str, name: str = "run.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]


# --------------------------------------------------------------------------- basics


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize("command", [[], ["count"], ["profiles"], ["zoo"]])
def test_help_has_an_example(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout
    assert "snnprof" in result.stdout


def test_zoo_lists_models(tmp_path: Path) -> None:
    out = tmp_path / "zoo.json"
    result = invoke("zoo", "--json", out)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [r["name"] for r in rows] == list_models()
    for name in list_models():
        assert name in result.stdout


def test_profiles_lists_shipped_profiles(tmp_path: Path) -> None:
    from snnprof.energy import list_profiles

    out = tmp_path / "profiles.json"
    result = invoke("profiles", "--json", out)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [r["name"] for r in rows] == list_profiles()
    assert all({"fidelity", "technology_nm", "precision", "source"} <= set(r) for r in rows)
    assert "cmos45nm_fp32" in result.stdout


# --------------------------------------------------------------------------- bad input: exit 2

BAD_CONFIGS = {
    "unknown_key": (SMALL_SJ.replace("seed = 0", "sed = 0"), "input.sed"),
    "wrong_type": (SMALL_SJ.replace("batch_size = 2", 'batch_size = "two"'), "input.batch_size"),
    "unknown_model": (SMALL_SJ.replace('"sj_spiking_cnn"', '"nope_net"'), "model.name"),
    "unknown_profile": (SMALL_SJ.replace('"loihi"]', '"quantum"]'), "energy.profiles"),
    "negative_batch": (SMALL_SJ.replace("batch_size = 2", "batch_size = -1"), "input.batch_size"),
    "bad_override_kind": (
        SMALL_SJ.replace("overrides = {}", 'overrides = { conv1 = "fuzzy" }'),
        "count.overrides",
    ),
    "invalid_toml": (SMALL_SJ.replace("[count]", "[count"), "invalid TOML"),
    "missing_checkpoint": (SMALL_SJ.replace("[input]", 'checkpoint = "gone.pt"\n[input]'), "gone.pt"),
    "dataset_source": (SMALL_SJ.replace('"synthetic"', '"dataset"'), "input.path"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_exits_2_without_output(tmp_path: Path, case: str) -> None:
    text, needle = BAD_CONFIGS[case]
    cfg = write(tmp_path, text)
    out = tmp_path / "out.json"
    result = invoke("count", cfg, "--json", out, "--csv", tmp_path / "out.csv")
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, str(cfg), needle)
    assert not out.exists()
    assert not (tmp_path / "out.csv").exists()


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = invoke("count", tmp_path / "absent.toml", "--json", tmp_path / "out.json")
    assert result.exit_code == 2
    assert_one_line_error(result, "absent.toml", "not found")
    assert not (tmp_path / "out.json").exists()


def test_unknown_cli_profile_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = invoke("count", write(tmp_path, SMALL_SJ), "--profile", "warp_drive", "--json", out)
    assert result.exit_code == 2
    assert_one_line_error(result, "--profile", "warp_drive")
    assert not out.exists()


def test_hardware_missing_exits_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_gpu(*args: object, **kwargs: object) -> None:
        raise HardwareMissingError("no NVIDIA GPU found")

    monkeypatch.setattr("snnprof.pipeline.run_config", no_gpu)
    out = tmp_path / "out.json"
    result = invoke("count", write(tmp_path, SMALL_SJ), "--json", out)
    assert result.exit_code == 3
    assert_one_line_error(result, "no NVIDIA GPU")
    assert not out.exists()


# --------------------------------------------------------------------------- engine (real counting)


def run_json(tmp_path: Path, text: str, *extra: str) -> dict:
    out = tmp_path / "out.json"
    result = invoke("count", write(tmp_path, text), "--json", out, *extra)
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_engine_count_sj_writes_schema(tmp_path: Path) -> None:
    data = run_json(tmp_path, SMALL_SJ, "--quiet")
    assert data["schema"] == "snnprof.profile/1"
    assert data["model"] == "sj_spiking_cnn"
    assert (data["batch_size"], data["time_steps"]) == (2, 2)
    assert data["config"]["model"]["name"] == "sj_spiking_cnn"
    assert data["layers"], "no layers counted"
    for field in INT_FIELDS:
        assert type(data["totals"][field]) is int, field
        assert all(type(layer[field]) is int for layer in data["layers"]), field
    assert data["totals"]["dense_macs"] > 0
    assert data["totals"]["sops"] > 0
    assert set(data["energy"]) == {"cmos45nm_fp32", "loihi"}
    for entry in data["energy"].values():
        assert {"total_pj", "per_sample_pj", "by_term_pj", "layers", "provenance"} <= set(entry)
        assert entry["per_sample_pj"] == pytest.approx(entry["total_pj"] / 2)


def test_engine_shipped_sj_config(tmp_path: Path) -> None:
    text = (REPO / "configs" / "sj_spiking_cnn.toml").read_text(encoding="utf-8")
    text = text.replace("batch_size = 4", "batch_size = 1").replace("time_steps = 8", "time_steps = 2")
    data = run_json(tmp_path, text, "--quiet")
    assert data["schema"] == "snnprof.profile/1"
    assert data["batch_size"] == 1
    assert "cmos45nm_fp32" in data["energy"]


def test_engine_shipped_ottt_config(tmp_path: Path) -> None:
    text = (REPO / "configs" / "ottt_vgg11_ws.toml").read_text(encoding="utf-8")
    text = text.replace("batch_size = 8", "batch_size = 1").replace("time_steps = 6", "time_steps = 2")
    data = run_json(tmp_path, text, "--quiet", "--profile", "cmos45nm_fp32")
    assert data["model"] == "ottt_vgg11_ws"
    assert list(data["energy"]) == ["cmos45nm_fp32"]
    assert data["totals"]["neuron_updates"] > 0


def test_engine_table_csv_and_per_sample(tmp_path: Path) -> None:
    csv_path = tmp_path / "layers.csv"
    cfg = write(tmp_path, SMALL_SJ)
    result = invoke("count", cfg, "--csv", csv_path, "--per-sample")
    assert result.exit_code == 0, result.output
    assert "per sample" in result.stdout
    assert "conv1" in result.stdout
    assert "cmos45nm_fp32" in result.stdout
    header, *rows = csv_path.read_text().splitlines()
    assert header.startswith("name,type,input_kind")
    assert any(row.startswith("conv1,") for row in rows)


def test_engine_cli_profiles_replace_config(tmp_path: Path) -> None:
    data = run_json(tmp_path, SMALL_SJ, "-q", "--profile", "truenorth", "--profile", "cmos45nm_int8")
    assert list(data["energy"]) == ["truenorth", "cmos45nm_int8"]


def test_engine_override_changes_input_kind(tmp_path: Path) -> None:
    text = SMALL_SJ.replace("overrides = {}", 'overrides = { conv2 = "dense" }')
    data = run_json(tmp_path, text, "-q")
    conv2 = next(layer for layer in data["layers"] if layer["name"] == "conv2")
    assert conv2["input_kind"] == "dense"


def test_engine_override_of_unknown_layer_exits_2(tmp_path: Path) -> None:
    cfg = write(tmp_path, SMALL_SJ.replace("overrides = {}", 'overrides = { "head.conv" = "dense" }'))
    result = invoke("count", cfg, "--json", tmp_path / "out.json")
    assert result.exit_code == 2
    assert_one_line_error(result, "count.overrides.head.conv")
    assert not (tmp_path / "out.json").exists()


def test_engine_input_mismatch_exits_2(tmp_path: Path) -> None:
    cfg = write(tmp_path, SMALL_SJ.replace("kwargs = { image_size = 16 }", "kwargs = { image_size = 32 }"))
    result = invoke("count", cfg, "--json", tmp_path / "out.json")
    assert result.exit_code == 2
    assert_one_line_error(result, "input.kwargs")
    assert not (tmp_path / "out.json").exists()


def test_engine_forward_shape_error_names_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("snnprof.pipeline.core.model_inputs", lambda cfg, model: (torch.zeros(2, 2, 3, 16, 16), None))
    result = invoke("count", write(tmp_path, SMALL_SJ), "--json", tmp_path / "out.json")
    assert result.exit_code == 2, result.output
    assert_one_line_error(result, ": input: ")
    assert not (tmp_path / "out.json").exists()


def test_engine_checkpoint_roundtrip(tmp_path: Path) -> None:
    model = create_model("sj_spiking_cnn", in_channels=2, num_classes=10, image_size=16)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    text = SMALL_SJ.replace("[input]", 'checkpoint = "model.pt"\n[input]')
    data = run_json(tmp_path, text, "-q")
    assert data["config"]["model"]["checkpoint"].endswith("model.pt")


def test_engine_checkpoint_of_another_model_exits_2(tmp_path: Path) -> None:
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "other.pt")
    cfg = write(tmp_path, SMALL_SJ.replace("[input]", 'checkpoint = "other.pt"\n[input]'))
    result = invoke("count", cfg, "--json", tmp_path / "out.json")
    assert result.exit_code == 2
    assert_one_line_error(result, "model.checkpoint", "other.pt", "missing keys", "unexpected keys: bias, weight")
    assert not (tmp_path / "out.json").exists()


def test_engine_demo_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from snnprof.demo_summary import main

    run_json(tmp_path, SMALL_SJ, "-q")
    assert main([str(tmp_path / "out.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert 4 <= len(lines) <= 6
    assert lines[0].startswith("model: sj_spiking_cnn")
    assert "SNN vs dense ANN" in lines[-1]


# --------------------------------------------------------------------------- io and units


def test_atomic_write_creates_parents_and_replaces(tmp_path: Path) -> None:
    from snnprof.io import atomic_write_text

    target = tmp_path / "a" / "b" / "out.json"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]


def test_unwritable_output_exits_2(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    result = invoke("count", write(tmp_path, SMALL_SJ), "--json", tmp_path / "taken")
    assert result.exit_code == 2
    assert_one_line_error(result, "taken", "is a folder")
    assert list((tmp_path / "taken").iterdir()) == []


@pytest.mark.parametrize(
    ("value", "count", "energy"),
    [
        (0, "0", "0 pJ"),
        (512, "512", "512 pJ"),
        (4_560_000, "4.56 M", "4.56 µJ"),
        (999_999, "1.00 M", "1.00 µJ"),
        (1_234_000_000, "1.23 G", "1.23 mJ"),
    ],
)
def test_unit_formatting(value: int, count: str, energy: str) -> None:
    from snnprof.units import format_count, format_energy_pj

    assert format_count(value) == count
    assert format_energy_pj(float(value)) == energy

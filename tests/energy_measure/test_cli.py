"""``snnprof measure``: exit 3 without NVML, bad input, and an end-to-end run on a fake GPU (CPU torch)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from snnprof.cli import app
from snnprof.energy.measured import parse_measured
from snnprof.energy.nvml_backend import nvml_status
from snnprof.pipeline import measure as measure_pipeline
from tests.energy_measure.fakes import FakeGpu

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
[energy]
profiles = ["cmos45nm_fp32", "loihi"]
"""

QUICK = ["--trials", "2", "--iters", "2", "--warmup", "1", "--min-seconds", "0.05", "--idle-seconds", "0.05",
         "--cooldown", "0", "--interval-ms", "10"]


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(SMALL_SJ, encoding="utf-8")
    return path


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_help_has_an_example() -> None:
    result = runner.invoke(app, ["measure", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout and "snnprof measure" in result.stdout


def test_no_gpu_here_exits_3_with_one_sentence(tmp_path: Path) -> None:
    if nvml_status() is None:
        pytest.skip("an NVIDIA GPU with NVML is present")
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["measure", str(write_config(tmp_path)), "--json", str(out)])
    assert result.exit_code == 3
    line = one_error_line(result)
    assert "cannot measure GPU energy" in line and "NVML" in line
    assert "`snnprof count` estimates still work" in line
    assert line.count(". ") == 0 and line.endswith(".")
    assert not out.exists()


def test_bad_config_is_exit_2_before_any_hardware(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "no_such_model"\n', encoding="utf-8")
    result = runner.invoke(app, ["measure", str(bad)])
    assert result.exit_code == 2
    assert "model.name" in one_error_line(result)


@pytest.mark.parametrize(("option", "value"), [("--mode", "training"), ("--method", "guess")])
def test_bad_choices_are_exit_2(tmp_path: Path, option: str, value: str) -> None:
    result = runner.invoke(app, ["measure", str(write_config(tmp_path)), option, value])
    assert result.exit_code == 2
    assert option in one_error_line(result)


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> FakeGpu:
    gpu = FakeGpu(time.monotonic, idle_mw=60_000, processes=(999_999,))
    monkeypatch.setattr(measure_pipeline, "open_backend", lambda: gpu)
    monkeypatch.setattr(measure_pipeline, "cuda_device", lambda index: torch.device("cpu"))
    return gpu


@pytest.mark.parametrize("mode", ["inference", "train-step"])
def test_end_to_end_on_a_fake_gpu(tmp_path: Path, fake_gpu: FakeGpu, mode: str) -> None:
    out = tmp_path / "m.json"
    result = runner.invoke(app, ["measure", str(write_config(tmp_path)), "--mode", mode, "--json", str(out), *QUICK])
    assert result.exit_code == 0, result.output
    assert "Measured (2 trial(s), counter method)" in result.stdout
    assert "measured (mean) vs estimated" in result.stdout
    data = json.loads(out.read_text())
    assert data["schema"] == "snnprof.measure/1"
    assert data["status"] == "complete" and data["mode"] == mode
    measured = data["measured"]
    assert measured["gpu"]["name"] == "Fake GPU H100"
    assert len(measured["trials"]) == 2
    for trial in measured["trials"]:
        assert trial["iterations"] >= 2 and trial["wall_s"] >= 0.05
        # constant 60 W on the fake: energy = 60 W x window within the counter's 1 mJ resolution
        assert trial["energy_j"] == pytest.approx(60.0 * trial["wall_s"], abs=3e-3)  # 1 mJ at each end + clock reads
    assert set(data["estimated"]) == {"cmos45nm_fp32", "loihi"}
    assert data["estimated"]["loihi"]["per_sample_j"] > 0
    assert set(data["comparison"]["loihi"]) == {"energy_per_sample_over_estimate", "dynamic_per_sample_over_estimate"}
    assert any("999999" in w for w in measured["warnings"])
    assert data["cross_check"]["trials"] == 2  # the fake's counter and samples see the same 60 W
    assert "cross-check: power sampling / energy counter" in result.stdout
    assert fake_gpu.closed
    # the file feeds `snnprof report --measured` as it is
    summary = measured["summary"]["energy_per_sample_j"]
    parsed = parse_measured(data, str(out))
    assert parsed.joules_per_sample == summary["mean"] and parsed.joules_per_sample_std == summary["std"]
    assert parsed.gpu_name == "Fake GPU H100" and parsed.method == "counter"


def test_gpu_lost_mid_run_exits_3_and_keeps_labelled_partial_json(tmp_path: Path, fake_gpu: FakeGpu) -> None:
    original = measure_pipeline.make_step

    def make_step(cfg, mode, device):
        step = original(cfg, mode, device)

        def wrapped() -> object:
            if fake_gpu.calls["temperature_c"] >= 2:  # trial 1 read its end state: lose the GPU in trial 2
                fake_gpu.lost = True
            return step()

        return wrapped

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(measure_pipeline, "make_step", make_step)
        out = tmp_path / "m.json"
        result = runner.invoke(app, ["measure", str(write_config(tmp_path)), "--json", str(out), *QUICK])
    assert result.exit_code == 3, result.output
    assert "lost" in one_error_line(result)
    assert "PARTIAL RESULT" in result.stdout
    data = json.loads(out.read_text())
    assert data["status"] == "partial"
    assert data["measured"]["status"] == "partial" and "lost" in data["measured"]["error"]
    assert len(data["measured"]["trials"]) == 1
    assert "trial 2 of 2" in data["measured"]["error"]

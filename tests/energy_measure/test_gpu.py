"""Integration tests on a real NVIDIA GPU (marker ``gpu``); skipped when ``nvmlInit`` fails.

Run them on a GPU machine with ``python -m pytest tests/energy_measure -m gpu -q``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from snnprof.cli import app
from snnprof.energy.meter import EnergyMeter
from snnprof.energy.nvml_backend import NvmlBackend, nvml_status

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(nvml_status() is not None, reason=f"no NVIDIA GPU/NVML: {nvml_status()}"),
]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch has no CUDA")


def test_real_backend_describes_the_gpu() -> None:
    with NvmlBackend() as backend:
        assert backend.device_count() >= 1
        assert backend.name(0)
        assert backend.driver_version() and backend.nvml_version()
        assert backend.power_mw(0) > 0


@needs_cuda
def test_counter_and_sampling_agree_within_10_percent_on_a_multi_second_window() -> None:
    a = torch.randn(4096, 4096, device="cuda:0")
    with EnergyMeter(0, sample_interval_s=0.02) as meter:
        if meter.method != "counter":
            pytest.skip("no energy counter on this GPU (pre-Volta)")
        meter.begin_window("matmul")
        start = time.monotonic()
        while time.monotonic() - start < 5.0:
            a = (a @ a).clamp_(-1, 1)
        m = meter.end_window("matmul")
    assert m.counter_j is not None and m.sampled_j is not None
    assert m.counter_j > 0
    assert abs(m.sampled_j - m.counter_j) / m.counter_j < 0.10, m


@needs_cuda
@pytest.mark.parametrize("mode", ["inference", "train-step"])
def test_measure_command_on_the_gpu(tmp_path: Path, mode: str) -> None:
    out = tmp_path / "m.json"
    args = ["measure", str(REPO / "configs/sj_spiking_cnn.toml"), "--mode", mode, "--trials", "2",
            "--min-seconds", "2", "--idle-seconds", "2", "--cooldown", "1", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["status"] == "complete"
    assert all(t["energy_j"] > 0 for t in data["measured"]["trials"])

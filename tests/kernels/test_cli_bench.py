"""``snnprof bench`` end to end with CliRunner: JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from snnprof.cli import app

runner = CliRunner()
pytestmark = pytest.mark.filterwarnings("ignore:Sparse")


def _one_line_error(result, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0]


def test_quick_run_writes_json(fused_lib, tmp_path: Path):
    out = tmp_path / "bench.json"
    args = ["bench", "--quick", "--kernels", "lif,plif,synapse", "--impls", "sj_torch,fused_cpu", "--N", "300",
            "--rates", "1,50", "--threads", "1", "--json", str(out)]  # fmt: skip
    threads_before = torch.get_num_threads()
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema"] == "snnprof.bench/1"
    neuron = data["neuron_rows"]
    assert {(r["kernel"], r["mode"]) for r in neuron} == {(k, m) for k in ("lif", "plif") for m in ("fwd", "fwd+bwd")}
    assert [r["impl"] for r in neuron[:3]] == ["eager", "sj_torch", "fused_cpu"]
    assert all(r["status"] == "ok" and r["steps"] == 4 and r["neurons"] == 300 for r in neuron)
    assert all(r["timing"]["rounds"] == 3 for r in neuron)
    fused = [r for r in neuron if r["impl"] == "fused_cpu"]
    assert all(r["gate"]["spike_mismatches"] == 0 for r in fused)
    assert sorted({r["rate"] for r in data["synapse_rows"]}) == [0.01, 0.5]
    assert {c["layer"] for c in data["crossovers"]} == {"linear", "conv"}
    assert "Neuron kernels" in result.stdout and f"wrote {out}" in result.stdout
    assert data["stream"]["threads"] == 1 and data["stream_after"]["copy_gbs"] > 0  # same threads as the kernels
    assert all(r["stream_fraction"] > 0 for r in neuron)
    assert "%STREAM" in result.stdout and "STREAM (1 threads" in result.stdout
    assert data["environment"]["threads"] == 1 and data["config"]["threads"] == 1
    assert torch.get_num_threads() == threads_before  # restored after the run


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_exits_3(tmp_path: Path):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", "--device", "cuda", "--quick", "--json", str(out)])
    assert result.exit_code == 3
    _one_line_error(result, "--device cuda", "GPU")
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--T", "4,x"], "--T"),
        (["--N", "0"], "--N"),
        (["--kernels", "lif,alif"], "alif"),
        (["--impls", "fast"], "fast"),
        (["--mode", "bwd"], "--mode"),
        (["--rates", "0"], "--rates"),
        (["--rounds", "0"], "--rounds"),
        (["--device", "tpu"], "tpu"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_bad_options_exit_2(args: list[str], needle: str, tmp_path: Path):
    out = tmp_path / "bench.json"
    result = runner.invoke(app, ["bench", *args, "--json", str(out)])
    assert result.exit_code == 2
    _one_line_error(result, needle)
    assert not out.exists()


def test_help_has_an_example():
    result = runner.invoke(app, ["bench", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout and "--kernels" in result.stdout


def test_render_shows_untimed_rows_with_their_reasons():
    from rich.console import Console

    from snnprof.commands.bench import render_report
    from snnprof.kernels.bench import BenchReport, NeuronRow, Timing
    from snnprof.kernels.synapse import Crossover

    env = {"device": "cuda", "gpu": "Fake GPU", "threads": 2, "torch": "x", "spikingjelly": "y",
           "load_average_1min": 9.0, "cpus": 2}  # fmt: skip
    base = {"kernel": "lif", "spec": "lif", "steps": 16, "neurons": 1 << 20, "mode": "fwd", "device": "cuda"}
    report = BenchReport(
        env,
        {},
        neuron_rows=[
            NeuronRow(**base, impl="eager", status="ok", timing=Timing(0.002, 0.001, 0.003, 5), throughput=8e9,
                      speedup_vs_eager=1.0, bandwidth_gbs=67.1, peak_fraction=0.02),  # fmt: skip
            NeuronRow(**base, impl="fused_cuda", status="FAILED", reason="3 spikes differ", verified=False),
        ],
        crossovers=[Crossover("linear", "csr", 0.031, "faster below ~3.10%")],
    )
    console = Console(width=120, record=True)
    console.print(render_report(report))
    text = console.export_text()
    assert "Fake GPU" in text and "%peak" in text and "2%" in text
    assert "fused_cuda*" in text and "FAILED" in text
    assert "lif T=16 N=1048576 fwd fused_cuda: FAILED: 3 spikes differ" in text
    assert "* unverified" in text and "crossover linear csr: faster below ~3.10%" in text
    assert "warning: load average 9.0 on 2 CPUs" in text

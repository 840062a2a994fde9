"""The pure benchmark machinery: timing summaries, the correctness gate, crossovers, whole runs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from snnprof.kernels import NeuronImpl, get_impl
from snnprof.kernels.bench import (
    QUICK_LAYERS,
    BenchConfig,
    SynapseRow,
    Timing,
    bench_neuron_case,
    bytes_moved,
    crossovers,
    device_peak_gbs,
    run_bench,
    time_interleaved,
)
from snnprof.kernels.reference import NeuronOutput, eager_multistep

pytestmark = pytest.mark.filterwarnings("ignore:Sparse")


def test_timing_quartiles_closed_form():
    t = Timing.of([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (t.median_s, t.q1_s, t.q3_s, t.iqr_s, t.rounds) == (3.0, 2.0, 4.0, 2.0, 5)
    assert Timing.of([0.5]) == Timing(0.5, 0.5, 0.5, 1)


def test_time_interleaved_runs_round_robin():
    order: list[str] = []
    timings = time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, rounds=3, warmup=1)
    assert order == ["a", "b"] * 4
    assert timings["a"].rounds == 3 and timings["b"].rounds == 3


def test_bytes_moved_closed_form():
    t, n = 16, 1 << 20
    assert bytes_moved("fwd", "cpu", t, n) == 4 * (2 * t * n + n)  # x in, spikes out, final membrane out
    assert bytes_moved("fwd+bwd", "cpu", t, n) == 4 * (5 * t * n + n)  # + x, grad_spike in, grad_x out
    assert bytes_moved("fwd+bwd", "cuda", t, n) == 4 * (6 * t * n + n)  # the forward stores H, read back
    assert bytes_moved("fwd", "cpu", 3, 10, element_size=8) == 8 * 70
    assert device_peak_gbs("cpu") is None


def _flip_first_spike(x, spec, w=None, v_init=None, store_v_seq=False):
    out = eager_multistep(x, spec, w, v_init, store_v_seq)
    spikes = out.spikes.clone()
    spikes.view(-1)[0] = 1 - spikes.view(-1)[0]
    return NeuronOutput(spikes, out.v)


def _raise(*args, **kwargs):
    raise RuntimeError("kernel exploded")


@pytest.mark.parametrize("mode", ["fwd", "fwd+bwd"])
def test_gate_reports_mismatch_and_errors_without_timing(fused_lib, mode: str):
    broken = NeuronImpl("broken", ("cpu",), "flips a spike", _flip_first_spike)
    failing = NeuronImpl("failing", ("cpu",), "raises", _raise)
    rows = bench_neuron_case("lif", 3, 100, mode, impls=[get_impl("fused_cpu"), broken, failing], rounds=2)
    by_name = {r.impl: r for r in rows}
    assert [r.impl for r in rows] == ["eager", "fused_cpu", "broken", "failing"]
    assert by_name["fused_cpu"].status == "ok" and by_name["fused_cpu"].timing.rounds == 2
    assert by_name["broken"].status == "FAILED" and by_name["broken"].timing is None
    assert "1 spikes differ" in by_name["broken"].reason and by_name["broken"].gate.spike_mismatches == 1
    assert by_name["failing"].status == "unavailable" and "kernel exploded" in by_name["failing"].reason
    eager = by_name["eager"]
    assert eager.speedup_vs_eager == 1.0
    assert eager.throughput == pytest.approx(300 / eager.timing.median_s)
    assert eager.bytes_moved == bytes_moved(mode, "cpu", 3, 100)
    assert eager.stream_gbs is None and eager.stream_fraction is None


def test_plif_gate_checks_the_w_gradient(fused_lib):
    rows = bench_neuron_case("plif", 4, 257, "fwd+bwd", impls=[get_impl("fused_cpu"), get_impl("sj_torch")], rounds=1)
    for row in rows[1:]:
        assert row.status == "ok", row.reason
        assert row.gate.w_error is not None and row.gate.w_error < 1e-3
        assert row.speedup_vs_sj is not None


def _row(method: str, rate: float, speedup: float) -> SynapseRow:
    return SynapseRow("linear", "s", method, rate, 0, "ok", timing=Timing(1, 1, 1, 1), speedup_vs_dense=speedup)


def test_crossover_interpolates_in_log_log():
    # time ratio event/dense: 0.5 at 1 %, 2 at 4 %: log-linear crossing at 2 %
    rows = [_row("dense", 0.01, 1), _row("csr", 0.01, 2.0), _row("dense", 0.04, 1), _row("csr", 0.04, 0.5)]
    (cross,) = crossovers(rows)
    assert cross.method == "csr" and math.isclose(cross.rate, 0.02, rel_tol=1e-9)


def test_crossover_edge_cases():
    always = crossovers([_row("csr", 0.01, 3.0), _row("csr", 0.5, 1.5)])
    never = crossovers([_row("gather", 0.01, 0.9), _row("gather", 0.5, 0.1)])
    assert always[0].rate is None and "every rate up to 50.0%" in always[0].note
    assert never[0].rate is None and "slower" in never[0].note


def test_run_bench_small_is_json_ready(fused_lib):
    config = BenchConfig(kernels=("if", "synapse"), steps=(3,), neurons=(64,), impls=("fused_cpu",), rounds=1,
                         rates=(0.01, 0.5), layers=QUICK_LAYERS)  # fmt: skip
    seen: list[str] = []
    report = run_bench(config, progress=seen.append)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["schema"] == "snnprof.bench/1"
    assert [r["impl"] for r in data["neuron_rows"]] == ["eager", "fused_cpu"] * 2
    assert {r["status"] for r in data["neuron_rows"]} == {"ok"}
    assert {r["status"] for r in data["synapse_rows"]} <= {"ok", "skipped"}  # hopeless methods may be skipped
    assert all(r["status"] == "ok" for r in data["synapse_rows"] if r["rate"] == 0.01)
    assert len(data["synapse_rows"]) == 2 * 2 * 3 and len(data["crossovers"]) == 4
    assert seen[0] == "if T=3 N=64 fwd" and any(s.startswith("synapse conv") for s in seen)
    assert data["environment"]["threads"] == torch.get_num_threads()


def test_hopeless_synapse_methods_are_skipped_at_higher_rates(monkeypatch):
    import time

    from snnprof.kernels import synapse

    def fake_layer(fn_input, method):
        if method == "slow":
            time.sleep(0.02)
        return fn_input * 1.0

    monkeypatch.setattr(synapse, "make_synapse_layer", lambda *a, **k: (fake_layer, ("dense", "slow"), (4, 4)))
    layer = synapse.SynapseLayer("linear", 4, 4, 4)
    rows = synapse.bench_synapse_layer(layer, [0.5, 0.1], rounds=1, warmup=0)
    slow = [r for r in rows if r.method == "slow"]
    assert [r.rate for r in slow] == [0.1, 0.5]  # increasing order
    assert slow[0].status == "ok" and slow[0].speedup_vs_dense < 1 / synapse.SKIP_FACTOR
    assert slow[1].status == "skipped" and "slower than dense already at 10.0%" in slow[1].reason


def test_stream_runs_join_the_round_robin(fused_lib):
    from snnprof.kernels.membw import StreamArrays

    with StreamArrays(array_bytes=1 << 20) as stream:
        rows = bench_neuron_case("lif", 3, 100, "fwd", impls=[get_impl("fused_cpu")], rounds=2, stream=stream)
    assert [r.impl for r in rows] == ["eager", "fused_cpu"]  # STREAM runs are not rows
    for row in rows:
        assert row.stream_gbs is not None and row.stream_gbs > 0
        assert row.stream_fraction == pytest.approx(row.bandwidth_gbs / row.stream_gbs)


def test_run_bench_measures_stream_before_and_after(fused_lib):
    config = BenchConfig(kernels=("lif",), steps=(2,), neurons=(32,), impls=("fused_cpu",), modes=("fwd",), rounds=2,
                         stream_bytes=1 << 20)  # fmt: skip
    report = run_bench(config)
    for result in (report.stream, report.stream_after):
        assert result.device == "cpu" and result.array_bytes == 1 << 20 and result.reps == 2
        assert result.copy_gbs > 0 and result.triad_gbs > 0 and result.copy_plain_gbs > 0
        assert result.reference_gbs == max(result.copy_gbs, result.triad_gbs)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["stream"]["threads"] == torch.get_num_threads()
    assert all(r["stream_fraction"] is not None for r in data["neuron_rows"])


def test_run_bench_without_stream_library_still_runs(monkeypatch):
    from snnprof.kernels import bench
    from snnprof.native_build import NativeBuildError

    def no_library(*args, **kwargs):
        raise NativeBuildError("no C++ compiler found to build snnprof's native code")

    monkeypatch.setattr(bench, "StreamArrays", no_library)
    config = BenchConfig(kernels=("if",), steps=(2,), neurons=(8,), impls=(), modes=("fwd",), rounds=1)
    report = run_bench(config)
    assert report.stream is None and report.neuron_rows[0].stream_fraction is None
    assert report.environment["stream_unavailable"].startswith("no C++ compiler")


def test_before_hook_runs_untimed_before_every_call():
    order: list[str] = []
    time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, rounds=2, warmup=0,
                     before=lambda: order.append("-"))  # fmt: skip
    assert order == ["-", "a", "-", "b"] * 2

"""pytest-benchmark: the ``snnprof bench`` cases (neuron kernels, dense vs event-driven synapses).

Each case is one benchmark group, so pytest-benchmark prints the implementations side by side::

    .venv/bin/python -m pytest benchmarks/test_kernels.py -o addopts="" --benchmark-columns=median,iqr,rounds

* ``{lif,if,plif} T=16 N=2^20 {fwd,fwd+bwd}``: every implementation that runs on the device (eager loop,
  SpikingJelly backends, ``torch.compile``, our fused kernel). Before timing, each implementation is
  checked against the eager reference on the same inputs; a mismatch fails the test (it is not timed),
  an implementation that is unavailable here is skipped with the reason.
* ``synapse {linear,conv} rate``: dense vs event-driven methods at 0.1 %, 1 %, 10 % and 50 % firing (a
  method over 20x slower than dense in its gate call is skipped, as in ``snnprof bench``).
* ``stream``: the machine's streaming bandwidth (STREAM copy and triad over arrays 4x the last-level
  cache, non-temporal stores, torch's threads), the yardstick of the kernels' GB/s. Bytes per run:
  copy 2 arrays, triad 3 (``extra_info``).

Environment: ``SNNPROF_BENCH_DEVICE`` (``cpu``; ``cuda`` when a GPU is present), ``SNNPROF_BENCH_T`` (16),
``SNNPROF_BENCH_N`` (1048576), ``SNNPROF_BENCH_ROUNDS`` (5). For a table with speed-ups, interleaved
rounds and crossover rates use ``snnprof bench`` instead.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import torch

from snnprof.kernels import NEURON_IMPLS, get_impl
from snnprof.kernels.bench import KERNEL_SPECS, MODES, bytes_moved, gate_impl, make_neuron_inputs, neuron_call
from snnprof.kernels.membw import StreamArrays
from snnprof.kernels.synapse import FULL_LAYERS, SKIP_FACTOR, make_synapse_layer, random_spikes

DEVICE = os.environ.get("SNNPROF_BENCH_DEVICE", "cpu")
T = int(os.environ.get("SNNPROF_BENCH_T", "16"))
N = int(os.environ.get("SNNPROF_BENCH_N", str(1 << 20)))
ROUNDS = int(os.environ.get("SNNPROF_BENCH_ROUNDS", "5"))
RATES = (0.001, 0.01, 0.1, 0.5)
IMPLS = [i.name for i in NEURON_IMPLS if DEVICE in i.device_types]

pytestmark = pytest.mark.filterwarnings("ignore:Sparse")


def _sync() -> None:
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def _bench(benchmark: Any, call: Any) -> None:
    def run() -> None:
        call()
        _sync()

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)


@pytest.fixture(scope="module")
def neuron_inputs() -> dict[str, Any]:
    """One set of inputs per kernel, shared by all implementations and modes."""
    return {k: make_neuron_inputs(spec, T, N, DEVICE) for k, spec in KERNEL_SPECS.items()}


@pytest.mark.parametrize("impl_name", IMPLS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel", list(KERNEL_SPECS))
def test_neuron_kernel(benchmark: Any, neuron_inputs: dict[str, Any], kernel: str, mode: str, impl_name: str) -> None:
    if DEVICE == "cuda" and not torch.cuda.is_available():
        pytest.skip("SNNPROF_BENCH_DEVICE=cuda but no CUDA device")
    impl, spec, inputs = get_impl(impl_name), KERNEL_SPECS[kernel], neuron_inputs[kernel]
    reason = impl.unavailable_reason(DEVICE)
    if reason is not None:
        pytest.skip(reason)
    benchmark.group = f"{kernel} T={T} N={N} {mode} ({DEVICE})"
    benchmark.extra_info["bytes"] = bytes_moved(mode, DEVICE, T, N)
    gate = gate_impl(impl, spec, inputs, mode)
    assert gate.ok, f"{impl_name} disagrees with the eager reference (not timed): {gate.reason}"
    _bench(benchmark, neuron_call(impl, spec, inputs, mode))


@pytest.mark.parametrize("kind", ["copy", "triad"])
def test_stream(benchmark: Any, kind: str) -> None:
    if DEVICE == "cuda" and not torch.cuda.is_available():
        pytest.skip("SNNPROF_BENCH_DEVICE=cuda but no CUDA device")
    benchmark.group = f"stream ({DEVICE})"
    with StreamArrays(DEVICE) as arrays:
        benchmark.extra_info["bytes"] = arrays.bytes_moved(kind)
        _bench(benchmark, lambda: arrays.run(kind))


LAYER_METHODS = [(layer, method) for layer in FULL_LAYERS for method in make_synapse_layer(layer)[1]]


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("layer", "method"), LAYER_METHODS, ids=[f"{lay.name}-{m}" for lay, m in LAYER_METHODS])
def test_synapse(benchmark: Any, layer: Any, method: str, rate: float) -> None:
    fn, _, shape = make_synapse_layer(layer, DEVICE)
    x = random_spikes(shape, rate).to(DEVICE)
    benchmark.group = f"synapse {layer.describe()} rate {rate:.1%}"
    with torch.no_grad():  # same gate as snnprof bench: the method must give the dense output
        dense_s, dense = _once(lambda: fn(x, "dense"))
        method_s, out = _once(lambda: fn(x, method))
        torch.testing.assert_close(out, dense, rtol=1e-4, atol=1e-4)
        if method_s > SKIP_FACTOR * dense_s:  # as in snnprof bench: hopeless methods are not timed
            pytest.skip(f"{method} is over {SKIP_FACTOR:g}x slower than dense here ({method_s:.3g} s per call)")
        _bench(benchmark, lambda: fn(x, method))


def _once(fn: Any) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    _sync()
    start = time.perf_counter()
    out = fn()
    _sync()
    return time.perf_counter() - start, out

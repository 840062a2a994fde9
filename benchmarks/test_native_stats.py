"""pytest-benchmark: the counting engine's per-tensor statistics, native one-pass kernels vs their Torch passes.

Each statistic is one benchmark group, so pytest-benchmark prints both implementations side by side::

    .venv/bin/python -m pytest benchmarks/test_native_stats.py -o addopts="" --benchmark-columns=median,iqr,rounds

* ``kind``: input-kind detection of a spike tensor (the worst case: every element must be read) and of
  a real-valued tensor (the native pass stops after its first block; the Torch path after its 2048-value
  sample). "torch" is the engine's CPU fallback (sample test, then ``aminmax`` and ``dot`` read on the host).
* ``neuron spikes``: spikes per (time step, sample, channel) of a neuron output ``[T, B, C, H, W]``
  (native: straight into the layer sums per channel, step and (step, sample)).
* ``conv sops``: kind plus exact synaptic operations of a convolution fed ×2.74-scaled spikes.

Shapes are those of the zoo's SpikingJelly CNN (``[8, 16, 32, 32, 32]``, 15 % firing), one torch
thread. Before timing, both implementations are checked to give the same answer.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from snnprof.counting import native
from snnprof.counting.accumulate import _channel_grid, _indicator
from snnprof.counting.kinds import DENSE, classify
from snnprof.counting.rules.conv import ConvSpec, _ExactFanout
from snnprof.counting.synapses import _cpu_classify, _sample_proves_dense
from tests._threads import one_thread

pytestmark = pytest.mark.skipif(not native.available(), reason=f"native statistics: {native.unavailable_reason()}")

SHAPE = (8, 16, 32, 32, 32)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Any:
    yield from one_thread()


@pytest.fixture(scope="module")
def spikes() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(SHAPE, generator=g) < 0.15).float()


def _torch_kind(x: torch.Tensor) -> int:
    """The engine's Torch path on CPU: a sample that proves "dense", else the host-read classification."""
    if _sample_proves_dense(x):
        return DENSE
    found = _cpu_classify(x)
    assert found is not None
    return found[0]


def _bench(benchmark: Any, fn: Any) -> Any:
    return benchmark.pedantic(fn, rounds=20, iterations=1, warmup_rounds=2)


@pytest.mark.benchmark(group="kind: spikes")
@pytest.mark.parametrize("impl", ["torch", "native"])
def test_kind_of_spikes(benchmark: Any, spikes: torch.Tensor, impl: str):
    assert native.classify(spikes)[0] == _torch_kind(spikes) == int(classify(spikes)[0]) == 0
    _bench(benchmark, (lambda: _torch_kind(spikes)) if impl == "torch" else (lambda: native.classify(spikes)))


@pytest.mark.benchmark(group="kind: real values")
@pytest.mark.parametrize("impl", ["torch", "native"])
def test_kind_of_real_values(benchmark: Any, impl: str):
    x = torch.randn(SHAPE)
    assert native.classify(x)[0] == _torch_kind(x) == int(classify(x)[0]) == DENSE
    _bench(benchmark, (lambda: _torch_kind(x)) if impl == "torch" else (lambda: native.classify(x)))


@pytest.mark.benchmark(group="neuron spikes")
@pytest.mark.parametrize("impl", ["torch", "native"])
def test_neuron_spike_grid(benchmark: Any, spikes: torch.Tensor, impl: str):
    layout = SHAPE[:3]  # (T, B, C)
    sums = {"total": torch.zeros((), dtype=torch.float64), "per_channel": torch.zeros(SHAPE[2], dtype=torch.float64),
            "per_step": torch.zeros(SHAPE[0], dtype=torch.float64),
            "per_index": torch.empty(SHAPE[0] * SHAPE[1], dtype=torch.float64)}

    def native_sums() -> bool:
        return native.accumulate_spikes(spikes, layout, 0, **sums)

    assert native_sums()
    grid = _channel_grid(_indicator(spikes), 2)
    assert torch.equal(sums["per_channel"], grid.sum((0, 1))) and torch.equal(sums["per_index"], grid.sum(2).flatten())
    _bench(benchmark, (lambda: _channel_grid(_indicator(spikes), 2)) if impl == "torch" else native_sums)


@pytest.mark.benchmark(group="conv sops")
@pytest.mark.parametrize("impl", ["torch", "native"])
def test_conv_sops(benchmark: Any, spikes: torch.Tensor, impl: str):
    x = spikes.flatten(0, 1)[:, :, :16, :16].contiguous() * 2.74  # [128, 32, 16, 16], like conv2's input
    fanout = _ExactFanout(ConvSpec(dims=2, weight_shape=(64, 32, 3, 3), padding=1))

    def torch_path() -> Any:
        _code, peak = _cpu_classify(x)  # the engine's fallback: kind, then events x / peak, then the fanout
        return fanout.evaluate(x / peak, False)

    assert fanout.native_pass(x, False)[3] == float(torch_path()[1])
    _bench(benchmark, torch_path if impl == "torch" else (lambda: fanout.native_pass(x, False)))

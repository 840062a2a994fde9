"""The engine's CPU shortcuts agree with the reference kind detection, and the device path never reads values."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

from snnprof.counting import Profiler
from snnprof.counting.accumulate import _indicator
from snnprof.counting.costs import exact_sum
from snnprof.counting.kinds import classify, events, sample_proves_dense
from snnprof.counting.synapses import _cpu_classify, _events, _sample_proves_dense

nan, inf = float("nan"), float("inf")
TENSORS = {
    "spikes": torch.tensor([0.0, 1.0, 1.0, 0.0]),
    "scaled_spikes": torch.tensor([0.0, 2.74, 0.0, 2.74]),
    "silent": torch.zeros(5),
    "all_ones": torch.ones(4),
    "counts": torch.tensor([0.0, 3.0, 1.0, 7.0]),
    "ternary": torch.tensor([-1.0, 0.0, 1.0, 1.0]),
    "dense_positive": torch.tensor([0.0, 0.5, 1.5]),
    "dense_signed": torch.tensor([-3.5, 0.25, 2.0]),
    "big_negative_ints": torch.tensor([-4.0, 0.0, 2.0]),
    "constant_half": torch.full((6,), 0.5),
    "nan": torch.tensor([0.0, nan, 1.0]),
    "inf": torch.tensor([0.0, inf, 1.0]),
    "neg_inf": torch.tensor([-inf, 0.0, 1.0]),
    "float64_counts": torch.tensor([0.0, 2.0, 5.0], dtype=torch.float64),
    "random_dense": torch.randn(3000, generator=torch.Generator().manual_seed(0)),
    "random_spikes": (torch.rand(3000, generator=torch.Generator().manual_seed(1)) < 0.2).float(),
}


@pytest.mark.parametrize("name", list(TENSORS))
def test_cpu_classify_agrees_with_classify(name: str) -> None:
    x = TENSORS[name]
    code, peak = classify(x)
    fast = _cpu_classify(x)
    assert fast is not None and fast[0] == int(code)
    if int(code) != 3:  # events are only used for event kinds
        for by_value in (True, False):
            ev, bound = _events(x, fast[0], by_value, fast[1])
            assert torch.equal(ev.to(torch.float32), events(x, code, by_value, peak).to(torch.float32))
            assert float(ev.abs().max()) <= bound
    assert _sample_proves_dense(x) == sample_proves_dense(x)


def test_cpu_shortcuts_leave_other_tensors_to_the_reference() -> None:
    assert _cpu_classify(torch.tensor([True, False])) is None
    assert _cpu_classify(torch.tensor([0.0, 1.0], dtype=torch.float16)) is None
    assert _cpu_classify(torch.zeros(0)) is None


@pytest.mark.parametrize("x", [torch.tensor([0.0, 2.0, -1.0, nan]), torch.tensor([True, False]),
                               torch.tensor([0, 3]), torch.tensor([0.0, 1.0], dtype=torch.float16),
                               torch.tensor(0.5), torch.zeros(0)])
def test_indicator_is_one_per_nonzero(x: torch.Tensor) -> None:
    ind = _indicator(x)
    assert ind.dtype in (torch.float32, torch.float64)
    assert torch.equal(ind, (x != 0).to(ind.dtype))


@pytest.mark.parametrize("bound", [None, 1.0, 1e6])
def test_exact_sum_equals_float64_sums(bound: float | None) -> None:
    gen = torch.Generator().manual_seed(0)
    scale = 1.0 if bound != 1e6 else 1e6
    x = (torch.randint(0, 2, (7, 5, 33), generator=gen).float() * scale)
    ref = x.to(torch.float64)
    assert exact_sum(x, bound=bound) == ref.sum()  # 1e6 x 1155 elements > 2^24: exact float32 blocks
    assert torch.equal(exact_sum(x, (1, 2), bound), ref.sum((1, 2)))
    assert torch.equal(exact_sum(x, -1, bound), ref.sum(-1))


def test_device_path_never_reads_values() -> None:
    """On a non-CPU device the engine must not sync: meta tensors raise on any read of their values."""
    net = nn.Sequential(layer.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"), neuron.IFNode(),
                        layer.Flatten(), layer.Linear(4 * 6 * 6, 3), neuron.LIFNode())
    functional.set_step_mode(net, "m")
    net = net.to("meta")
    x = torch.empty(3, 5, 2, 6, 6, device="meta")
    with torch.no_grad(), Profiler(net, time_steps=3, sample_stats=True, sample_projections={"e": (1, 2, 3)}) as prof:
        for _ in range(2):
            functional.reset_net(net)
            net(x)
            prof.end_batch(5)
    assert prof._run.unsupported == {} and prof._run.warnings == {}
    assert all(acc.dev is None or acc.dev.sops.device.type == "meta" for acc in prof._run.accs.values())

"""Hand-checked dynamics of the event_flow neurons and their counting rule."""

from __future__ import annotations

import math

import pytest
import torch

import snnprof
from snnprof.models.event_flow_cells import SpikingConvCell
from snnprof.models.event_flow_neurons import ALIF, LIF, PLIF, XLIF, ArctanSpike, EventFlowNeuron, LeakyLIF, spike_fn


def _set(module: torch.nn.Module, **values: float) -> None:
    for name, value in values.items():
        getattr(module, name).data.fill_(value)


def _state(v: list[float], z: list[float], extra: list[float] | None = None) -> torch.Tensor:
    rows = [v, z] + ([extra] if extra is not None else [])
    return torch.tensor(rows).view(len(rows), 1, 1, 1, len(v))


def test_spike_function_and_arctan_surrogate():
    x = torch.tensor([-0.5, 0.0, 0.25], requires_grad=True)
    z = spike_fn(x, 10.0)
    assert z.tolist() == [0.0, 0.0, 1.0]  # strict x > 0
    z.sum().backward()
    assert torch.allclose(x.grad, 1 / (1 + 10 * x.detach() ** 2))
    with torch.no_grad():
        assert spike_fn(x, 10.0).tolist() == [0.0, 0.0, 1.0]
    assert ArctanSpike.apply(torch.tensor([1.0]), 2.0).item() == 1.0


def test_tudelft_lif_hard_reset_step():
    n = LIF(1)
    _set(n, leak=0.0, thresh=0.5)  # leak = sigmoid(0) = 0.5
    state = _state([0.6, 0.2, 0.9], [1.0, 0.0, 0.0])
    current = torch.tensor([1.0, 0.4, 0.3]).view(1, 1, 1, 3)
    z, new = n(current, state)
    v = [0.6 * 0.5 * 0 + 0.5 * 1.0, 0.2 * 0.5 + 0.5 * 0.4, 0.9 * 0.5 + 0.5 * 0.3]
    assert torch.allclose(new[0].flatten(), torch.tensor(v))
    assert z.flatten().tolist() == [0.0, 0.0, 1.0] and torch.equal(new[1], z)


def test_tudelft_lif_soft_reset_and_threshold_clamp():
    n = LIF(1, hard_reset=False)
    _set(n, leak=0.0, thresh=-1.0)  # clamped to 0.01
    z, new = n(torch.tensor([0.0, 0.02]).view(1, 1, 1, 2), _state([0.0, 0.0], [1.0, 0.0]))
    assert torch.allclose(new[0].flatten(), torch.tensor([-0.01, 0.01]))
    assert z.flatten().tolist() == [0.0, 0.0]  # 0.01 is not > 0.01


def test_leaky_lif_is_the_fork_onnx_op():
    n = LeakyLIF(1)
    _set(n, beta=1.5, threshold=0.8)  # beta clipped to 1
    mem, inp = [0.3, 0.5, -0.2], [0.4, 0.2, 0.1]
    z, new = n(torch.tensor(inp).view(1, 1, 1, 3), _state(mem, [0.0, 0.0, 0.0]))
    m = [a + b for a, b in zip(mem, inp, strict=True)]  # beta * mem + input
    spikes = [1.0 if x > 0.8 else 0.0 for x in m]
    assert z.flatten().tolist() == spikes
    assert torch.allclose(new[0].flatten(), torch.tensor([0.0 if s else x for x, s in zip(m, spikes, strict=True)]))


def test_plif_trace_current():
    n = PLIF(1)
    _set(n, leak_v=0.0, leak_pt=0.0, add_pt=0.0, thresh=10.0)
    state = _state([0.0], [0.0], [0.2])
    _, new = n(torch.tensor([1.0]).view(1, 1, 1, 1), state, trace_input=torch.tensor([0.6]).view(1, 1, 1, 1))
    pt = 0.2 * 0.5 + 0.5 * 0.6
    assert math.isclose(new[2].item(), pt, rel_tol=1e-6)
    assert math.isclose(new[0].item(), 0.5 * (1.0 - 0.5 * pt), rel_tol=1e-6)
    with pytest.raises(ValueError, match="trace_input"):
        n(torch.ones(1, 1, 1, 1), state)


def test_alif_adaptive_threshold_and_soft_reset():
    n = ALIF(1)
    _set(n, leak_v=0.0, leak_t=0.0, t0=0.1, t1=1.0)
    state = _state([0.4], [1.0], [0.2])
    z, new = n(torch.tensor([0.6]).view(1, 1, 1, 1), state)
    t = 0.2 * 0.5 + 0.5 * 1.0
    v = 0.4 * 0.5 + 0.5 * 0.6 - 1.0 * (0.1 + 1.0 * 0.2)
    assert math.isclose(new[2].item(), t, rel_tol=1e-6) and math.isclose(new[0].item(), v, rel_tol=1e-6)
    assert z.item() == float(v > 0.1 + t)


def test_xlif_threshold_follows_the_trace():
    n = XLIF(1)
    _set(n, leak_v=0.0, leak_pt=0.0, t0=0.1, t1=1.0)
    _, new = n(torch.tensor([2.0]).view(1, 1, 1, 1), _state([0.0], [0.0], [0.0]),
               trace_input=torch.tensor([0.4]).view(1, 1, 1, 1))
    assert math.isclose(new[2].item(), 0.2, rel_tol=1e-6) and math.isclose(new[0].item(), 1.0, rel_tol=1e-6)
    assert new[1].item() == 1.0  # 1.0 > 0.1 + 0.2


@pytest.mark.parametrize("klass", [LIF, LeakyLIF, PLIF, ALIF, XLIF])
def test_counting_rule_reports_spikes_updates_and_ops(klass):
    torch.manual_seed(0)
    cell = SpikingConvCell(2, 3, 3, klass, recurrent=True)
    x = (torch.rand(2, 2, 5, 6) < 0.5).float() * 3
    with torch.no_grad():
        state = None
        expected_spikes = 0
        with snnprof.Profiler(cell, time_steps=2, batch_size=2) as prof:
            for _ in range(2):
                z, state = cell(x, state)
                expected_spikes += int(z.count_nonzero())
    rec = prof.result().layer("neuron")
    assert rec.type == klass.__name__ and issubclass(klass, EventFlowNeuron)
    assert rec.neurons == 3 * 5 * 6 and rec.neuron_updates == 2 * 2 * 3 * 5 * 6
    assert rec.spikes == expected_spikes
    assert rec.flops == klass.flops_per_update * rec.neuron_updates
    assert prof.result().layer("ff").dense_macs == 2 * (2 * 3 * 5 * 6 * 2 * 9)

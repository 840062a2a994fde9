"""Hand-checked dynamics of the event_flow neurons and their counting rule."""

from __future__ import annotations

import math

import pytest
import torch

import snnprof
from snnprof.models.event_flow_cells import SpikingConvCell
from snnprof.models.event_flow_neurons import (
    ALIF,
    LIF,
    PLIF,
    XLIF,
    ArctanSpike,
    EventFlowNeuron,
    ForkLeakyLIF,
    LeakyLIF,
    spike_fn,
)


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


class SnnTorchLeaky094:
    """snnTorch 0.9.4 ``Leaky.forward`` (reset_delay=False, init_hidden=False) + the fork's ``detach_hidden()``.

    Written from ``snntorch/_neurons/leaky.py`` @ v0.9.4 for this test: an internal membrane ``mem`` that
    survives calls with ``mem=None``, a detached ``reset = H(mem - thr)``, ``do_reset = spk - reset``.
    """

    def __init__(self, beta: torch.Tensor, threshold: torch.Tensor, zero: bool) -> None:
        self.beta, self.threshold, self.zero = beta, threshold, zero
        self.mem = torch.zeros(0)

    def __call__(self, inp: torch.Tensor, mem: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if mem is not None:
            self.mem = mem
        if self.mem.shape != inp.shape:
            self.mem = torch.zeros_like(inp)
        reset = (self.mem - self.threshold > 0).float()
        if self.zero:
            self.mem = (1 - reset) * self.mem
            self.mem = self.beta.clamp(0, 1) * self.mem + inp
        else:
            self.mem = self.beta.clamp(0, 1) * self.mem + inp - reset * self.threshold
        spk = (self.mem - self.threshold > 0).float()
        do_reset = spk - reset
        self.mem = self.mem - do_reset * (self.mem if self.zero else self.threshold)
        self.mem = self.mem.detach()  # detach_hidden(): mem.detach_()
        return spk, self.mem


@pytest.mark.parametrize("hard", [True, False])
def test_fork_neuron_follows_snntorch_094_over_passes_and_resets(hard: bool) -> None:
    """Several passes, a sequence change (``prev_state = None``), a threshold drop below a carried membrane."""
    torch.manual_seed(0)
    n = ForkLeakyLIF(3, hard_reset=hard)
    ref = SnnTorchLeaky094(n.beta.detach().clone(), n.threshold.detach().clamp_min(0.01).clone(), hard)
    state = None
    for step in range(8):
        if step == 4:  # the loop's reset_states(): the fork passes prev_state=None, snnTorch keeps its mem
            state = torch.stack([state[0], torch.zeros_like(state[1])])
            prev = None
        else:
            prev = state
        if step == 6:  # an optimiser step lowers the threshold under the carried membranes
            n.threshold.data.mul_(0.3)
            ref.threshold = n.threshold.detach().clamp_min(0.01).clone()
        current = torch.rand(2, 3, 2, 2) * 1.5 - 0.2
        spk_ref, mem_ref = ref(current, None if prev is None else prev[0])
        start = n.initial_state(current) if state is None else state
        spk, state = n(current, start)
        assert torch.equal(spk, spk_ref)
        torch.testing.assert_close(state[0], mem_ref)
    grads = torch.autograd.grad(state[0].sum(), [n.beta, n.threshold], allow_unused=True)
    assert all(g is None or not g.any() for g in grads)  # the carried membrane has no gradient (detached)


def test_fork_neuron_detaches_the_membrane_only() -> None:
    n = ForkLeakyLIF(1)
    _set(n, beta=0.5, threshold=0.8)
    current = torch.tensor([0.5, 1.0]).view(1, 1, 1, 2).requires_grad_(True)
    z, new = n(current, _state([0.2, 0.0], [0.0, 0.0]))
    assert z.requires_grad and new[1].requires_grad
    (grad,) = torch.autograd.grad(new[0].sum(), current, allow_unused=True)
    assert grad is None or not grad.any()
    plain = LeakyLIF(1)  # the same update as LeakyLIF from a membrane under threshold
    _set(plain, beta=0.5, threshold=0.8)
    z_plain, new_plain = plain(current, _state([0.2, 0.0], [0.0, 0.0]))
    assert torch.equal(z, z_plain) and torch.equal(new[0], new_plain[0].detach())
    # a carried membrane above threshold (v = 2 > 0.8): zeroed first, and a spike then resets nothing
    z, new = n(torch.tensor([1.0, 0.3]).view(1, 1, 1, 2), _state([2.0, 2.0], [0.0, 0.0]))
    assert z.flatten().tolist() == [1.0, 0.0] and new[0].flatten().tolist() == pytest.approx([1.0, 0.6])


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

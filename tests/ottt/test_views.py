"""OTTT's firing-rate convention (view ``ottt_rates``) against a hand computation in the seed's way."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import snnprof
from snnprof.models import ottt, ottt_resnet
from snnprof.models.ottt import OnlineLIFNode
from snnprof.views.ottt import VIEW_NAME, ottt_firing_rates, render_ottt_rates


def seed_rates(model: nn.Module, batches: list[torch.Tensor], steps: int) -> tuple[list[float], list[int], float]:
    """get_rate_cifar.py: spikes_all[i] += sum_batch mean_neurons(spike); rate = spikes_all / (N * T)."""
    saved: list[torch.Tensor] = []
    nodes = [m for m in model.modules() if isinstance(m, OnlineLIFNode)]
    handles = [n.register_forward_hook(lambda m, i, o: saved.append(o.reshape(o.shape[0], -1))) for n in nodes]
    spikes_all, dims, samples = [0.0] * len(nodes), [0] * len(nodes), 0
    try:
        with torch.no_grad():
            for x in batches:
                samples += x.shape[0]
                for t in range(steps):
                    saved.clear()
                    model(x, init=(t == 0))
                    for i, spike in enumerate(saved):  # hooks fire in layer order
                        spikes_all[i] += torch.sum(torch.mean(spike, dim=1)).item()
                        dims[i] = spike.shape[1]
    finally:
        for h in handles:
            h.remove()
    rates = [s / (samples * steps) for s in spikes_all]
    total = sum(r * d for r, d in zip(rates, dims, strict=True)) / sum(dims)
    return rates, dims, total


@pytest.mark.parametrize("factory", [ottt.ottt_vgg11_ws, ottt.ottt_vgg11f_ws])
def test_vgg_rates_match_the_seed_computation(factory) -> None:
    torch.manual_seed(0)
    model = factory(width=0.125).eval()
    batches = [torch.randn(3, 3, 16, 16) * 2, torch.randn(2, 3, 16, 16) * 2]
    steps = 3
    with snnprof.Profiler(model, time_steps=steps) as prof, torch.no_grad():
        for x in batches:
            ottt.run(model, x, steps)
    view = ottt_firing_rates(prof.result())
    rates, dims, total = seed_rates(model, batches, steps)
    assert [r.dims for r in view.layers] == dims
    assert len(view.layers) == 8
    assert [r.rate for r in view.layers] == pytest.approx(rates, rel=1e-9, abs=1e-12)
    assert view.total_spike_rate == pytest.approx(total, rel=1e-9)
    assert 0.0 < view.total_spike_rate < 1.0


def test_resnet_rates_cover_32_layers_in_seed_order() -> None:
    torch.manual_seed(0)
    model = ottt_resnet.ottt_nfresnet34(num_classes=10, width=0.125).eval()
    x = torch.randn(2, 3, 32, 32) * 2
    with snnprof.Profiler(model, time_steps=2) as prof, torch.no_grad():
        ottt.run(model, x, 2)
    view = ottt_firing_rates(prof.result())
    rates, dims, total = seed_rates(model, [x], 2)
    assert [r.name for r in view.layers][:4] == ["layer1.0.sn1", "layer1.0.sn2", "layer1.1.sn1", "layer1.1.sn2"]
    assert [r.dims for r in view.layers] == dims and len(dims) == 32
    assert [r.rate for r in view.layers] == pytest.approx(rates, rel=1e-9, abs=1e-12)
    assert view.total_spike_rate == pytest.approx(total, rel=1e-9, abs=1e-12)


class TwoLayers(nn.Module):
    """Two online LIF layers side by side: ``a`` on inputs 0..3, ``b`` on inputs 4..5."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = OnlineLIFNode(), OnlineLIFNode()

    def forward(self, x: torch.Tensor, init: bool = False) -> torch.Tensor:
        return torch.cat([self.a(x[:, :4], init=init), self.b(x[:, 4:], init=init)], 1)


def test_hand_computed_two_layer_example() -> None:
    model = TwoLayers()
    x = torch.tensor([[1.0, 0.0, 0.0, 0.0, 0.6, 0.6]])  # a: 4 neurons, fires 1 of 4 each step; b: 2 neurons
    with snnprof.Profiler(model, time_steps=3, batch_size=1) as prof, torch.no_grad():
        ottt.run(model, x, 3)
    view = ottt_firing_rates(prof.result())
    # a: neuron 0 at v = 1, 1.0 (0 + 1), 1.0 -> 3 spikes of 12 updates; b: v = 0.6, 0.9, 1.05 -> spikes at t = 2.
    assert [(r.name, r.dims) for r in view.layers] == [("a", 4), ("b", 2)]
    assert [r.rate for r in view.layers] == [3 / 12, 2 / 6]
    assert view.total_spike_rate == (3 / 12 * 4 + 2 / 6 * 2) / 6
    assert view.to_dict()["view"] == VIEW_NAME == "ottt_rates"
    text = render_ottt_rates(view)
    assert text.splitlines()[0].startswith("layer=1, spike_rate=0.25")
    assert text.splitlines()[-1] == f"total_spike_rate={view.total_spike_rate}"

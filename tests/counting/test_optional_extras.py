"""Rules for optional neuron packages (snnTorch, norse): exact when installed, skipped otherwise."""

from __future__ import annotations

import pytest
import torch

import snnprof


def _loop_net(cell: torch.nn.Module, step) -> torch.nn.Module:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(4, 3)
            self.cell = cell

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return step(self, x)

    return Net()


def test_snntorch_leaky_counts_spikes_per_step():
    snn = pytest.importorskip("snntorch")

    def step(net, x):
        mem, out = net.cell.init_leaky(), []
        for t in range(x.shape[0]):
            spk, mem = net.cell(net.fc(x[t]), mem)
            out.append(spk)
        return torch.stack(out)

    torch.manual_seed(0)
    net = _loop_net(snn.Leaky(beta=0.5, threshold=0.1), step)
    x = torch.rand(5, 2, 4)
    expected = step(net, x)
    result = snnprof.profile(net, x, time_steps=5)
    lif = result.layer("cell")
    assert lif.neuron_updates == 5 * 2 * 3
    assert lif.spikes == int((expected != 0).sum())
    assert lif.spikes_per_step == [int((expected[t] != 0).sum()) for t in range(5)]
    assert result.batch_size == 2 and result.unsupported == []


def test_norse_lif_multi_step():
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    cell = norse.LIF()
    net = _loop_net(cell, lambda n, x: n.cell(n.fc(x) * 5)[0])
    x = torch.rand(6, 2, 4)
    spikes = net(x)
    result = snnprof.profile(net, x)
    rec = result.layer("cell")
    assert rec.neuron_updates == 6 * 2 * 3
    assert rec.spikes == int((spikes != 0).sum())
    assert result.time_steps == 6


def test_optional_rules_absent_without_packages():
    """Without the extras nothing is registered for them and import never fails."""
    from snnprof.counting.registry import list_rules

    names = [r.target for r in list_rules()]
    try:
        import snntorch  # noqa: F401
    except ImportError:
        assert not any("snntorch" in n for n in names)

"""One small spiking CNN written in every framework, with weights exact in float32 (multiples of 1/8).

conv 3x3 (2->4, padding 1) -> LIF -> avg pool 2 -> flatten -> linear (64->5) -> LIF, on 8x8 frames.
Every LIF has tau = 2 (a decay of exactly 1/2), threshold 0.9 and a hard reset to 0. With binary
inputs and dyadic weights every membrane value is exact in float32, so each framework's update
formula (``v + (x - v)/2``, ``v/2 + x/2``, ``v + 0.5 ((0 - v) + x)`` ...) gives the same numbers and
the same spikes; 0.9 is never reached exactly, so ``>`` and ``>=`` thresholds agree too.
"""

from __future__ import annotations

from collections.abc import Callable

import nir
import numpy as np
import torch
from torch import nn

T, B, C, H = 6, 3, 2, 8
TAU, THRESHOLD = 2.0, 0.9


def weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """Dyadic weights (multiples of 1/8, |w| <= 2)."""
    gen = torch.Generator().manual_seed(seed)

    def dyadic(*shape: int, scale: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * scale * 8).round().clamp(-16, 16) / 8

    return {"conv.weight": dyadic(4, C, 3, 3, scale=0.6), "conv.bias": dyadic(4, scale=0.2),
            "fc.weight": dyadic(5, 4 * (H // 2) ** 2, scale=0.5), "fc.bias": dyadic(5, scale=0.2)}


def spikes(seed: int = 1, rate: float = 0.3) -> torch.Tensor:
    """Binary input frames ``[T, B, C, H, H]``."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, C, H, H, generator=gen) < rate).float()


def _conv_fc(w: dict[str, torch.Tensor], scale: float = 1.0) -> tuple[nn.Conv2d, nn.Linear]:
    conv, fc = nn.Conv2d(C, 4, 3, padding=1), nn.Linear(4 * (H // 2) ** 2, 5)
    with torch.no_grad():
        conv.weight.copy_(w["conv.weight"] * scale)
        conv.bias.copy_(w["conv.bias"] * scale)
        fc.weight.copy_(w["fc.weight"] * scale)
        fc.bias.copy_(w["fc.bias"] * scale)
    return conv, fc


def spikingjelly(w: dict[str, torch.Tensor]) -> nn.Module:
    """Multi-step SpikingJelly: ``LIFNode(tau=2)`` (decay_input: ``v + (x - v) / 2``)."""
    from spikingjelly.activation_based import functional, layer, neuron

    conv, fc = _conv_fc(w)
    sj_conv, sj_fc = layer.Conv2d(C, 4, 3, padding=1), layer.Linear(4 * (H // 2) ** 2, 5)
    sj_conv.load_state_dict(conv.state_dict())
    sj_fc.load_state_dict(fc.state_dict())
    net = nn.Sequential(sj_conv, neuron.LIFNode(tau=TAU, v_threshold=THRESHOLD), layer.AvgPool2d(2), layer.Flatten(),
                        sj_fc, neuron.LIFNode(tau=TAU, v_threshold=THRESHOLD))
    functional.set_step_mode(net, "m")
    return net


class _Loop(nn.Module):
    """Single-step layers run over the time axis of ``[T, B, ...]``; ``cell(x, state) -> (spikes, state)``."""

    def __init__(self, conv: nn.Module, lif1: nn.Module, fc: nn.Module, lif2: nn.Module) -> None:
        super().__init__()
        self.conv, self.lif1, self.fc, self.lif2 = conv, lif1, fc, lif2
        self.pool, self.flat = nn.AvgPool2d(2), nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = s2 = None
        out = []
        for t in range(x.shape[0]):
            z, s1 = self.lif1(self.conv(x[t]), s1)
            z, s2 = self.lif2(self.fc(self.flat(self.pool(z))), s2)
            out.append(z)
        return torch.stack(out)


class _SnnTorchLeaky(nn.Module):
    """snnTorch ``Leaky`` with the membrane passed explicitly (``init_hidden=False``)."""

    def __init__(self) -> None:
        super().__init__()
        import snntorch

        self.leaky = snntorch.Leaky(beta=0.5, threshold=THRESHOLD, reset_mechanism="zero", reset_delay=False)

    def forward(self, x: torch.Tensor, mem: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.leaky(x, torch.zeros_like(x) if mem is None else mem)


def snntorch_net(w: dict[str, torch.Tensor]) -> nn.Module:
    """snnTorch ``Leaky(beta=0.5)``, ``mem = mem/2 + x``, fed ``x/2`` (weights halved, exact) = ``v/2 + x/2``."""
    conv, fc = _conv_fc(w, scale=0.5)
    return _Loop(conv, _SnnTorchLeaky(), fc, _SnnTorchLeaky())


def norse_net(w: dict[str, torch.Tensor]) -> nn.Module:
    """Norse ``LIFBoxCell`` with ``dt * tau_mem_inv = 1/2``: ``v + 0.5 ((0 - v) + x)``."""
    from norse.torch import LIFBoxCell, LIFBoxParameters

    conv, fc = _conv_fc(w)

    def cell() -> nn.Module:
        return LIFBoxCell(LIFBoxParameters(tau_mem_inv=torch.tensor(1 / TAU), v_th=torch.tensor(THRESHOLD),
                                           v_leak=torch.tensor(0.0), v_reset=torch.tensor(0.0)), dt=1.0)

    return _Loop(conv, cell(), fc, cell())


class _BatchTime(nn.Module):
    """Sinabs layers take ``[B, T, ...]``: the synaptic layers run on ``[B*T, ...]``."""

    def __init__(self, conv: nn.Module, lif1: nn.Module, fc: nn.Module, lif2: nn.Module) -> None:
        super().__init__()
        self.conv, self.lif1, self.fc, self.lif2 = conv, lif1, fc, lif2
        self.pool, self.flat = nn.AvgPool2d(2), nn.Flatten()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        y = self.conv(x.transpose(0, 1).reshape(batch * steps, *x.shape[2:]))
        z = self.lif1(y.reshape(batch, steps, *y.shape[1:]))
        y = self.fc(self.flat(self.pool(z.reshape(batch * steps, *z.shape[2:]))))
        return self.lif2(y.reshape(batch, steps, -1)).transpose(0, 1)


def sinabs_net(w: dict[str, torch.Tensor]) -> nn.Module:
    """Sinabs ``LIF`` (``alpha = 1/2``, ``norm_input``: ``v/2 + x/2``), ``SingleSpike``, reset to 0."""
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    conv, fc = _conv_fc(w)

    def lif() -> nn.Module:
        layer = sl.LIF(tau_mem=TAU, spike_threshold=torch.tensor(THRESHOLD), spike_fn=SingleSpike,
                       reset_fn=MembraneReset(), train_alphas=True, norm_input=True)
        with torch.no_grad():
            layer.alpha_mem.fill_(0.5)
        return layer

    return _BatchTime(conv, lif(), fc, lif())


def nir_graph(w: dict[str, torch.Tensor]) -> nir.NIRGraph:
    """The network as a NIR graph (time constants in steps, ``dt = 1``)."""

    def lif(shape: tuple[int, ...]) -> nir.LIF:
        ones = np.ones(shape, dtype=np.float32)
        return nir.LIF(tau=TAU * ones, r=ones, v_leak=0 * ones, v_threshold=THRESHOLD * ones, v_reset=0 * ones)

    side = H // 2
    return nir.NIRGraph.from_list(
        nir.Input(input_type=np.array([C, H, H])),
        nir.Conv2d(input_shape=(H, H), weight=w["conv.weight"].numpy(), stride=1, padding=1, dilation=1, groups=1,
                   bias=w["conv.bias"].numpy()),
        lif((4, H, H)),
        nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        nir.Flatten(input_type={"input": np.array([4, side, side])}, start_dim=0),
        nir.Affine(weight=w["fc.weight"].numpy(), bias=w["fc.bias"].numpy()),
        lif((5,)),
        nir.Output(output_type=np.array([5])),
    )


def nir_net(w: dict[str, torch.Tensor]) -> nn.Module:
    """The NIR graph, loaded by snnprof (nirtorch + snnprof's LIF module)."""
    from snnprof.interop import load_nir

    return load_nir(nir_graph(w), dt=1.0)


#: framework -> (package that must import, builder)
BUILDERS: dict[str, tuple[str | None, Callable[[dict[str, torch.Tensor]], nn.Module]]] = {
    "spikingjelly": (None, spikingjelly),
    "snntorch": ("snntorch", snntorch_net),
    "norse": ("norse", norse_net),
    "sinabs": ("sinabs", sinabs_net),
    "nir": (None, nir_net),
}

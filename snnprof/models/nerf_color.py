"""Colour MLPs of SpikingNeRF and its ANN baselines: per point features -> RGB logits.

Spiking (SpikingNeRF ``RGBnet`` / ``MLPRender_Fea_Spiking``), SpikingJelly multi-step layers, no biases::

    layer1  TempoLinear(C -> W)  on the M valid points, scattered into [T, B, W]   -> lif1 (LIF, tau 2)
    hidden  (depth - 2) x [Linear(W -> W) -> LIF]
    layer3  Linear(W -> 3)                                                           -> logits [T, B, 3]

LIF: ``H = V + (X - V) / tau``, threshold 1, hard reset to 0, ``detach_reset=True``, sigmoid surrogate
(SpikingJelly ``LIFNode`` defaults); ``lif_type = "plif"`` uses ``ParametricLIFNode``. Neuron states are
reset before and after every chunk, so every ray starts at V = 0. The logits are gathered back to the
valid points ``[M, 3]``.

ANN (DVGO ``rgbnet`` / TensoRF ``MLPRender_Fea``): ``Linear(C -> W) -> ReLU -> (depth-2) x [Linear(W -> W)
-> ReLU] -> Linear(W -> 3)``, with biases for DVGO and without for TensoRF.
"""

from __future__ import annotations

import logging

import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

from snnprof.models.nerf_packing import Packing, TempoLinear

__all__ = ["LIF_TYPES", "AnnColorNet", "SpikingColorNet", "scale_init"]

logger = logging.getLogger(__name__)

#: Neuron types of the spiking colour MLP.
LIF_TYPES: tuple[str, ...] = ("lif", "plif")


def _neuron(lif_type: str, tau: float) -> nn.Module:
    """A multi-step SpikingJelly LIF or PLIF node with hard reset and detached reset."""
    if lif_type == "plif":
        return neuron.ParametricLIFNode(init_tau=tau, detach_reset=True, step_mode="m")
    return neuron.LIFNode(tau=tau, detach_reset=True, step_mode="m")


class SpikingColorNet(nn.Module):
    """The spiking colour MLP; ``forward(feat [M, C], packing) -> logits [M, 3]``.

    Args:
        in_features: C, features per point (39 for SpikingNeRF-D, 150 for -T with PE 2/2).
        width: hidden width W (128).
        depth: Linear layers (3: two spiking layers and the output layer).
        lif_type: ``lif`` (LIFNode, tau fixed) or ``plif`` (ParametricLIFNode, tau learnt).
        tau: membrane time constant (2.0).
    """

    def __init__(self, in_features: int, width: int = 128, depth: int = 3, lif_type: str = "lif",
                 tau: float = 2.0) -> None:
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        if lif_type not in LIF_TYPES:
            raise ValueError(f"lif_type must be one of {', '.join(LIF_TYPES)}, got {lif_type!r}")
        self.in_features, self.width, self.depth = int(in_features), int(width), int(depth)
        self.layer1 = TempoLinear(self.in_features, self.width)
        self.lif1 = _neuron(lif_type, tau)
        self.hidden = nn.ModuleList(
            nn.Sequential(layer.Linear(self.width, self.width, bias=False, step_mode="m"), _neuron(lif_type, tau))
            for _ in range(self.depth - 2)
        )
        self.layer3 = layer.Linear(self.width, 3, bias=False, step_mode="m")

    def forward(self, feat: torch.Tensor, packing: Packing) -> torch.Tensor:
        """RGB logits of the valid points ``[M, 3]`` (the SNN runs on ``[T, B, ...]``)."""
        functional.reset_net(self)
        x = self.lif1(self.layer1(feat, packing))
        for block in self.hidden:
            x = block(x)
        logits = self.layer3(x)
        functional.reset_net(self)
        return logits[packing.t_idx, packing.b_idx]

    def per_point_macs(self) -> int:
        """The seed's "FLOPs" per valid point: MACs of the first (real-valued input) layer."""
        return self.in_features * self.width

    def max_sops_per_point(self) -> int:
        """SOPs per point if every neuron fires: ``W * W * (depth - 2) + W * 3``."""
        return self.width * self.width * (self.depth - 2) + self.width * 3


class AnnColorNet(nn.Sequential):
    """The ReLU colour MLP; ``forward(feat [M, C]) -> logits [M, 3]`` (extra arguments ignored).

    Children ``0, 1, ...`` as in DVGO's ``rgbnet`` Sequential (so its checkpoints' keys match).

    Args:
        in_features: C, features per point.
        width: hidden width W.
        depth: Linear layers.
        bias: biases on every Linear (DVGO: True, output bias zero; TensoRF ``MLPRender_Fea``: False).
    """

    def __init__(self, in_features: int, width: int = 128, depth: int = 3, bias: bool = True) -> None:
        if depth < 2:
            raise ValueError(f"depth must be >= 2, got {depth}")
        blocks: list[nn.Module] = [nn.Linear(in_features, width, bias=bias), nn.ReLU()]
        for _ in range(depth - 2):
            blocks.append(nn.Sequential(nn.Linear(width, width, bias=bias), nn.ReLU()))
        blocks.append(nn.Linear(width, 3, bias=bias))
        super().__init__(*blocks)
        if bias:
            nn.init.zeros_(self[-1].bias)
        self.in_features, self.width, self.depth = int(in_features), int(width), int(depth)

    def forward(self, feat: torch.Tensor, packing: Packing | None = None) -> torch.Tensor:  # noqa: D417
        """RGB logits ``[M, 3]`` of point features ``feat [M, C]``."""
        del packing
        return super().forward(feat)

    def per_point_macs(self) -> int:
        """MACs per point of all layers: ``C*W + W*W*(depth-2) + W*3`` (the seed's ANN "FLOPs")."""
        return self.in_features * self.width + self.width * self.width * (self.depth - 2) + self.width * 3


@torch.no_grad()
def scale_init(net: nn.Module, gain: float, generator: torch.Generator) -> None:
    """Re-draw every Linear-like weight as ``N(0, gain^2 / fan_in)`` and zero the biases.

    Used by the zoo's ``init="scene"`` so an untrained network on the synthetic scene has realistic
    activity (firing rates of roughly 10-30 % instead of a nearly silent SNN).

    Args:
        net: the colour network.
        gain: standard deviation times ``sqrt(fan_in)``.
        generator: CPU RNG (deterministic weights).
    """
    for module in net.modules():
        weight = getattr(module, "weight", None)
        if isinstance(weight, nn.Parameter) and weight.dim() == 2:
            fan_in = weight.shape[1]
            weight.copy_(torch.randn(weight.shape, generator=generator) * (gain / fan_in**0.5))
            bias = getattr(module, "bias", None)
            if isinstance(bias, nn.Parameter):
                bias.zero_()

"""StereoSpike's equivalent ANN (``urancon/StereoSpike`` @ 6254fec ``network/ANN_models.py``): zoo ``stereospike_ann``.

``StereoSpike_equivalentANN``: the StereoSpike U-Net (:mod:`snnprof.models.stereospike`) with biases on the
encoder and bottleneck convs, each conv followed by an activation and BatchNorm, the decoder's
``NNConvUpsampling`` convs without bias, and the four heads summed. Module names follow the seed, so its
``state_dict`` loads unchanged (``snnprof convert stereospike``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from snnprof.models.registry import register_model
from snnprof.models.stereospike import (
    _PAPER,
    CHANNELS,
    MVSEC_SIZE,
    NNConvUpsampling,
    SkipAdd,
    _size,
    _StereoBase,
    encoder_sizes,
    make_inputs,
    run,
)

__all__ = ["ANN_ACTIVATIONS", "ResBlock", "StereoSpikeANN", "stereospike_ann"]

logger = logging.getLogger(__name__)

#: Activation choices of the equivalent ANN (paper Table 4).
ANN_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "tanh", "leakyrelu")


class ResBlock(nn.Module):
    """Analog residual block of the equivalent ANN: ``[conv, act, BN] x 2 + identity``.

    Args:
        channels: channels in and out.
        activation: a factory of the activation module.
        bias: conv bias.
    """

    def __init__(self, channels: int, activation: type[nn.Module] | Any, bias: bool = True) -> None:
        super().__init__()
        self.conv1 = self._unit(channels, activation, bias)
        self.conv2 = self._unit(channels, activation, bias)

    @staticmethod
    def _unit(channels: int, activation: Any, bias: bool) -> nn.Sequential:
        return nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=bias), activation(), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``conv2(conv1(x)) + x``."""
        return self.conv2(self.conv1(x)) + x


_ACTIVATION_FACTORIES: dict[str, Any] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leakyrelu": lambda: nn.LeakyReLU(0.1),
}


class StereoSpikeANN(_StereoBase):
    """StereoSpike's equivalent ANN: same topology, conv bias, activation then BatchNorm per conv.

    The four heads are summed like the SNN's I-neurons (``depth1 = p4 + p3 + p2 + p1``), with plain
    additions instead of a non-firing neuron layer.

    Args:
        in_channels: 4 (binocular) or 2 (monocular).
        input_size: ``(H, W)``, pixels.
        activation: ``sigmoid`` (the seed's default and ``test.py``), ``tanh`` or ``leakyrelu`` (slope 0.1),
            the three of the paper's Table 4.
        upsampling: ``nearest`` (the seed's ``NNConvUpsampling``) or ``bilinear`` (its unused
            ``BilinConvUpsampling``, ``align_corners=True``).
        bias: bias of the encoder and bottleneck convs (the heads always have one).
        deconv_bias: bias of the decoder convs (the seed's ``NNConvUpsampling`` has none).
    """

    def __init__(
        self,
        in_channels: int = 4,
        input_size: Sequence[int] = MVSEC_SIZE,
        *,
        activation: str = "sigmoid",
        upsampling: str = "nearest",
        bias: bool = True,
        deconv_bias: bool = False,
    ) -> None:
        super().__init__()
        sizes = encoder_sizes(*self._check_sizes(in_channels, input_size))
        if activation not in _ACTIVATION_FACTORIES:
            raise ValueError(f"activation must be one of {ANN_ACTIVATIONS}, got {activation!r}")
        act, c = _ACTIVATION_FACTORIES[activation], CHANNELS
        self.activation = activation

        def block(conv: nn.Module, channels: int) -> nn.Sequential:
            return nn.Sequential(conv, act(), nn.BatchNorm2d(channels))

        self.bottom = block(nn.Conv2d(self.in_channels, c[0], 5, 1, 2, bias=bias), c[0])
        for i in range(1, 5):
            setattr(self, f"conv{i}", block(nn.Conv2d(c[i - 1], c[i], 5, 2, 2, bias=bias), c[i]))
        self.bottleneck = nn.Sequential(ResBlock(c[4], act, bias), ResBlock(c[4], act, bias))
        for i in range(4, 0, -1):
            up = NNConvUpsampling(c[i], c[i - 1], 5, sizes[i - 1], bias=deconv_bias, mode=upsampling)
            setattr(self, f"deconv{i}", block(up, c[i - 1]))
            setattr(self, f"add{i}", SkipAdd())
            head = NNConvUpsampling(c[i - 1], 1, 3, sizes[0], bias=True, mode=upsampling)
            setattr(self, f"predict_depth{i}", nn.Sequential(head))
        self._depth: torch.Tensor | None = None

    def _readout(self, level: int, skip: torch.Tensor) -> torch.Tensor:
        """Add head ``level`` to the running depth sum (reset at level 4)."""
        pred = getattr(self, f"predict_depth{level}")(skip)
        if level == 4:
            depth = pred + self.depth_prior if self.depth_prior != 0.0 else pred
        else:
            assert self._depth is not None
            depth = self._depth + pred
        self._depth = depth if level > 1 else None
        return depth


@register_model(
    "stereospike_ann",
    make_inputs=make_inputs,
    run=run,
    step_mode="ann",
    description="StereoSpike's equivalent ANN (conv+bias, Sigmoid, BatchNorm, NN upsampling), MVSEC 260x346",
    paper=_PAPER,
    defaults={"batch_size": 1, "time_steps": 1},
)
def stereospike_ann(
    monocular: bool = False,
    height: int = MVSEC_SIZE[0],
    width: int = MVSEC_SIZE[1],
    *,
    activation: str = "sigmoid",
    upsampling: str = "nearest",
    deconv_bias: bool = False,
) -> StereoSpikeANN:
    """Build StereoSpike's equivalent ANN (``StereoSpike_equivalentANN``).

    Args:
        monocular: 2 input channels (left ON/OFF) instead of 4.
        height: input H, pixels.
        width: input W, pixels.
        activation: ``sigmoid`` (seed), ``tanh`` or ``leakyrelu``.
        upsampling: ``nearest`` (seed) or ``bilinear``.
        deconv_bias: decoder conv biases (seed: none).
    """
    return StereoSpikeANN(
        in_channels=2 if monocular else 4,
        input_size=_size(height, width),
        activation=activation,
        upsampling=upsampling,
        deconv_bias=deconv_bias,
    )

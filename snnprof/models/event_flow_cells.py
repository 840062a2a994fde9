"""Building blocks of the event_flow networks: spiking conv cells, ConvGRU, plain conv layers, U-Net blocks.

Every stateful cell is called as ``out, new_state = cell(x, prev_state)`` (one time step), like the
seed's ``ConvLIF``/``ConvLIFRecurrent``/``ConvGRU``; ``prev_state=None`` means a zero state. The
synaptic work always lives in ``nn.Conv2d`` children (counted by the conv rule) and the neuron
dynamics in an :class:`~snnprof.models.event_flow_neurons.EventFlowNeuron` child (counted by its
rule), so every MAC, SOP and spike of these blocks is attributed to a named layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from snnprof.models.event_flow_neurons import EventFlowNeuron

__all__ = [
    "ConvGRUCell",
    "ConvLayer",
    "NeuronFactory",
    "ResidualBlock",
    "SpikingConvCell",
    "SpikingRecurrentConvLayer",
    "SpikingResidualBlock",
    "SpikingUpsampleConvLayer",
    "StatelessConvCell",
    "UpsampleConvLayer",
    "map_state",
]

#: ``channels -> neuron`` (each cell builds its own neuron with per-channel parameters).
NeuronFactory = Callable[[int], EventFlowNeuron]

_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": torch.relu, "tanh": torch.tanh}


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: Any) -> Any:
    """Apply ``fn`` to every tensor of a (possibly nested tuple/list) recurrent state; ``None`` stays."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    return type(state)(map_state(fn, s) for s in state)


def _uniform_init(conv: nn.Conv2d, fan: int) -> None:
    """The seed's ``U(-sqrt(1/fan), sqrt(1/fan))`` weight initialisation."""
    scale = math.sqrt(1.0 / fan)
    nn.init.uniform_(conv.weight, -scale, scale)


class ConvLayer(nn.Module):
    """``Conv2d`` (bias) + optional activation (``relu``/``tanh``); the seed's ``ConvLayer`` without norm.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel, pixels (padding ``k // 2``).
        stride: stride, pixels.
        activation: ``"relu"``, ``"tanh"`` or ``None``.
        w_scale: if given, weights ``U(-w_scale, w_scale)`` and zero bias (prediction layers).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        *,
        activation: str | None = "relu",
        w_scale: float | None = None,
    ) -> None:
        super().__init__()
        if activation is not None and activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)} or None, got {activation!r}")
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=True)
        if w_scale is not None:
            nn.init.uniform_(self.conv2d.weight, -w_scale, w_scale)
            nn.init.zeros_(self.conv2d.bias)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve and activate ``x`` ``[B, C_in, H, W]``."""
        out = self.conv2d(x)
        return _ACTIVATIONS[self.activation](out) if self.activation is not None else out


class StatelessConvCell(ConvLayer):
    """The seed's ``ConvLayer_``: a conv layer with the cell call signature (state passed through)."""

    def forward(self, x: torch.Tensor, prev_state: Any = None) -> tuple[torch.Tensor, Any]:  # type: ignore[override]
        """``(activation(conv(x)), prev_state)``."""
        return super().forward(x), prev_state


class ConvGRUCell(nn.Module):
    """Convolutional GRU (FireNet's recurrent unit): gates from ``cat([x, h])``, orthogonal init.

    ``u = sigmoid(W_u * [x, h])``, ``r = sigmoid(W_r * [x, h])``, ``o = tanh(W_o * [x, r h])``,
    ``h' = h (1 - u) + o u``; output = new state.

    Args:
        input_size: input channels.
        hidden_size: hidden channels.
        kernel_size: square kernel of the three gate convs.
    """

    def __init__(self, input_size: int, hidden_size: int, kernel_size: int) -> None:
        super().__init__()
        self.hidden_size = int(hidden_size)
        pad = kernel_size // 2
        self.reset_gate = nn.Conv2d(input_size + hidden_size, hidden_size, kernel_size, padding=pad)
        self.update_gate = nn.Conv2d(input_size + hidden_size, hidden_size, kernel_size, padding=pad)
        self.out_gate = nn.Conv2d(input_size + hidden_size, hidden_size, kernel_size, padding=pad)
        for gate in (self.reset_gate, self.update_gate, self.out_gate):
            nn.init.orthogonal_(gate.weight)
            nn.init.zeros_(gate.bias)

    def forward(self, x: torch.Tensor, prev_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``(h', h')``."""
        if prev_state is None:
            b, _, h, w = x.shape
            prev_state = x.new_zeros((b, self.hidden_size, h, w))
        stacked = torch.cat([x, prev_state], dim=1)
        update = torch.sigmoid(self.update_gate(stacked))
        reset = torch.sigmoid(self.reset_gate(stacked))
        out = torch.tanh(self.out_gate(torch.cat([x, prev_state * reset], dim=1)))
        new_state = prev_state * (1 - update) + out * update
        return new_state, new_state


class SpikingConvCell(nn.Module):
    """``ConvLIF``-style cell: ``ff`` conv (no bias), optional ``rec`` conv of the previous spikes, a neuron.

    Current ``I = ff(x) [+ rec(z_prev)]``; neurons with a presynaptic trace also get
    ``pool(mean_c |x|)`` (``AvgPool2d(k, stride, k // 2)``). The output is the spikes, plus
    ``residual`` when given (spiking residual blocks).

    Args:
        in_channels: input channels.
        out_channels: neurons per pixel.
        kernel_size: square kernel, pixels.
        neuron: factory of the neuron (called with ``out_channels``).
        stride: stride of ``ff``, pixels.
        recurrent: add the ``rec`` conv on the previous spikes.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        neuron: NeuronFactory,
        *,
        stride: int = 1,
        recurrent: bool = False,
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.ff = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=pad, bias=False)
        _uniform_init(self.ff, in_channels)
        self.rec: nn.Conv2d | None = None
        if recurrent:
            self.rec = nn.Conv2d(out_channels, out_channels, kernel_size, padding=pad, bias=False)
            _uniform_init(self.rec, out_channels)
        self.neuron = neuron(out_channels)
        self.pool = nn.AvgPool2d(kernel_size, stride, padding=pad) if self.neuron.uses_trace else None

    def forward(
        self, x: torch.Tensor, prev_state: torch.Tensor | None = None, residual: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``(spikes [+ residual], new_state)``."""
        current = self.ff(x)
        state = prev_state
        if state is None or (self.neuron.carries_membrane and state.shape[1:] != current.shape):
            state = self.neuron.initial_state(current)  # snnTorch re-initialises a membrane of another shape
        if self.rec is not None:
            current = current + self.rec(state[1])
        trace = self.pool(x.abs().mean(1, keepdim=True)) if self.pool is not None else None
        spikes, new_state = self.neuron(current, state, trace)
        return (spikes if residual is None else spikes + residual), new_state


class ResidualBlock(nn.Module):
    """ANN residual block: ``relu(conv2(relu(conv1(x))) + x)`` (3x3, bias).

    Args:
        channels: input = output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        out = torch.relu(self.conv1(x))
        return torch.relu(self.conv2(out) + x)


class UpsampleConvLayer(nn.Module):
    """ANN decoder layer: bilinear x2 upsampling, then ``ConvLayer`` (bias, relu).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel, pixels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = ConvLayer(in_channels, out_channels, kernel_size, activation="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample x2 and convolve."""
        return self.conv(self.upsample(x))


class SpikingRecurrentConvLayer(nn.Module):
    """Spiking encoder: strided ``SpikingConvCell`` then a recurrent one (state ``(conv, recurrent)``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel, pixels.
        neuron: neuron factory.
        stride: stride of the first cell.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, neuron: NeuronFactory, stride: int = 2
    ) -> None:
        super().__init__()
        self.conv = SpikingConvCell(in_channels, out_channels, kernel_size, neuron, stride=stride)
        self.recurrent_block = SpikingConvCell(out_channels, out_channels, kernel_size, neuron, recurrent=True)

    def forward(self, x: torch.Tensor, prev_state: Any = None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One step: ``(spikes, (conv_state, recurrent_state))``."""
        ff_state, rec_state = (None, None) if prev_state is None else prev_state
        x1, ff_state = self.conv(x, ff_state)
        x2, rec_state = self.recurrent_block(x1, rec_state)
        return x2, (ff_state, rec_state)


class SpikingResidualBlock(nn.Module):
    """Spiking residual block (Fang et al. 2021): two 3x3 spiking cells, the input added to the spikes.

    Args:
        channels: input = output channels.
        neuron: neuron factory.
    """

    def __init__(self, channels: int, neuron: NeuronFactory) -> None:
        super().__init__()
        self.conv1 = SpikingConvCell(channels, channels, 3, neuron)
        self.conv2 = SpikingConvCell(channels, channels, 3, neuron)

    def forward(self, x: torch.Tensor, prev_state: Any = None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One step: ``(conv2 spikes + x, (state1, state2))``."""
        s1, s2 = (None, None) if prev_state is None else prev_state
        x1, s1 = self.conv1(x, s1)
        x2, s2 = self.conv2(x1, s2, residual=x)
        return x2, (s1, s2)


class SpikingUpsampleConvLayer(nn.Module):
    """Spiking decoder layer: bilinear x2 upsampling, then a ``SpikingConvCell``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel, pixels.
        neuron: neuron factory.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, neuron: NeuronFactory) -> None:
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv2d = SpikingConvCell(in_channels, out_channels, kernel_size, neuron)

    def forward(self, x: torch.Tensor, prev_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``(spikes, state)``."""
        return self.conv2d(self.upsample(x), prev_state)

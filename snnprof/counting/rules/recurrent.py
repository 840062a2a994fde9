"""Recurrent cells and layers: RNN/LSTM/GRU (cells and full multi-layer, bidirectional modules).

Dense MACs per step and direction: ``gates * H * (I + H_out)`` (+ ``H * proj`` for LSTM
projections), gates = 1 (RNN), 4 (LSTM), 3 (GRU). The input-to-hidden product of the first layer is
synaptic (spiking inputs give SOPs: each event reaches ``gates * H`` units per direction); hidden
products are dense. Elementwise ops per hidden unit and step: RNN 4 (tanh), GRU 17, LSTM 23, plus
two bias adds per gate unit when biased.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from snnprof.counting.costs import Cost, PerEvent, Synapse
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import arg

__all__: list[str] = []

_GATES = {nn.RNNCell: 1, nn.LSTMCell: 4, nn.GRUCell: 3, nn.RNN: 1, nn.LSTM: 4, nn.GRU: 3}
_EW = {1: 4, 4: 23, 3: 17}


def _gates(module: nn.Module) -> int:
    for klass, gates in _GATES.items():
        if isinstance(module, klass):
            return gates
    raise TypeError(type(module).__name__)


_RNN = Convention(
    "recurrent", "MACs `gates·H·(I + H)` per step and direction; per hidden unit and step RNN 4, GRU 17, LSTM 23 "
    "(+2 per gate unit with bias)",
)


@register_rule(nn.RNNCell, nn.LSTMCell, nn.GRUCell, convention=_RNN)
def rnn_cell(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """RNNCell/LSTMCell/GRUCell, batched or not."""
    x = arg(args, kwargs, 0, "input")
    g, h, i = _gates(module), module.hidden_size, module.input_size
    rows = x.numel() // i
    x_part = Synapse(dense_macs=rows * g * h * i, operand=x, fanout=PerEvent(g * h))
    h_part = Synapse(dense_macs=rows * g * h * h)
    flops = rows * h * _EW[g] + (2 * rows * g * h if module.bias else 0)
    return Cost(flops=flops, synapses=(x_part, h_part))


def _steps(x: Any, module: nn.Module) -> tuple[torch.Tensor, int, int]:
    """The input data tensor, the number of (sample, time step) rows and its trailing feature dims.

    Packed sequences have no sample axis (rows of all samples are interleaved): all dims are features.
    """
    if isinstance(x, PackedSequence):
        return x.data, x.data.shape[0], x.data.dim()
    return x, x.numel() // module.input_size, 1


@register_rule(nn.RNN, nn.LSTM, nn.GRU, convention=_RNN)
def rnn_layer(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Full RNN/LSTM/GRU modules (num_layers, bidirectional, LSTM proj_size, packed sequences)."""
    data, rows, trailing = _steps(arg(args, kwargs, 0, "input"), module)
    g, h, dirs = _gates(module), module.hidden_size, 2 if module.bidirectional else 1
    proj = getattr(module, "proj_size", 0) or 0
    h_out = proj or h
    synapses: list[Synapse] = []
    flops = 0
    for layer in range(module.num_layers):
        i = module.input_size if layer == 0 else dirs * h_out
        macs_in = rows * dirs * g * h * i
        if layer == 0:
            synapses.append(Synapse(dense_macs=macs_in, operand=data, fanout=PerEvent(dirs * g * h, trailing)))
        else:
            synapses.append(Synapse(dense_macs=macs_in))
        synapses.append(Synapse(dense_macs=rows * dirs * (g * h * h_out + h * proj)))
        flops += rows * dirs * (h * _EW[g] + (2 * g * h if module.bias else 0))
    return Cost(flops=flops, synapses=tuple(synapses))

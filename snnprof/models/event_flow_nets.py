"""FireNet-family optical-flow networks of event_flow: LIF/PLIF/ALIF/XLIF-FireNet, LIF-FireFlowNet, FireNet.

Re-implementation of ``tudelft/event_flow`` ``models/model.py`` (and of the seed fork's snnTorch
variant, ``docs/seed_models.md`` section 4) for profiling. One call is one forward pass over an
event window (``[B, num_bins, H, W]`` event counts or voxels); the recurrent state of every cell is
carried across calls in ``self._states`` until :meth:`RecurrentFlowNet.reset_states` (sequence
change) and cut from the autograd graph by :meth:`RecurrentFlowNet.detach_states` (truncated BPTT).

Topology (all convs stride 1, padding ``k // 2``, resolution preserved)::

    head  cell(num_bins -> C)
    G1    recurrent cell(C -> C)      R1a cell(C -> C)    R1b cell(C -> C)
    G2    recurrent cell(C -> C)      R2a cell(C -> C)    R2b cell(C -> C)
    pred  ConvLayer(C -> 2, k1, bias, tanh)              # flow in [-1, 1] (x flow_scaling px)

``short`` drops R1b and R2b (the fork's ``LIFFireNet_short``); FireFlowNet replaces the recurrent
cells G1/G2 by feed-forward ones. The spiking cells are ``SpikingConvCell`` (conv without bias +
neuron, recurrent ones add a conv of the previous spikes); the ANN FireNet uses ``ConvLayer_``
(bias, ReLU) and ConvGRU cells.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snnprof.models.event_flow_cells import (
    ConvGRUCell,
    ConvLayer,
    NeuronFactory,
    SpikingConvCell,
    StatelessConvCell,
    map_state,
)
from snnprof.models.event_flow_neurons import EventFlowNeuron

__all__ = [
    "ENCODINGS",
    "FIRENET_LAYERS",
    "SHORT_LAYERS",
    "FireNetFamily",
    "RecurrentFlowNet",
    "build_firenet",
]

#: Cell names of FireNet in forward order (seed attribute names).
FIRENET_LAYERS: tuple[str, ...] = ("head", "G1", "R1a", "R1b", "G2", "R2a", "R2b")
#: Cell names of the ``_short`` variants (R1b and R2b removed).
SHORT_LAYERS: tuple[str, ...] = ("head", "G1", "R1a", "G2", "R2a")
#: Input encodings: per-polarity event counts (2 channels) or a voxel grid of ``num_bins`` bins.
ENCODINGS: tuple[str, ...] = ("cnt", "voxel")

_RECURRENT = frozenset({"G1", "G2"})


class RecurrentFlowNet(nn.Module):
    """Base of the event_flow networks: input encoding attributes and the recurrent-state API.

    Attributes:
        num_bins: input channels (2 for ``cnt``).
        encoding: ``"cnt"`` or ``"voxel"``.
        num_states: number of recurrent-state slots.
    """

    def __init__(self, num_bins: int, encoding: str, num_states: int) -> None:
        super().__init__()
        if encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {encoding!r}")
        if encoding == "cnt" and num_bins != 2:
            raise ValueError(f"the 'cnt' encoding has 2 channels (num_bins = 2), got num_bins = {num_bins}")
        if num_bins <= 0:
            raise ValueError(f"num_bins must be positive, got {num_bins}")
        self.num_bins = int(num_bins)
        self.encoding = encoding
        self.num_states = int(num_states)
        self._states: list[Any] = [None] * self.num_states

    @property
    def states(self) -> list[Any]:
        """A copy of the recurrent states (cloned tensors; ``None`` before the first pass)."""
        return [map_state(torch.Tensor.clone, s) for s in self._states]

    @states.setter
    def states(self, states: list[Any]) -> None:
        if len(states) != self.num_states:
            raise ValueError(f"expected {self.num_states} states, got {len(states)}")
        self._states = list(states)

    @property
    def carries_membrane(self) -> bool:
        """Whether its neurons keep their membrane across :meth:`reset_states` (the fork's snnTorch neuron)."""
        return any(isinstance(m, EventFlowNeuron) and m.carries_membrane for m in self.modules())

    def reset_states(self) -> None:
        """The seed's sequence change: forget the recurrent state.

        With the fork's snnTorch neurons (``carries_membrane``) only the previous spikes are forgotten and
        the membranes carry over, as in the fork (its ``reset_states()`` leaves snnTorch's membrane alone).
        """
        if self.carries_membrane:
            self._states = [map_state(_keep_membrane, s) for s in self._states]
        else:
            self.clear_states()

    def clear_states(self) -> None:
        """Every state back to rest (zero membranes and spikes): what counts and evaluations start from."""
        self._states = [None] * self.num_states

    def detach_states(self) -> None:
        """Cut the recurrent state from the autograd graph (truncated BPTT), keeping its values."""
        self._states = [map_state(torch.Tensor.detach, s) for s in self._states]


def _keep_membrane(state: torch.Tensor) -> torch.Tensor:
    """``[v, z, ...]`` -> ``[v.detach(), 0, ...]`` (a stacked neuron state)."""
    return torch.cat([state[:1].detach(), torch.zeros_like(state[1:])])


class FireNetFamily(RecurrentFlowNet):
    """A FireNet-topology network; see the module docstring.

    Args:
        cells: the cells by name, in forward order (``FIRENET_LAYERS`` or ``SHORT_LAYERS``).
        pred: the prediction layer (``ConvLayer(C, 2, 1, tanh)``).
        num_bins: input channels.
        encoding: ``"cnt"`` or ``"voxel"``.
    """

    def __init__(self, cells: dict[str, nn.Module], pred: ConvLayer, num_bins: int = 2, encoding: str = "cnt") -> None:
        super().__init__(num_bins, encoding, len(cells))
        self.layer_names = tuple(cells)
        for name, cell in cells.items():
            self.add_module(name, cell)
        self.pred = pred

    def forward(self, x: torch.Tensor, log: bool = False) -> dict[str, Any]:
        """One forward pass (one time step).

        Args:
            x: event representation ``[B, num_bins, H, W]`` of this window.
            log: also return the seed's per-layer activity (``x.ne(0).float().mean()`` of the input,
                every cell output and the prediction).

        Returns:
            ``{"flow": [flow], "activity": dict or None}`` with flow ``[B, 2, H, W]`` (x, y) in
            ``[-1, 1]`` units of ``flow_scaling`` pixels per window.
        """
        out = x
        outputs: list[torch.Tensor] = []
        for i, name in enumerate(self.layer_names):
            out, self._states[i] = getattr(self, name)(out, self._states[i])
            outputs.append(out)
        flow = self.pred(out)
        activity = self._activity([x, *outputs, flow]) if log else None
        return {"flow": [flow], "activity": activity}

    def _activity(self, tensors: list[torch.Tensor]) -> dict[str, float]:
        """The seed's ``log=True`` activity dict (``"0:input"``, ``"1:head"`` ... ``"k:pred"``)."""
        names = ["input", *self.layer_names, "pred"]
        pairs = enumerate(zip(names, tensors, strict=True))
        return {f"{i}:{name}": t.detach().ne(0).float().mean().item() for i, (name, t) in pairs}


def _spiking_cells(
    layers: tuple[str, ...], num_bins: int, channels: int, kernel: int, *, neuron: NeuronFactory, recurrent: bool
) -> dict[str, nn.Module]:
    """Spiking cells of a FireNet topology."""
    cells: dict[str, nn.Module] = {}
    for name in layers:
        cin = num_bins if name == "head" else channels
        rec = recurrent and name in _RECURRENT
        cells[name] = SpikingConvCell(cin, channels, kernel, neuron, recurrent=rec)
    return cells


def _ann_cells(layers: tuple[str, ...], num_bins: int, channels: int, kernel: int) -> dict[str, nn.Module]:
    """ANN FireNet cells: ``ConvLayer_`` (ReLU) and ConvGRU for G1/G2."""
    cells: dict[str, nn.Module] = {}
    for name in layers:
        if name in _RECURRENT:
            cells[name] = ConvGRUCell(channels, channels, kernel)
        else:
            cin = num_bins if name == "head" else channels
            cells[name] = StatelessConvCell(cin, channels, kernel, activation="relu")
    return cells


def build_firenet(
    *,
    neuron: NeuronFactory | None,
    recurrent: bool = True,
    short: bool = False,
    base_channels: int = 32,
    kernel_size: int = 3,
    num_bins: int = 2,
    encoding: str = "cnt",
    pred_w_scale: float | None = 0.01,
) -> FireNetFamily:
    """Assemble a FireNet-family network.

    Args:
        neuron: neuron factory for a spiking network; ``None`` builds the ANN FireNet (ConvGRU).
        recurrent: G1/G2 have recurrent convs (FireNet); ``False`` gives FireFlowNet.
        short: drop R1b/R2b.
        base_channels: C, channels of every hidden layer.
        kernel_size: square kernel of the hidden convs, pixels.
        num_bins: input channels.
        encoding: ``"cnt"`` or ``"voxel"``.
        pred_w_scale: ``U(-s, s)`` init of the prediction conv (``None``: PyTorch default).
    """
    if base_channels <= 0 or kernel_size <= 0 or kernel_size % 2 == 0:
        raise ValueError(f"base_channels must be positive and kernel_size odd, got {base_channels}, {kernel_size}")
    layers = SHORT_LAYERS if short else FIRENET_LAYERS
    if neuron is None:
        cells = _ann_cells(layers, num_bins, base_channels, kernel_size)
    else:
        cells = _spiking_cells(layers, num_bins, base_channels, kernel_size, neuron=neuron, recurrent=recurrent)
    pred = ConvLayer(base_channels, 2, 1, activation="tanh", w_scale=pred_w_scale)
    return FireNetFamily(cells, pred, num_bins=num_bins, encoding=encoding)

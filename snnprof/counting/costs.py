"""What a counting rule returns: shape-derived costs plus the tensors that carry activity.

Rules are pure functions of a call (module or functional op, its arguments and output). They
return a :class:`Cost`; the engine turns the activity tensors into device-side counts (input
kinds, exact SOPs, spikes) without a host sync.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["Cost", "EventFn", "NeuronActivity", "PairFn", "Synapse"]

#: ``(events, events_sum) -> exact accumulates`` (a 0-d device tensor). ``events`` has the operand's
#: shape: 1 per nonzero input (or the value, for graded ``count`` inputs), as float32.
EventFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``(events_a, events_b) -> accumulates`` when both operands carry events (e.g. spike @ spike).
PairFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Synapse:
    """One synaptic product inside a call (a conv, a linear map, one matmul of attention ...).

    Attributes:
        dense_macs: multiply-accumulates if the operands are dense (shape-derived, exact).
        operand: the input whose kind decides MAC vs SOP; ``None`` means always dense
            (e.g. softmax weights times values).
        fanout: exact accumulates when only ``operand`` carries events.
        operand_b: optional second activity operand (matmul of two activations).
        fanout_b: exact accumulates when only ``operand_b`` carries events.
        pair: exact accumulates when both operands carry events.
    """

    dense_macs: int
    operand: torch.Tensor | None = None
    fanout: EventFn | None = None
    operand_b: torch.Tensor | None = None
    fanout_b: EventFn | None = None
    pair: PairFn | None = None


@dataclass
class NeuronActivity:
    """Spiking-neuron activity of one call.

    Attributes:
        spikes: the emitted spike tensor (nonzero = spike).
        time_dim: 0 for multi-step ``[T, B, ...]`` calls, ``None`` for single-step calls.
        flops_per_update: elementwise ops of one state update (documented per neuron rule).
    """

    spikes: torch.Tensor
    time_dim: int | None
    flops_per_update: int

    @property
    def batch_dim(self) -> int:
        """Dimension holding the batch."""
        return 1 if self.time_dim == 0 else 0

    @property
    def channel_dim(self) -> int | None:
        """Dimension holding channels/features, or ``None`` when the tensor has no such axis."""
        dim = self.batch_dim + 1
        return dim if self.spikes.dim() > dim else None


@dataclass
class Cost:
    """Cost of one call, as a rule reports it.

    Attributes:
        flops: elementwise ops of the call, excluding ``2 * dense_macs`` (added by the engine).
        synapses: synaptic products of the call.
        neuron: spiking activity, for neuron layers.
        geometry: structural facts for crossbar-style hardware models (``in_channels``,
            ``out_channels``, ``kernel_elems``, ``out_positions``, ``frames``).
        warnings: notes on approximations that the user must see.
    """

    flops: int = 0
    synapses: tuple[Synapse, ...] = ()
    neuron: NeuronActivity | None = None
    geometry: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

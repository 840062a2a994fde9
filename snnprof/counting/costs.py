"""What a counting rule returns: shape-derived costs plus the tensors that carry activity.

Rules are pure functions of a call (module or functional op, its arguments and output). They
return a :class:`Cost`; the engine turns the activity tensors into device-side counts (input
kinds, exact SOPs, spikes) without a host sync.

Per-sample statistics (``Profiler(sample_stats=True)``) need the SOPs of every *leading index* of
an operand (its frames: batch, time step, token ...), not only their total. A fanout or pair
function provides them through an optional ``rows`` attribute (:data:`RowFn`): it returns a tensor
whose shape is a prefix of the operand's shape (``[T, B]`` for ``[T, B, C, H, W]`` frames, ``[B]``
for ``[B, features]``, a 0-d tensor when nothing maps to samples) and which sums to the fanout's
total. :class:`PerEvent` is the fanout of every product whose events all reach the same number of
outputs (linear maps, matmuls, recurrent inputs); functions without ``rows`` get their SOPs shared
equally among the batch's samples, with a warning.

A fanout may also have ``evaluate(events, rows, bound) -> (events total, accumulates, per-row
accumulates or None)`` computing everything in one pass (``bound``: the largest event value when
the engine knows it); the engine prefers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

__all__ = ["Cost", "EventFn", "NeuronActivity", "PairFn", "PerEvent", "RowFn", "Synapse", "exact_sum", "rows_of"]

#: ``(events, events_sum) -> exact accumulates`` (a 0-d device tensor). ``events`` has the operand's
#: shape: 1 per nonzero input (or the value, for graded ``count`` inputs), as float32.
EventFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``(events_a, events_b) -> accumulates`` when both operands carry events (e.g. spike @ spike).
PairFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``events -> accumulates per leading index`` (float64, shape a prefix of the operand's shape);
#: the optional ``rows`` attribute of an :data:`EventFn` (for pair functions: ``(events_a, events_b)``).
RowFn = Callable[..., torch.Tensor]


_F32_EXACT = 1 << 24  # float32 represents every integer below this; sums that stay below are exact


def _dims(x: torch.Tensor, dim: int | tuple[int, ...] | None) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(x.dim()))
    return tuple(d % max(x.dim(), 1) for d in ((dim,) if isinstance(dim, int) else dim))


def exact_sum(x: torch.Tensor, dim: int | tuple[int, ...] | None = None, bound: float | None = None) -> torch.Tensor:
    """Exact float64 sum of integer-valued ``x`` (event tensors), over ``dim`` (default: all).

    On CPU a float32 reduction is ~25x faster than one accumulating in float64, and exact as long
    as every partial sum stays below 2^24: with ``m = max |x|`` (``bound`` when the caller knows
    it, else one cheap read), a reduction over ``n`` elements is done in float32 when
    ``n * m < 2^24``, a total over more elements in exact float32 blocks added in float64. Other
    devices and dtypes sum in float64 directly.
    """
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.numel() == 0:
        return x.sum(dim=dim, dtype=torch.float64) if dim is not None else x.sum(dtype=torch.float64)
    dims = _dims(x, dim)
    reduced = 1
    for d in dims:
        reduced *= x.shape[d]
    if bound is None:
        lo, hi = torch.aminmax(x)
        bound = max(-float(lo), float(hi), 1.0)
    bound = max(bound, 1.0)
    if reduced * bound < _F32_EXACT:
        return (x.sum(dim=dims) if dims else x.clone()).to(torch.float64)
    block = int(_F32_EXACT // bound)
    if len(dims) != x.dim() or block < 1:
        return x.sum(dim=dims, dtype=torch.float64)
    flat = x.reshape(-1)
    whole = flat.numel() // block * block
    parts = flat[:whole].view(-1, block).sum(1).to(torch.float64).sum()
    return parts + flat[whole:].sum().to(torch.float64)


class PerEvent:
    """Fanout of a product in which every input event reaches ``factor`` outputs.

    Args:
        factor: outputs reached by one event.
        trailing: trailing dimensions of the operand that are features (summed away by
            :meth:`rows`); the leading ones index frames/samples.
    """

    def __init__(self, factor: int, trailing: int = 1) -> None:
        self.factor = factor
        self.trailing = trailing

    def __call__(self, _ev: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        """Exact accumulates of all events: ``total * factor``."""
        return total * self.factor

    def evaluate(self, ev: torch.Tensor, rows: bool, bound: float | None = None) -> tuple[torch.Tensor, ...]:
        """``(events total, accumulates, accumulates per leading index or None)`` in one pass over ``ev``."""
        keep = ev.dim() - self.trailing
        if rows and keep > 0:
            per = exact_sum(ev, tuple(range(keep, ev.dim())), bound)
            total = per.sum()
            return total, total * self.factor, per * self.factor
        total = exact_sum(ev, bound=bound)
        return total, total * self.factor, (total * self.factor if rows else None)

    def rows(self, ev: torch.Tensor, bound: float | None = None) -> torch.Tensor:
        """Accumulates per leading index: events summed over the trailing feature dims, times ``factor``.

        Args:
            ev: the events.
            bound: largest event value, when known (saves a pass on CPU).
        """
        keep = ev.dim() - self.trailing
        if keep <= 0:
            return exact_sum(ev, bound=bound) * self.factor
        return exact_sum(ev, tuple(range(keep, ev.dim())), bound) * self.factor


def rows_of(fn: object) -> RowFn | None:
    """The per-leading-index version of a fanout or pair function, or ``None`` when it has none."""
    rows = getattr(fn, "rows", None)
    return rows if callable(rows) else None


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

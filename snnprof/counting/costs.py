"""What a counting rule returns: shape-derived costs plus the tensors that carry activity.

Rules are pure functions of a call (module or functional op, its arguments and output). They
return a :class:`Cost`; the engine turns the activity tensors into device-side counts (input
kinds, exact SOPs, spikes) without a host sync.

The SOPs of an operand come from its *fanout* (:class:`Fanout`): a callable ``(events, events
total) -> accumulates``. Per-sample statistics (``Profiler(sample_stats=True)``) need the SOPs of
every *leading index* of an operand (its frames: batch, time step, token ...), not only their
total. A fanout provides them through an optional ``rows`` method (:class:`RowsFanout`,
:class:`PairRowsFanout`): it
returns a tensor whose shape is a prefix of the operand's shape (``[T, B]`` for ``[T, B, C, H, W]``
frames, ``[B]`` for ``[B, features]``, a 0-d tensor when nothing maps to samples) and which sums to
the fanout's total. :class:`PerEvent` is the fanout of every product whose events all reach the
same number of outputs (linear maps, matmuls, recurrent inputs); fanouts without ``rows`` get
their SOPs shared equally among the batch's samples, with a warning.

A fanout may also have ``evaluate(events, rows, bound) -> FanoutPass`` computing everything in
one pass (:class:`OnePassFanout`; ``bound``: the largest event value when the engine knows it) and
``native_pass(x, rows) -> NativeStats | None`` deciding the input kind and, for spikes, the
accumulates straight from the raw operand (:class:`NativeFanout`); the engine prefers them.

Pool folding (:mod:`snnprof.counting.folding`) needs a fanout's outputs per input *position*: a
fanout that has ``fanout_map(shape) -> FanoutMap`` (:class:`MappedFanout`) can count the SOPs of a
layer fed by average or sum pooling of spikes on the pre-pool spikes. A pooling rule reports its
input and windows as a :class:`Pooling`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple, Protocol

import torch

if TYPE_CHECKING:
    from snnprof.counting.native import NativeStats

__all__ = [
    "Cost",
    "Fanout",
    "FanoutMap",
    "FanoutPass",
    "MappedFanout",
    "NativeFanout",
    "NeuronActivity",
    "OnePassFanout",
    "PairFanout",
    "PairRowsFanout",
    "PerEvent",
    "Pooling",
    "RowsFanout",
    "Synapse",
    "exact_sum",
    "fanout_map_of",
    "native_pass_of",
    "one_pass_of",
    "pair_rows_of",
    "rows_of",
]


class Fanout(Protocol):
    """``(events, events total) -> exact accumulates`` (a 0-d device tensor) of one operand.

    ``events`` has the operand's shape: 1 per nonzero input (or the value, for graded ``count``
    inputs), as float32/float64.
    """

    def __call__(self, ev: torch.Tensor, total: torch.Tensor, /) -> torch.Tensor:
        """Exact accumulates of all events of the operand (``total``: their sum, already computed)."""
        ...


class PairFanout(Protocol):
    """``(events_a, events_b) -> accumulates`` when both operands carry events (e.g. spike @ spike)."""

    def __call__(self, ev_a: torch.Tensor, ev_b: torch.Tensor, /) -> torch.Tensor:
        """Exact accumulates of the products whose two factors both carry events."""
        ...


class RowsFanout(Protocol):
    """A fanout that also gives its accumulates per leading index of the operand."""

    def rows(self, ev: torch.Tensor, /) -> torch.Tensor:
        """Accumulates per leading index (float64, shape a prefix of the operand's shape)."""
        ...


class PairRowsFanout(Protocol):
    """A pair fanout that also gives its accumulates per leading index."""

    def rows(self, ev_a: torch.Tensor, ev_b: torch.Tensor, /) -> torch.Tensor:
        """Accumulates per leading index (float64)."""
        ...


class FanoutPass(NamedTuple):
    """What :meth:`OnePassFanout.evaluate` returns (device tensors).

    Attributes:
        events: the events' total (0-d).
        accumulates: the exact accumulates (0-d).
        per_row: the accumulates per leading index, or ``None`` when not asked for.
    """

    events: torch.Tensor
    accumulates: torch.Tensor
    per_row: torch.Tensor | None


class OnePassFanout(Protocol):
    """A fanout that computes the events' total, accumulates and per-row accumulates in one pass."""

    def evaluate(self, ev: torch.Tensor, rows: bool, bound: float | None = None) -> FanoutPass:
        """One pass over ``ev`` (``bound``: the largest event value when known)."""
        ...


class NativeFanout(Protocol):
    """A fanout that classifies its raw operand and, for spikes, counts its accumulates natively."""

    def native_pass(self, x: torch.Tensor, rows: bool) -> NativeStats | None:
        """The kind of ``x`` and, for spikes, its accumulates; ``None`` when the native path does not apply."""
        ...


class FanoutMap(NamedTuple):
    """Outputs one event reaches, per position of the operand, as one period of its row-major order.

    Attributes:
        key: hashable identity of the map (the folding engine caches on it).
        values: float64 CPU ``[period]``: the element at flat (row-major) index ``i`` of the operand
            reaches ``values[i % period]`` outputs; the operand's size is a multiple of ``period``.
    """

    key: tuple[object, ...]
    values: torch.Tensor


class MappedFanout(Protocol):
    """A fanout that states the outputs each operand position reaches (for pool folding)."""

    def fanout_map(self, shape: tuple[int, ...]) -> FanoutMap:
        """Outputs reached per position of an operand of ``shape`` (one period, see :class:`FanoutMap`)."""
        ...


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

    def evaluate(self, ev: torch.Tensor, rows: bool, bound: float | None = None) -> FanoutPass:
        """Events total, accumulates and (with ``rows``) accumulates per leading index, in one pass over ``ev``."""
        keep = ev.dim() - self.trailing
        if rows and keep > 0:
            per = exact_sum(ev, tuple(range(keep, ev.dim())), bound)
            total = per.sum()
            return FanoutPass(total, total * self.factor, per * self.factor)
        total = exact_sum(ev, bound=bound)
        return FanoutPass(total, total * self.factor, total * self.factor if rows else None)

    def fanout_map(self, shape: tuple[int, ...]) -> FanoutMap:
        """Every position reaches ``factor`` outputs: a period of one element."""
        return FanoutMap(("per_event", self.factor), torch.tensor([float(self.factor)], dtype=torch.float64))

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


def rows_of(fn: object) -> RowsFanout | None:
    """``fn`` when it has a per-leading-index ``rows`` method (:class:`RowsFanout`), else ``None``."""
    return fn if callable(getattr(fn, "rows", None)) else None  # type: ignore[return-value]


def pair_rows_of(fn: object) -> PairRowsFanout | None:
    """``fn`` when it has a per-leading-index ``rows`` method (:class:`PairRowsFanout`), else ``None``."""
    return fn if callable(getattr(fn, "rows", None)) else None  # type: ignore[return-value]


def one_pass_of(fn: object) -> OnePassFanout | None:
    """``fn`` when it has a one-pass ``evaluate`` method (:class:`OnePassFanout`), else ``None``."""
    return fn if callable(getattr(fn, "evaluate", None)) else None  # type: ignore[return-value]


def fanout_map_of(fn: object) -> MappedFanout | None:
    """``fn`` when it has a ``fanout_map`` method (:class:`MappedFanout`), else ``None``."""
    return fn if callable(getattr(fn, "fanout_map", None)) else None  # type: ignore[return-value]


def native_pass_of(fn: object) -> NativeFanout | None:
    """``fn`` when it has a ``native_pass`` method (:class:`NativeFanout`), else ``None``."""
    return fn if callable(getattr(fn, "native_pass", None)) else None  # type: ignore[return-value]


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
    fanout: Fanout | None = None
    operand_b: torch.Tensor | None = None
    fanout_b: Fanout | None = None
    pair: PairFanout | None = None


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
class Pooling:
    """An average or sum pooling (linear in its input), as pool folding needs it.

    Attributes:
        source: the pooled input ``[*lead, *in_size]`` (every leading dim, channels included, is
            pooled independently).
        windows: per pooled (trailing) dim, the ``[start, stop)`` input range of each output index
            (padding clipped away; the divisor does not matter).
    """

    source: torch.Tensor
    windows: tuple[tuple[tuple[int, int], ...], ...]


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
        pooling: for average/sum pooling, its input and windows (pool folding), else ``None``.
    """

    flops: int = 0
    synapses: tuple[Synapse, ...] = ()
    neuron: NeuronActivity | None = None
    geometry: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    pooling: Pooling | None = None

"""Pool folding: SOPs of a synaptic layer fed by average or sum pooling of spikes, on the pre-pool spikes.

An average (or sum) pool of spikes is a linear map: ``P[q] = w_q · Σ_{p ∈ window(q)} S[p]``. The
synaptic layer after it, ``y = W P``, is then one synaptic layer on the spikes themselves, and an
event-driven chip runs it that way: each pre-pool spike ``S[p]`` adds its weights to every output
connected to a pooled position whose window holds ``p``. Counted so (the ``fold_pooling``
convention), the layer's SOPs are

    ``Σ_p events(S)[p] · G[p]``,  ``G[p] = Σ_{q : p ∈ window(q)} F[q]``,

where ``F[q]`` is the number of outputs the layer reaches from pooled position ``q`` (its border-aware
fan-out map: conv coverage × ``C_out / groups``, or ``out_features`` for a linear map). ``G`` is the
transposed pool (all-ones weights, same windows) applied to ``F``: shape-only, computed once per
geometry. Its ``macs`` are 0 for such a call and its input kind is ``spike`` (folded); ``dense_macs``,
``sops_rate`` and ``flops`` are those of the unfolded view.

The engine follows a pooled tensor through row-major reshapes (``view``, ``reshape``, ``flatten``,
``nn.Flatten`` ...), copies and scaling by a constant (a sum pool is an average pool times the
window size), and forgets it when the tensor dies or the model's call ends. Only pools whose input
is of kind ``spike`` fold (one pass over the pre-pool tensor, native on CPU); the SOPs of both views
are kept (:class:`~snnprof.counting.results.LayerRecord` ``macs_folded`` ...) whatever the option.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from snnprof.counting import native
from snnprof.counting.costs import FanoutMap, Pooling
from snnprof.counting.kinds import SPIKE, classify, events, host_code

__all__ = ["PRESERVING_OPS", "Folded", "PoolMap", "evaluate_fold", "pullback"]

#: Op names whose output holds the input's elements in the same row-major order (or scaled).
PRESERVING_OPS: frozenset[str] = frozenset({
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "squeeze", "unsqueeze", "contiguous",
    "clone", "detach", "float", "double", "half", "bfloat16", "to", "type",
})
_SCALING_OPS = frozenset({"mul", "rmul", "imul", "div", "truediv", "itruediv"})
_CACHE_LIMIT = 256


class Folded(NamedTuple):
    """One call's SOPs under the folding convention.

    Attributes:
        applies: whether the pooled input was spikes (a device bool tensor off the CPU, else a bool).
        sops: exact accumulates on the pre-pool spikes (meaningful where ``applies``).
        per_row: accumulates per leading index of the pre-pool tensor, or ``None``.
    """

    applies: bool | torch.Tensor
    sops: float | torch.Tensor
    per_row: torch.Tensor | None


def _indicator(windows: tuple[tuple[int, int], ...], size: int) -> torch.Tensor:
    """``M [out, in]`` with ``M[i, j] = 1`` when input ``j`` lies in output ``i``'s window (float64)."""
    m = torch.zeros(len(windows), size, dtype=torch.float64)
    for i, (start, stop) in enumerate(windows):
        m[i, start:stop] = 1.0
    return m


def _in_sizes(windows: tuple[tuple[tuple[int, int], ...], ...], source: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(v) for v in source.shape[source.dim() - len(windows) :])


_PULLBACKS: dict[tuple[Any, ...], tuple[torch.Tensor, int]] = {}


def pullback(windows: tuple[tuple[tuple[int, int], ...], ...], in_size: tuple[int, ...], fmap: FanoutMap,
             device: torch.device | None = None) -> tuple[torch.Tensor, int]:
    """The transposed pool of a fan-out map: outputs reached per pre-pool position, over one block.

    The block is ``lcm(period of the map, pooled plane)`` pooled elements, i.e. ``planes`` whole
    pooled planes; their pre-pool planes in row-major order make one block of the source.

    Args:
        windows: the pool's windows (:class:`~snnprof.counting.costs.Pooling`).
        in_size: pre-pool extent per pooled dim.
        fmap: the synaptic layer's fan-out map over its (pooled) operand.
        device: where ``G`` is wanted (default: CPU); cached per device.

    Returns:
        ``(G, planes)``: ``G`` float64 ``[planes · prod(in_size)]``, exact integers.
    """
    where = torch.device("cpu") if device is None else device
    key = (windows, in_size, fmap.key, where)
    found = _PULLBACKS.get(key)
    if found is not None:
        return found
    if where.type != "cpu":
        cover, planes = pullback(windows, in_size, fmap)
        return _remember(key, (cover.to(where), planes))
    out_size = tuple(len(w) for w in windows)
    plane, period = math.prod(out_size), fmap.values.numel()
    block = math.lcm(period, plane)
    grid = fmap.values.repeat(block // period).reshape(block // plane, *out_size)
    for axis, (wins, size) in enumerate(zip(windows, in_size, strict=True), start=1):
        grid = (grid.movedim(axis, -1) @ _indicator(wins, size)).movedim(-1, axis)
    return _remember(key, (grid.reshape(-1).contiguous(), block // plane))


def _remember(key: tuple[Any, ...], value: tuple[torch.Tensor, int]) -> tuple[torch.Tensor, int]:
    if len(_PULLBACKS) >= _CACHE_LIMIT:
        _PULLBACKS.clear()
    _PULLBACKS[key] = value
    return value


def _rows(per_block: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """``per_block`` shaped as the leading dims of ``shape`` whose product is its size, if any."""
    n, size = per_block.numel(), 1
    for k, dim in enumerate(shape):
        if size == n:
            return per_block.reshape(tuple(shape[:k]))
        size *= int(dim)
    return None


def evaluate_fold(pooling: Pooling, fmap: FanoutMap, operand: torch.Tensor, rows: bool) -> Folded | None:
    """The folded SOPs of a synaptic call whose operand is (a reshape of) ``pooling``'s output.

    Args:
        pooling: the pool that produced the operand.
        fmap: the synaptic layer's fan-out map over its operand.
        operand: the synaptic layer's operand (only its size is read).
        rows: also return the accumulates per leading index (per-sample statistics).

    Returns:
        :class:`Folded`, or ``None`` when the operand's layout does not line up with the pool's
        planes (then the call is counted unfolded in both views).
    """
    src = pooling.source
    in_size = _in_sizes(pooling.windows, src)
    plane = math.prod(len(w) for w in pooling.windows)
    pre_plane = math.prod(in_size)
    if not plane or not pre_plane or src.numel() % pre_plane:
        return None
    if operand.numel() != src.numel() // pre_plane * plane or operand.numel() % fmap.values.numel():
        return None
    cover, planes = pullback(pooling.windows, in_size, fmap, src.device)
    if (operand.numel() // plane) % planes:
        return None
    frames = src.numel() // cover.numel()
    got = native.classify_conv(src, frames, 1, cover, 1) if src.is_cpu else None
    if got is not None:
        if got.code != SPIKE:
            return Folded(False, 0.0, None)
        per_row = _rows(got.per_frame, src.shape) if rows and got.per_frame is not None else None
        return Folded(True, got.accumulates, per_row)
    return _torch_fold(src, cover, rows)


def _torch_fold(src: torch.Tensor, cover: torch.Tensor, rows: bool) -> Folded:
    """:func:`evaluate_fold` with Torch passes (GPU, non-contiguous or non-float tensors, no native library)."""
    code, peak = classify(src)
    known = host_code(code)
    if known is not None and known != SPIKE:
        return Folded(False, 0.0, None)
    ev = events(src, code, False, peak).reshape(-1, cover.numel()).to(torch.float64)
    per_block = ev @ cover
    total = per_block.sum()
    per_row = _rows(per_block, src.shape) if rows else None
    if known is not None:
        return Folded(True, float(total), per_row)
    return Folded(code == SPIKE, total, per_row)


class _Entry(NamedTuple):
    ref: weakref.ref[torch.Tensor]
    pooling: Pooling


class PoolMap:
    """Pooled tensors of the current model call, by identity, with the pooling that made each.

    Entries are dropped when their tensor is garbage collected and by :meth:`clear` (the end of
    each call of the model), so no pre-pool tensor outlives its pooled tensor for long.
    """

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}

    def __bool__(self) -> bool:
        return bool(self._entries)

    def _forget(self, key: int) -> Callable[[weakref.ref[torch.Tensor]], None]:
        def drop(ref: weakref.ref[torch.Tensor]) -> None:
            entry = self._entries.get(key)
            if entry is not None and entry.ref is ref:
                del self._entries[key]

        return drop

    def record(self, out: Any, pooling: Pooling) -> None:
        """Remember that ``out`` (a tensor) is the output of ``pooling``."""
        if isinstance(out, torch.Tensor):
            key = id(out)
            self._entries[key] = _Entry(weakref.ref(out, self._forget(key)), pooling)

    def find(self, x: Any) -> Pooling | None:
        """The pooling that produced ``x`` (or a reshape or scaled copy of it), or ``None``."""
        if not isinstance(x, torch.Tensor):
            return None
        entry = self._entries.get(id(x))
        return entry.pooling if entry is not None and entry.ref() is x else None

    def follow(self, name: str, args: tuple[Any, ...], out: Any) -> None:
        """Carry an entry from an op's first argument to its output (order-preserving ops, scaling)."""
        if not args or not isinstance(out, torch.Tensor) or out is args[0]:
            return
        pooling = self.find(args[0])
        if pooling is None and name in ("mul", "rmul") and len(args) > 1:
            pooling, args = self.find(args[1]), (args[1], args[0])
        if pooling is None or out.numel() != args[0].numel():
            return
        if name in PRESERVING_OPS or (name in _SCALING_OPS and _is_scalar(args[1:])):
            self.record(out, pooling)

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()


def _is_scalar(rest: tuple[Any, ...]) -> bool:
    """The other operand of a scaling op is a Python number or a one-element tensor."""
    if len(rest) != 1:
        return False
    other = rest[0]
    return isinstance(other, (int, float)) or (isinstance(other, torch.Tensor) and other.numel() == 1)

"""Evaluation of one synaptic product: input kinds, events, exact SOPs and the rate estimate.

Values stay device tensors (no host sync) except where the answer is known on the host for free
(always-dense products, CPU inputs proven dense, CPU kind codes). On CPU the native one-pass
statistics of :mod:`snnprof.counting.native` decide kinds; the Torch passes of
:mod:`snnprof.counting.kinds` are the definitions and the fallback.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from snnprof.counting import native
from snnprof.counting.costs import Fanout, Synapse, exact_sum, one_pass_of, pair_rows_of, rows_of
from snnprof.counting.kinds import (
    COUNT,
    DENSE,
    SPIKE,
    TERNARY,
    classify,
    events,
    host_code,
    sample_proves_dense,
)

__all__ = ["Evaluated", "Part", "evaluate_synapse"]


class Part(NamedTuple):
    """One operand side's per-sample SOPs.

    Attributes:
        per_row: SOPs per leading index, or ``None`` (then ``total`` is shared among the samples).
        total: the side's total SOPs (0-d), or ``None`` when ``per_row`` is given.
        mask: device bool scalar, whether this side applies (its input kind), or ``None``.
    """

    per_row: torch.Tensor | None
    total: torch.Tensor | None
    mask: torch.Tensor | None


class _Classified(NamedTuple):
    """One operand's kind and events.

    Attributes:
        code: the kind code (0-d tensor).
        events: the event tensor (:func:`~snnprof.counting.kinds.events`).
        bound: the largest event value when known on the host, else ``None``.
    """

    code: torch.Tensor
    events: torch.Tensor
    bound: float | None


class _Side(NamedTuple):
    """One event-carrying operand of a synaptic product, evaluated.

    Attributes:
        code: the kind code (0-d tensor; on CPU it is read for free).
        events: the event tensor.
        total: the events' total (0-d).
        sops: the exact accumulates when only this operand carries events (0-d).
        per_row: accumulates per leading index, when asked for and the fanout gives them.
    """

    code: torch.Tensor
    events: torch.Tensor
    total: torch.Tensor
    sops: torch.Tensor
    per_row: torch.Tensor | None


@dataclass
class Evaluated:
    """MACs, exact SOPs, rate estimate and kind of one synaptic product (device tensors or host numbers).

    ``code`` is ``None`` for always-dense products, a host ``int`` when the kind is known on the
    host, else a device tensor.
    """

    macs: torch.Tensor | int
    sops: torch.Tensor | int
    rate: torch.Tensor | float
    code: torch.Tensor | int | None
    parts: tuple[Part, ...] = ()


def _cpu_classify(x: torch.Tensor) -> tuple[int, torch.Tensor] | None:
    """:func:`classify` of a float CPU tensor as ``(host code, peak)``, skipping passes it does not need.

    The same tests as ``classify`` (same formulas, same precedence: spike, count, ternary, dense),
    but reading each scalar is free on CPU, so a spike tensor skips the integrality pass and a
    tensor with values below -1 skips it too. ``None`` for other tensors (use ``classify``).
    """
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.numel() == 0:
        return None
    flat = x.reshape(-1)
    lo, hi = torch.aminmax(flat)
    low, high = float(lo), float(hi)
    if low == 0.0 and float(torch.dot(flat, hi - flat)) == 0.0:
        return SPIKE, hi
    if not low >= -1.0:  # also NaN
        return DENSE, hi
    integral = float(torch.remainder(flat, 1).sum()) == 0.0
    if integral and low >= 0.0:
        return COUNT, hi
    if integral and high <= 1.0:
        return TERNARY, hi
    return DENSE, hi


def _events(x: torch.Tensor, code: int, by_value: bool, peak: torch.Tensor | float) -> tuple[torch.Tensor, float]:
    """:func:`events` of a float CPU tensor of known kind and peak (``max(x)``), and the largest event value.

    Spikes ``{0, c}`` are ``x / c`` (one pass); 0/1 spike tensors and counts weighted by value are
    their own events (no copy; events are never written to).
    """
    if code == SPIKE:
        return (x if float(peak) in (0.0, 1.0) else x / peak), 1.0
    if code == COUNT and by_value:  # non-negative integers are their own events (no copy)
        return x, float(peak)
    return events(x, torch.tensor(code), by_value, torch.as_tensor(peak, dtype=x.dtype)), 1.0


_SAMPLE = 2048


def _sample_proves_dense(x: torch.Tensor) -> bool:
    """:func:`sample_proves_dense` on the host with numpy (the same test, without per-op dispatch)."""
    if x.dtype not in (torch.float32, torch.float64) or x.device.type != "cpu":
        return sample_proves_dense(x)
    if not x.is_contiguous() or x.numel() < 2:
        return False
    try:
        sample = x.detach().view(-1)[:_SAMPLE].numpy()
    except (RuntimeError, TypeError):  # e.g. tensors with a lazy negation bit
        return sample_proves_dense(x)
    if not np.any(sample != np.round(sample)):
        return False
    nonzero = sample[sample != 0]
    return bool(nonzero.size >= 2 and np.any(nonzero != nonzero[0]))


def _forced(x: torch.Tensor, override: int, by_value: bool) -> _Classified | None:
    """:func:`_classified` with the kind forced by an override."""
    if override == DENSE:
        return None
    code = torch.tensor(override, device=x.device)
    if override in (SPIKE, TERNARY):
        x = x != 0  # a forced spike/ternary kind: one event per nonzero, whatever the values
    return _Classified(code, events(x, code, by_value, None), None)


_UNSET: Any = object()


def _classified(x: torch.Tensor, override: int | None, by_value: bool, fast: Any = _UNSET) -> _Classified | None:
    """Kind code, events and largest event (or ``None``) of one operand; ``None`` if surely dense.

    ``None`` is returned only when that is known without a device sync (CPU tensors), so the
    dense path skips every event computation. ``fast``: the operand's :func:`native.classify`, if
    already computed.
    """
    if override is not None:
        return _forced(x, override, by_value)
    if fast is _UNSET:
        fast = native.classify(x)  # one pass, stops early on dense values
    if fast is None:
        if _sample_proves_dense(x):
            return None
        fast = _cpu_classify(x)
    if fast is not None:
        if fast[0] == DENSE:
            return None
        return _Classified(torch.tensor(fast[0]), *_events(x, fast[0], by_value, fast[1]))
    code, peak = classify(x)
    if host_code(code) == DENSE:
        return None
    return _Classified(code, events(x, code, by_value, peak), None)


def _side(x: torch.Tensor, fanout: Fanout, override: int | None, by_value: bool, rows: bool = False, *,
          known: tuple[int, float] | None = None) -> _Side | None:
    """Kind, events, event total, exact accumulates (and per-row accumulates) of one operand.

    ``None`` if surely dense (see :func:`_classified`). With ``rows``, a fanout that has a per-row
    version is evaluated once, per row, and its total is their sum. ``known``: ``(code, peak)`` of
    ``x`` already computed (no second pass).
    """
    fast = _UNSET if known is None else known
    found = _classified(x, override, by_value, fast)
    if found is None:
        return None
    code, ev, bound = found
    one_pass = one_pass_of(fanout)
    if one_pass is not None:
        total, sops, per_row = one_pass.evaluate(ev, rows, bound)
        return _Side(code, ev, total, sops, per_row)
    total = exact_sum(ev, bound=bound)
    row_fn = rows_of(fanout) if rows else None
    if row_fn is not None:
        per_row = row_fn.rows(ev)
        return _Side(code, ev, total, per_row.sum(), per_row)
    return _Side(code, ev, total, fanout(ev, total), None)


def _dense(syn: Synapse) -> Evaluated:
    return Evaluated(syn.dense_macs, 0, 0.0, DENSE)


def evaluate_synapse(syn: Synapse, override: int | None, by_value: bool, rows: bool = False,
                     known: tuple[int, float] | None = None) -> Evaluated:
    """MACs, exact SOPs, rate estimate and kind code of one synaptic product.

    Values are device tensors (no host sync) except where the answer is known on the host
    (always-dense products, and CPU inputs proven dense), which come back as Python numbers.
    With ``rows``, ``parts`` also holds the SOPs per leading index of the operands (per-sample stats).
    ``known``: the first operand's ``(kind code, peak)`` when already computed (one-operand products).
    """
    a, b = syn.operand, syn.operand_b
    if a is None and b is None:
        return Evaluated(syn.dense_macs, 0, 0.0, None)
    if a is None:  # only the second operand can carry events
        a, b, fan_a, fan_b = b, None, syn.fanout_b, None
    else:
        fan_a, fan_b = syn.fanout, syn.fanout_b
    assert a is not None and fan_a is not None, "an event operand needs its fanout"
    side_a = _side(a, fan_a, override, by_value, rows, known=known)
    side_b = _side(b, fan_b, None, by_value, rows) if b is not None and fan_b is not None else None
    if side_a is None and side_b is None:
        return _dense(syn)
    if side_a is None or side_b is None:
        side = side_a if side_a is not None else side_b
        assert side is not None
        out = _one_sided(syn, side, a if side_a is not None else b)
        if rows:
            out.parts = _part(side.per_row, side.sops, None if isinstance(out.code, int) else side.code != DENSE)
        return out
    out = _two_sided(syn, side_a, side_b, a, b)
    if rows:
        out.parts = _two_sided_parts(syn, side_a, side_b)
    return out


def _applies(mask: torch.Tensor | None) -> bool:
    """False only when a CPU mask is known to be false (then its per-row work is skipped)."""
    return mask is None or mask.device.type != "cpu" or bool(mask)


def _part(per_row: torch.Tensor | None, total: torch.Tensor | Callable[[], torch.Tensor],
          mask: torch.Tensor | None) -> tuple[Part, ...]:
    """One side's per-sample SOPs (``total``: a tensor, or a thunk evaluated only when there are no rows)."""
    if not _applies(mask):
        return ()
    if per_row is not None:
        return (Part(per_row, None, mask),)
    return (Part(None, total if isinstance(total, torch.Tensor) else total(), mask),)


def _two_sided_parts(syn: Synapse, side_a: _Side, side_b: _Side) -> tuple[Part, ...]:
    is_a, is_b = side_a.code != DENSE, side_b.code != DENSE
    both = is_a & is_b
    pair = syn.pair
    pair_rows: torch.Tensor | None
    pair_total: torch.Tensor | Callable[[], torch.Tensor]
    if pair is None:
        pair_rows, pair_total = side_a.per_row, side_a.sops
    else:
        pair_fn = pair_rows_of(pair)
        pair_rows = pair_fn.rows(side_a.events, side_b.events) if pair_fn is not None and _applies(both) else None
        pair_total = lambda: pair(side_a.events, side_b.events)  # noqa: E731  (only evaluated without rows)
    return (
        *_part(side_a.per_row, side_a.sops, is_a & ~is_b),
        *_part(side_b.per_row, side_b.sops, is_b & ~is_a),
        *_part(pair_rows, pair_total, both),
    )


def _one_sided(syn: Synapse, side: _Side, x: torch.Tensor) -> Evaluated:
    code, total, sops = side.code, side.total, side.sops
    rate = syn.dense_macs * total / max(x.numel(), 1)
    known = host_code(code)
    if known is not None:  # CPU: an event kind (dense sides never get here), decided on the host
        return Evaluated(0, sops, rate, known)
    is_ev = code != DENSE
    return Evaluated(
        torch.where(is_ev, 0, syn.dense_macs), torch.where(is_ev, sops, 0.0), torch.where(is_ev, rate, 0.0), code
    )


def _two_sided(syn: Synapse, side_a: _Side, side_b: _Side, a: torch.Tensor, b: torch.Tensor) -> Evaluated:
    is_a, is_b = side_a.code != DENSE, side_b.code != DENSE
    both = is_a & is_b
    pair = syn.pair(side_a.events, side_b.events) if syn.pair is not None else side_a.sops
    sops = torch.where(both, pair, torch.where(is_a, side_a.sops, torch.where(is_b, side_b.sops, 0.0)))
    rate_a = syn.dense_macs * side_a.total / max(a.numel(), 1)
    rate_b = syn.dense_macs * side_b.total / max(b.numel(), 1)
    rate_both = rate_a * side_b.total / max(b.numel(), 1)
    rate = torch.where(both, rate_both, torch.where(is_a, rate_a, torch.where(is_b, rate_b, 0.0)))
    macs = torch.where(is_a | is_b, 0, syn.dense_macs)
    return Evaluated(macs, sops, rate, torch.where(is_a | ~is_b, side_a.code, side_b.code))

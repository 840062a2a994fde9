"""Per-layer accumulators: Python ints for shape-derived counts, device tensors for activity.

Data-dependent quantities (input kinds, MACs vs SOPs, spikes) stay on the tensors' device as
running sums; :func:`finalize` moves all of them to the host in one transfer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch

from snnprof.counting import native
from snnprof.counting.costs import (
    Cost,
    Fanout,
    NeuronActivity,
    Synapse,
    exact_sum,
    native_pass_of,
    one_pass_of,
    pair_rows_of,
    rows_of,
)
from snnprof.counting.kinds import (
    COUNT,
    DENSE,
    KIND_NAMES,
    SPIKE,
    TERNARY,
    classify,
    events,
    host_code,
    sample_proves_dense,
)
from snnprof.counting.results import LayerRecord
from snnprof.counting.samples import SampleCollector

__all__ = ["LayerAccumulator", "finalize"]


@dataclass
class _Device:
    """Running device sums of one layer (created lazily on the first tensor's device)."""

    macs: torch.Tensor
    sops: torch.Tensor
    sops_rate: torch.Tensor
    spikes: torch.Tensor
    kinds: torch.Tensor
    step_spikes: torch.Tensor | None = None
    channel_spikes: torch.Tensor | None = None

    @classmethod
    def on(cls, device: torch.device) -> _Device:
        def zero(dtype: torch.dtype, n: int = 0) -> torch.Tensor:
            return torch.zeros(n, dtype=dtype, device=device) if n else torch.zeros((), dtype=dtype, device=device)

        return cls(zero(torch.int64), zero(torch.float64), zero(torch.float64), zero(torch.float64),
                   zero(torch.int64, 4))


_EXACT_F32 = 1 << 24  # float32 sums of 0/1 values are exact below this many terms


def _indicator(s: torch.Tensor) -> torch.Tensor:
    """1.0 where ``s`` is nonzero (a spike), as float32/float64.

    One pass (``ne`` written straight into a float tensor); measured on CPU with cold caches it is
    cheaper than ``abs().sign_()`` and far cheaper than bool reductions or ``count_nonzero``.
    """
    dtype = s.dtype if s.dtype in (torch.float32, torch.float64) else torch.float32
    return torch.ne(s, 0, out=torch.empty(s.shape, dtype=dtype, device=s.device))


def _exact_sum(x: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """Sum of 0/1 values over ``dim`` as float64, exact (float32 accumulation when provably exact)."""
    dims = (dim,) if isinstance(dim, int) else dim
    reduced = 1
    for d in dims:
        reduced *= x.shape[d]
    dtype = x.dtype if reduced < _EXACT_F32 else torch.float64
    return x.sum(dim, dtype=dtype).to(torch.float64)


def _channel_grid(fired: torch.Tensor, lead: int) -> torch.Tensor:
    """Spikes per (leading index, channel): ``[T, B, C]`` (multi-step) or ``[B, C]`` (float64, exact).

    One pass over the spike tensor: the trailing (spatial) dims after the channel are summed; a
    tensor without a channel dim counts as one channel.
    """
    if fired.dim() <= lead:
        return fired.reshape(*fired.shape, 1).to(torch.float64)
    if fired.dim() == lead + 1:
        return fired.to(torch.float64)
    return _exact_sum(fired, tuple(range(lead + 1, fired.dim())))


def _grow(vec: torch.Tensor | None, size: int, like: torch.Tensor) -> torch.Tensor:
    """Return ``vec`` zero-padded to at least ``size`` elements (float64 accumulators)."""
    if vec is None:
        return torch.zeros(size, dtype=torch.float64, device=like.device)
    if vec.numel() >= size:
        return vec
    return torch.cat([vec, vec.new_zeros(size - vec.numel())])


class _Part(NamedTuple):
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
class _Evaluated:
    """MACs, exact SOPs, rate estimate and kind of one synaptic product (device tensors or host numbers).

    ``code`` is ``None`` for always-dense products, a host ``int`` when the kind is known on the
    host, else a device tensor.
    """

    macs: torch.Tensor | int
    sops: torch.Tensor | int
    rate: torch.Tensor | float
    code: torch.Tensor | int | None
    parts: tuple[_Part, ...] = ()


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


def _dense(syn: Synapse) -> _Evaluated:
    return _Evaluated(syn.dense_macs, 0, 0.0, DENSE)


def evaluate_synapse(syn: Synapse, override: int | None, by_value: bool, rows: bool = False,
                     known: tuple[int, float] | None = None) -> _Evaluated:
    """MACs, exact SOPs, rate estimate and kind code of one synaptic product.

    Values are device tensors (no host sync) except where the answer is known on the host
    (always-dense products, and CPU inputs proven dense), which come back as Python numbers.
    With ``rows``, ``parts`` also holds the SOPs per leading index of the operands (per-sample stats).
    ``known``: the first operand's ``(kind code, peak)`` when already computed (one-operand products).
    """
    a, b = syn.operand, syn.operand_b
    if a is None and b is None:
        return _Evaluated(syn.dense_macs, 0, 0.0, None)
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
          mask: torch.Tensor | None) -> tuple[_Part, ...]:
    """One side's per-sample SOPs (``total``: a tensor, or a thunk evaluated only when there are no rows)."""
    if not _applies(mask):
        return ()
    if per_row is not None:
        return (_Part(per_row, None, mask),)
    return (_Part(None, total if isinstance(total, torch.Tensor) else total(), mask),)


def _two_sided_parts(syn: Synapse, side_a: _Side, side_b: _Side) -> tuple[_Part, ...]:
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


def _one_sided(syn: Synapse, side: _Side, x: torch.Tensor) -> _Evaluated:
    code, total, sops = side.code, side.total, side.sops
    rate = syn.dense_macs * total / max(x.numel(), 1)
    known = host_code(code)
    if known is not None:  # CPU: an event kind (dense sides never get here), decided on the host
        return _Evaluated(0, sops, rate, known)
    is_ev = code != DENSE
    return _Evaluated(
        torch.where(is_ev, 0, syn.dense_macs), torch.where(is_ev, sops, 0.0), torch.where(is_ev, rate, 0.0), code
    )


def _two_sided(syn: Synapse, side_a: _Side, side_b: _Side, a: torch.Tensor, b: torch.Tensor) -> _Evaluated:
    is_a, is_b = side_a.code != DENSE, side_b.code != DENSE
    both = is_a & is_b
    pair = syn.pair(side_a.events, side_b.events) if syn.pair is not None else side_a.sops
    sops = torch.where(both, pair, torch.where(is_a, side_a.sops, torch.where(is_b, side_b.sops, 0.0)))
    rate_a = syn.dense_macs * side_a.total / max(a.numel(), 1)
    rate_b = syn.dense_macs * side_b.total / max(b.numel(), 1)
    rate_both = rate_a * side_b.total / max(b.numel(), 1)
    rate = torch.where(both, rate_both, torch.where(is_a, rate_a, torch.where(is_b, rate_b, 0.0)))
    macs = torch.where(is_a | is_b, 0, syn.dense_macs)
    return _Evaluated(macs, sops, rate, torch.where(is_a | ~is_b, side_a.code, side_b.code))


@dataclass
class LayerAccumulator:
    """Everything counted for one layer so far."""

    name: str
    type: str
    params: int = 0
    calls: int = 0
    dense_macs: int = 0
    flops: int = 0
    static_macs: int = 0
    neurons: int = 0
    neuron_updates: int = 0
    batch_rows: int = 0
    multi_step: bool = False
    max_steps: int = 0
    single_calls: int = 0
    weight_read_bytes: int = 0
    input_read_bytes: int = 0
    output_write_bytes: int = 0
    state_read_bytes: int = 0
    state_write_bytes: int = 0
    synaptic: bool = False
    step_updates: list[int] = field(default_factory=list)
    channel_count: int = 0
    host_kinds: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    channel_updates_each: int = 0
    geometry: dict[str, int] = field(default_factory=dict)
    host_sops: float = 0.0  # exact SOPs and rate estimate decided on the host (native CPU passes)
    host_sops_rate: float = 0.0
    dev: _Device | None = None

    def _device(self, like: torch.Tensor) -> _Device:
        if self.dev is None:
            self.dev = _Device.on(like.device)
        return self.dev

    def add_cost(self, cost: Cost, override: int | None, by_value: bool, fold: int | None,
                 samples: SampleCollector | None = None) -> None:
        """Account one call's :class:`Cost` (no host sync); ``samples`` also gets its per-sample counts."""
        self.calls += 1
        self.flops += cost.flops
        for i, syn in enumerate(cost.synapses):
            self._add_synapse(syn, override, by_value, record_kind=i == 0, samples=samples)
        if cost.neuron is not None:
            self._add_neuron(cost.neuron, fold, samples)
        self._add_geometry(cost.geometry)

    def _add_synapse(self, syn: Synapse, override: int | None, by_value: bool, record_kind: bool,
                     samples: SampleCollector | None) -> None:
        self.dense_macs += syn.dense_macs
        self.flops += 2 * syn.dense_macs
        known = None
        native_fanout = native_pass_of(syn.fanout)
        if native_fanout is not None and syn.operand is not None and syn.operand_b is None and override is None:
            got = native_fanout.native_pass(syn.operand, samples is not None)  # kind and, for spikes, SOPs
            if got is not None:
                if self._add_native(syn, syn.operand, got, record_kind, samples):
                    return
                known = (got.code, got.peak)
        ev = evaluate_synapse(syn, override, by_value, rows=samples is not None, known=known)
        if ev.code is None or (isinstance(ev.code, int) and ev.code == DENSE):  # always dense, or known dense
            self._add_dense(syn, ev.code, record_kind, samples)
            return
        self.synaptic = True
        dev = self._device(ev.sops if isinstance(ev.code, int) else ev.code)
        if not isinstance(ev.macs, int) or ev.macs:
            dev.macs += ev.macs
        dev.sops += ev.sops
        dev.sops_rate += ev.rate
        if record_kind and isinstance(ev.code, int):  # an event kind known on the host (CPU)
            self.host_kinds[ev.code] += 1
        elif record_kind:
            dev.kinds += torch.nn.functional.one_hot(ev.code, 4)
        if samples is not None:
            samples.add_macs(ev.macs)
            for part in ev.parts:
                samples.add_sops(self.name, part.per_row, part.total, part.mask)

    def _add_dense(self, syn: Synapse, code: Any, record_kind: bool, samples: SampleCollector | None) -> None:
        """An always-dense product (``code`` None) or one whose input is known dense on the host."""
        self.static_macs += syn.dense_macs
        if samples is not None:
            samples.add_macs(syn.dense_macs)
        if code is not None:
            self.synaptic = True
            if record_kind:
                self.host_kinds[code] += 1

    def _add_native(self, syn: Synapse, operand: torch.Tensor, got: native.NativeStats, record_kind: bool,
                    samples: SampleCollector | None) -> bool:
        """Account a one-operand product from its native pass over ``operand``.

        Spike and dense inputs are finished here, on the host (no tensor ops); False for counts and
        ternary inputs, which need their events formed (:func:`evaluate_synapse` with ``known``).
        """
        if got.code == DENSE:
            self._add_dense(syn, DENSE, record_kind, samples)
            return True
        if got.code != SPIKE:
            return False
        self.synaptic = True
        if record_kind:
            self.host_kinds[SPIKE] += 1
        self.host_sops += got.accumulates
        self.host_sops_rate += syn.dense_macs * got.events / max(operand.numel(), 1)
        if samples is not None:
            samples.add_sops(self.name, got.per_frame, torch.tensor(got.accumulates, dtype=torch.float64), None)
        return True

    def _add_neuron(self, act: NeuronActivity, fold: int | None, samples: SampleCollector | None) -> None:
        s = act.spikes
        dev = self._device(s)
        multi = act.time_dim == 0 and s.dim() >= 2
        steps = s.shape[0] if multi else 1
        batch = s.shape[act.batch_dim] if s.dim() > act.batch_dim else 1
        self.multi_step = self.multi_step or multi
        self.max_steps = max(self.max_steps, steps)
        self.batch_rows += batch
        self.neurons = max(self.neurons, s.numel() // max(steps * batch, 1))
        self.neuron_updates += s.numel()
        state = s.numel() * max(s.element_size(), 4)
        self.state_read_bytes += state
        self.state_write_bytes += state
        keep = native.rows_of(s.shape, 2 if multi else 1)  # (T, B, C) or (B, C)
        channels = keep[-1]
        start = 0 if multi else (self.single_calls % fold if fold else self.single_calls)
        dev.channel_spikes = _grow(dev.channel_spikes, channels, s)
        dev.step_spikes = _grow(dev.step_spikes, start + steps, s)
        per_index = self._add_spike_sums(s, keep, multi, start, want_index=samples is not None)
        if not multi:
            self.single_calls += 1
        self.step_updates.extend([0] * (start + steps - len(self.step_updates)))
        for t in range(start, start + steps):
            self.step_updates[t] += s.numel() // steps
        self.channel_count = max(self.channel_count, channels)
        self.channel_updates_each += s.numel() // channels
        if samples is not None and per_index is not None:
            samples.add_spikes(self.name, per_index, multi)

    def _add_spike_sums(self, s: torch.Tensor, keep: tuple[int, ...], multi: bool, start: int,
                        want_index: bool) -> torch.Tensor | None:
        """Add the spikes of ``s`` to the sums (total, per channel, per step from ``start``).

        One native pass straight into the CPU sums where it applies, else one indicator pass and
        reductions on the device. Returns the spikes per ``[T, B]`` / ``[B]`` index if ``want_index``.
        """
        dev = self.dev
        assert dev is not None and dev.channel_spikes is not None and dev.step_spikes is not None
        steps = keep[0] if multi else 1
        if dev.spikes.device.type == "cpu":  # sums are contiguous float64 by construction
            per_index = torch.empty(keep[:-1], dtype=torch.float64) if want_index else None
            if native.accumulate_spikes(s, (steps, math.prod(keep) // (steps * keep[-1]), keep[-1]), start,
                                        total=dev.spikes, per_channel=dev.channel_spikes, per_step=dev.step_spikes,
                                        per_index=per_index):
                return per_index
        grid = _channel_grid(_indicator(s), 2 if multi else 1)  # [T, B, C] or [B, C]: one pass over the spikes
        per_ch = grid.reshape(-1, keep[-1]).sum(0)
        dev.spikes += per_ch.sum()
        dev.step_spikes[start : start + steps] += grid.reshape(steps, -1).sum(1)
        dev.channel_spikes[: keep[-1]] += per_ch
        return grid.sum(-1) if want_index else None

    def _add_geometry(self, geometry: dict[str, int]) -> None:
        for key, value in geometry.items():
            if key == "frames":
                self.geometry[key] = self.geometry.get(key, 0) + value
            else:
                self.geometry[key] = max(self.geometry.get(key, 0), value)

    def add_traffic(self, weight: int, inputs: int, outputs: int) -> None:
        """Add memory traffic of one call (bytes)."""
        self.weight_read_bytes += weight
        self.input_read_bytes += inputs
        self.output_write_bytes += outputs


def _device_tensors(acc: LayerAccumulator) -> list[torch.Tensor]:
    dev = acc.dev
    if dev is None:
        return []
    parts = [dev.macs, dev.sops, dev.sops_rate, dev.spikes, dev.kinds]
    parts += [t for t in (dev.step_spikes, dev.channel_spikes) if t is not None]
    return [p.reshape(-1).to(device="cpu" if p.device.type == "cpu" else p.device, dtype=torch.float64) for p in parts]


def _host_values(accs: list[LayerAccumulator]) -> list[list[float]]:
    """Move every accumulator's device sums to the host in one transfer per device."""
    flat: list[torch.Tensor] = []
    sizes: list[list[int]] = []
    for acc in accs:
        parts = _device_tensors(acc)
        sizes.append([p.numel() for p in parts])
        flat.extend(parts)
    if not flat:
        return [[] for _ in accs]
    values = torch.cat([p.cpu() for p in flat]) if len({p.device for p in flat}) > 1 else torch.cat(flat).cpu()
    out, pos = [], 0
    data = values.tolist()
    for layer_sizes in sizes:
        n = sum(layer_sizes)
        out.append(data[pos : pos + n])
        pos += n
    return out


def _kind_label(kinds: list[int], synaptic: bool) -> str:
    if not synaptic:
        return "n/a"
    seen = [KIND_NAMES[i] for i, n in enumerate(kinds) if n]
    if len(seen) == 1:
        return seen[0]
    return "mixed:" + "+".join(seen) if seen else "n/a"


def _record(acc: LayerAccumulator, values: list[float], fold: int | None) -> LayerRecord:
    rec = LayerRecord(name=acc.name, type=acc.type, calls=acc.calls, params=acc.params,
                      dense_macs=acc.dense_macs, flops=acc.flops, macs=acc.static_macs,
                      neurons=acc.neurons, neuron_updates=acc.neuron_updates,
                      weight_read_bytes=acc.weight_read_bytes, input_read_bytes=acc.input_read_bytes,
                      output_write_bytes=acc.output_write_bytes, state_read_bytes=acc.state_read_bytes,
                      state_write_bytes=acc.state_write_bytes, geometry=dict(acc.geometry))
    if values:
        rec.macs += round(values[0])
        rec.sops = round(values[1])
        rec.sops_rate = float(values[2])
        rec.spikes = round(values[3])
        rest = [round(v) for v in values[8:]]
        if acc.neuron_updates:
            n_steps = len(acc.step_updates)
            rec.spikes_per_step, rec.updates_per_step = rest[:n_steps], list(acc.step_updates)
            rec.spikes_per_channel = rest[n_steps:]
            rec.updates_per_channel = [acc.channel_updates_each] * acc.channel_count
            if fold and not acc.multi_step:
                rec.spikes_per_step, rec.updates_per_step = _fold(rec.spikes_per_step, fold), _fold(
                    rec.updates_per_step, fold
                )
    rec.sops += round(acc.host_sops)
    rec.sops_rate += acc.host_sops_rate
    device_kinds = [round(v) for v in values[4:8]] if values else [0, 0, 0, 0]
    kinds = [h + d for h, d in zip(acc.host_kinds, device_kinds, strict=True)]
    rec.kind_calls = {KIND_NAMES[i]: n for i, n in enumerate(kinds) if n}
    rec.input_kind = _kind_label(kinds, acc.synaptic)
    if acc.neuron_updates:
        rec.firing_rate = rec.spikes / acc.neuron_updates
    return rec


def _fold(values: list[int], period: int) -> list[int]:
    out = [0] * min(period, len(values))
    for i, v in enumerate(values):
        out[i % period] += v
    return out


def finalize(accs: list[LayerAccumulator], fold: int | None) -> list[LayerRecord]:
    """Turn accumulators into :class:`LayerRecord` objects (the run's single host sync)."""
    values = _host_values(accs)
    return [_record(acc, vals, fold) for acc, vals in zip(accs, values, strict=False)]


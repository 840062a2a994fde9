"""Per-layer accumulators: Python ints for shape-derived counts, device tensors for activity.

Data-dependent quantities (input kinds, MACs vs SOPs, spikes) stay on the tensors' device as
running sums; :func:`finalize` moves all of them to the host in one transfer.

Two optional views ride along, each only where its situation arises: calls fed by average/sum-pooled
spikes keep what pool folding changes (:mod:`snnprof.counting.folding`; ``_FOLD_*`` sums), and
neuron calls inside :func:`snnprof.counting.slots.valid_slots` keep their valid updates and spikes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch

from snnprof.counting import native
from snnprof.counting.costs import Cost, NeuronActivity, Synapse, fanout_map_of, native_pass_of
from snnprof.counting.folding import Folded, PoolMap, evaluate_fold
from snnprof.counting.kinds import DENSE, KIND_NAMES, SPIKE
from snnprof.counting.results import LayerRecord, kind_label
from snnprof.counting.samples import SampleCollector
from snnprof.counting.synapses import Evaluated, Part, evaluate_synapse

__all__ = ["LayerAccumulator", "finalize"]

#: Layout of the pool-folding sums: folded calls, then what folding adds to MACs and to SOPs, then
#: the unfolded input kind of the folded calls (spike, count, ternary, dense).
_FOLD_CALLS, _FOLD_MACS, _FOLD_SOPS, _FOLD_KINDS = 0, 1, 2, 3
_FOLD_SIZE = 7


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
    fold: torch.Tensor | None = None  # [_FOLD_SIZE] float64, pool-folding sums decided on the device
    valid: torch.Tensor | None = None  # [valid updates, valid spikes] float64, once a validity mask was seen

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
    host_fold: list[float] = field(default_factory=lambda: [0.0] * _FOLD_SIZE)  # pool folding, decided on the host
    dev: _Device | None = None

    def _device(self, like: torch.Tensor) -> _Device:
        if self.dev is None:
            self.dev = _Device.on(like.device)
        return self.dev

    def add_cost(self, cost: Cost, override: int | None, by_value: bool, fold: int | None,
                 views: Views | None = None) -> None:
        """Account one call's :class:`Cost` (no host sync).

        ``views``: the per-sample collector (it gets the call's per-sample counts), pooled tensors
        (pool folding) and validity mask of the call, when there are any.
        """
        samples = views.samples if views is not None else None
        self.calls += 1
        self.flops += cost.flops
        for i, syn in enumerate(cost.synapses):
            added = self._add_synapse(syn, override, by_value, record_kind=i == 0, samples=samples)
            if views is not None and views.pools and override is None and syn.operand_b is None:
                self._add_fold(syn, added, views, record_kind=i == 0, samples=samples)
        if cost.neuron is not None:
            self._add_neuron(cost.neuron, fold, samples, views.valid if views is not None else None)
        self._add_geometry(cost.geometry)

    def _add_synapse(self, syn: Synapse, override: int | None, by_value: bool, record_kind: bool,
                     samples: SampleCollector | None) -> Evaluated:
        """Account one synaptic product; returns what it added (MACs, SOPs, kind, per-sample parts)."""
        self.dense_macs += syn.dense_macs
        self.flops += 2 * syn.dense_macs
        known = None
        native_fanout = native_pass_of(syn.fanout)
        if native_fanout is not None and syn.operand is not None and syn.operand_b is None and override is None:
            got = native_fanout.native_pass(syn.operand, samples is not None)  # kind and, for spikes, SOPs
            if got is not None:
                added = self._add_native(syn, syn.operand, got, record_kind, samples)
                if added is not None:
                    return added
                known = (got.code, got.peak)
        ev = evaluate_synapse(syn, override, by_value, rows=samples is not None, known=known)
        if ev.code is None or (isinstance(ev.code, int) and ev.code == DENSE):  # always dense, or known dense
            return self._add_dense(syn, ev.code, record_kind, samples)
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
        return ev

    def _add_dense(self, syn: Synapse, code: Any, record_kind: bool, samples: SampleCollector | None) -> Evaluated:
        """An always-dense product (``code`` None) or one whose input is known dense on the host."""
        self.static_macs += syn.dense_macs
        if samples is not None:
            samples.add_macs(syn.dense_macs)
        if code is not None:
            self.synaptic = True
            if record_kind:
                self.host_kinds[code] += 1
        return Evaluated(syn.dense_macs, 0, 0.0, code)

    def _add_native(self, syn: Synapse, operand: torch.Tensor, got: native.NativeStats, record_kind: bool,
                    samples: SampleCollector | None) -> Evaluated | None:
        """Account a one-operand product from its native pass over ``operand``.

        Spike and dense inputs are finished here, on the host (no tensor ops); ``None`` for counts and
        ternary inputs, which need their events formed (:func:`evaluate_synapse` with ``known``).
        """
        if got.code == DENSE:
            return self._add_dense(syn, DENSE, record_kind, samples)
        if got.code != SPIKE:
            return None
        self.synaptic = True
        if record_kind:
            self.host_kinds[SPIKE] += 1
        rate = syn.dense_macs * got.events / max(operand.numel(), 1)
        self.host_sops += got.accumulates
        self.host_sops_rate += rate
        part = Part(got.per_frame, torch.tensor(got.accumulates, dtype=torch.float64), None)
        if samples is not None:
            samples.add_sops(self.name, part.per_row, part.total, None)
        return Evaluated(0, got.accumulates, rate, SPIKE, (part,))

    def _add_fold(self, syn: Synapse, added: Evaluated, views: Views, record_kind: bool,
                  samples: SampleCollector | None) -> None:
        """Keep what pool folding changes for a call whose operand came out of an average/sum pool.

        Both views are kept (the sums hold *folded minus unfolded*); with ``views.fold_pooling`` the
        per-sample counts follow the folded view.
        """
        pooling = views.pools.find(syn.operand) if views.pools is not None else None
        mapped = fanout_map_of(syn.fanout)
        if pooling is None or mapped is None or syn.operand is None or added.code is None:
            return
        folded = evaluate_fold(pooling, mapped.fanout_map(tuple(syn.operand.shape)), syn.operand, samples is not None)
        if folded is None or folded.applies is False:
            return
        values = [1.0, -added.macs, folded.sops - added.sops, 0.0, 0.0, 0.0, 0.0]
        if record_kind:
            kind = added.code
            values[_FOLD_KINDS:] = ([float(kind == k) for k in range(4)] if isinstance(kind, int)
                                    else torch.nn.functional.one_hot(kind, 4).unbind())
        if all(isinstance(v, (int, float)) for v in values) and folded.applies is True:
            self.host_fold = [a + float(b) for a, b in zip(self.host_fold, values, strict=True)]
        else:
            self._add_device_fold(values, folded.applies)
        if samples is not None and views.fold_pooling:
            _fold_samples(samples, self.name, added, folded)

    def _add_device_fold(self, values: list[Any], applies: bool | torch.Tensor) -> None:
        like = next(v for v in [*values, applies] if isinstance(v, torch.Tensor))
        dev = self._device(like)
        vec = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=dev.macs.device) for v in values])
        vec = vec * torch.as_tensor(applies, device=dev.macs.device)
        dev.fold = vec if dev.fold is None else dev.fold + vec

    def _add_neuron(self, act: NeuronActivity, fold: int | None, samples: SampleCollector | None,
                    valid: torch.Tensor | None = None) -> None:
        s = act.spikes
        dev = self._device(s)
        multi = act.time_dim == 0 and s.dim() >= 2
        steps = s.shape[0] if multi else 1
        batch = s.shape[act.batch_dim] if s.dim() > act.batch_dim else 1
        self.multi_step = self.multi_step or multi
        self.max_steps = max(self.max_steps, steps)
        self.batch_rows += batch
        self.neurons = max(self.neurons, s.numel() // max(steps * batch, 1))
        updates_before = self.neuron_updates
        self.neuron_updates += s.numel()
        state = s.numel() * max(s.element_size(), 4)
        self.state_read_bytes += state
        self.state_write_bytes += state
        keep = native.rows_of(s.shape, 2 if multi else 1)  # (T, B, C) or (B, C)
        channels = keep[-1]
        start = 0 if multi else (self.single_calls % fold if fold else self.single_calls)
        dev.channel_spikes = _grow(dev.channel_spikes, channels, s)
        dev.step_spikes = _grow(dev.step_spikes, start + steps, s)
        if valid is not None and dev.valid is None:  # the first mask: earlier calls were all valid
            dev.valid = torch.stack([torch.tensor(float(updates_before), dtype=torch.float64, device=dev.spikes.device),
                                     dev.spikes.clone()])
        spikes_before = dev.spikes.clone() if dev.valid is not None and valid is None else None
        want = samples is not None or valid is not None
        per_index = self._add_spike_sums(s, keep, multi, start, want_index=want)
        if dev.valid is not None:
            self._add_valid(s, per_index, valid, spikes_before)
        if not multi:
            self.single_calls += 1
        self.step_updates.extend([0] * (start + steps - len(self.step_updates)))
        for t in range(start, start + steps):
            self.step_updates[t] += s.numel() // steps
        self.channel_count = max(self.channel_count, channels)
        self.channel_updates_each += s.numel() // channels
        if samples is not None and per_index is not None:
            samples.add_spikes(self.name, per_index, multi)

    def _add_valid(self, s: torch.Tensor, per_index: torch.Tensor | None, valid: torch.Tensor | None,
                   spikes_before: torch.Tensor | None) -> None:
        """Add one call's valid updates and spikes (all of them when the call had no mask).

        ``valid`` (bool) covers the leading dims of ``s`` (checked by the profiler); ``per_index`` holds
        the call's spikes per ``[T, B]`` / ``[B]`` index.
        """
        dev = self.dev
        assert dev is not None and dev.valid is not None
        if valid is None:
            assert spikes_before is not None
            dev.valid += torch.stack([torch.tensor(float(s.numel()), dtype=torch.float64, device=dev.spikes.device),
                                      dev.spikes - spikes_before])
            return
        assert per_index is not None  # asked for whenever a mask is given
        mask = valid.to(device=per_index.device, dtype=torch.float64)
        spikes = (per_index.reshape(*mask.shape, -1).sum(-1) * mask).sum()
        updates = mask.sum() * (s.numel() // max(mask.numel(), 1))
        dev.valid += torch.stack([updates.to(dev.valid.device), spikes.to(dev.valid.device)])

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


class Views(NamedTuple):
    """What a call is accounted against besides its cost (see :meth:`LayerAccumulator.add_cost`).

    Attributes:
        samples: the per-sample statistics collector, or ``None``.
        pools: the pooled tensors of the current model call, or ``None`` (no pool folding sums).
        fold_pooling: the folded view is the main one (per-sample counts follow it).
        valid: the validity mask of the enclosing :func:`~snnprof.counting.slots.valid_slots` block
            (bool, over the leading ``[T, B]`` / ``[B]`` dims of the neuron outputs), or ``None``.
    """

    samples: SampleCollector | None = None
    pools: PoolMap | None = None
    fold_pooling: bool = False
    valid: torch.Tensor | None = None


def _negated(part: Part, applies: bool | torch.Tensor) -> Part:
    """``-part``, applying only where ``applies``."""
    mask = part.mask
    if isinstance(applies, torch.Tensor):
        mask = applies if mask is None else mask & applies
    return Part(None if part.per_row is None else -part.per_row, None if part.total is None else -part.total, mask)


def _fold_samples(samples: SampleCollector, name: str, added: Evaluated, folded: Folded) -> None:
    """Per-sample counts of a folded call: take the unfolded ones back, add the folded SOPs."""
    applies = folded.applies
    mask = applies if isinstance(applies, torch.Tensor) else None
    macs = added.macs
    if isinstance(macs, torch.Tensor) or macs:
        samples.add_macs(-macs * applies if isinstance(applies, torch.Tensor) else -macs)
    for part in added.parts:
        neg = _negated(part, applies)
        samples.add_sops(name, neg.per_row, neg.total, neg.mask)
    total = folded.sops if isinstance(folded.sops, torch.Tensor) else torch.tensor(folded.sops, dtype=torch.float64)
    samples.add_sops(name, folded.per_row, total, mask)


def _device_tensors(acc: LayerAccumulator) -> list[torch.Tensor]:
    dev = acc.dev
    if dev is None:
        return []
    parts = [dev.macs, dev.sops, dev.sops_rate, dev.spikes, dev.kinds]
    parts += [t for t in (dev.step_spikes, dev.channel_spikes, dev.fold, dev.valid) if t is not None]
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


def _split_tail(acc: LayerAccumulator, values: list[float]) -> tuple[list[float], list[float], list[float]]:
    """``values`` without the trailing pool-folding and valid-slot sums, and those two (empty when absent)."""
    dev = acc.dev
    valid = values[len(values) - 2 :] if dev is not None and dev.valid is not None else []
    values = values[: len(values) - len(valid)]
    fold = values[len(values) - _FOLD_SIZE :] if dev is not None and dev.fold is not None else []
    return values[: len(values) - len(fold)], fold, valid


def _add_folding(rec: LayerRecord, acc: LayerAccumulator, fold: list[float], kinds: list[int],
                 fold_pooling: bool) -> list[int]:
    """Fill the two pool-folding views of ``rec``; the main fields follow ``fold_pooling``.

    Returns the per-kind call counts of the main view.
    """
    sums = [h + (fold[i] if fold else 0.0) for i, h in enumerate(acc.host_fold)]
    calls = round(sums[_FOLD_CALLS])
    if not calls:
        return kinds
    rec.folded_calls = calls
    rec.macs_unfolded, rec.sops_unfolded = rec.macs, rec.sops
    rec.macs_folded, rec.sops_folded = rec.macs + round(sums[_FOLD_MACS]), rec.sops + round(sums[_FOLD_SOPS])
    moved = [round(v) for v in sums[_FOLD_KINDS:]]
    rec.folded_kinds = {KIND_NAMES[i]: m for i, m in enumerate(moved) if m}
    if not fold_pooling:
        return kinds
    rec.macs, rec.sops = rec.macs_folded, rec.sops_folded
    kinds = [k - m for k, m in zip(kinds, moved, strict=True)]
    kinds[SPIKE] += sum(moved)
    return kinds


def _record(acc: LayerAccumulator, values: list[float], fold: int | None, fold_pooling: bool = False) -> LayerRecord:
    rec = LayerRecord(name=acc.name, type=acc.type, calls=acc.calls, params=acc.params,
                      dense_macs=acc.dense_macs, flops=acc.flops, macs=acc.static_macs,
                      neurons=acc.neurons, neuron_updates=acc.neuron_updates,
                      weight_read_bytes=acc.weight_read_bytes, input_read_bytes=acc.input_read_bytes,
                      output_write_bytes=acc.output_write_bytes, state_read_bytes=acc.state_read_bytes,
                      state_write_bytes=acc.state_write_bytes, geometry=dict(acc.geometry))
    values, fold_sums, valid = _split_tail(acc, values)
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
    kinds = _add_folding(rec, acc, fold_sums, kinds, fold_pooling)
    rec.kind_calls = {KIND_NAMES[i]: n for i, n in enumerate(kinds) if n}
    rec.input_kind = kind_label(rec.kind_calls, rec.folded_calls if fold_pooling else 0) if acc.synaptic else "n/a"
    if acc.neuron_updates:
        rec.firing_rate = rec.spikes / acc.neuron_updates
    if valid:
        rec.valid_updates, rec.valid_spikes = round(valid[0]), round(valid[1])
        rec.firing_rate_valid = rec.valid_spikes / rec.valid_updates if rec.valid_updates else None
    return rec


def _fold(values: list[int], period: int) -> list[int]:
    out = [0] * min(period, len(values))
    for i, v in enumerate(values):
        out[i % period] += v
    return out


def finalize(accs: list[LayerAccumulator], fold: int | None, fold_pooling: bool = False) -> list[LayerRecord]:
    """Turn accumulators into :class:`LayerRecord` objects (the run's single host sync).

    Args:
        accs: the accumulators.
        fold: time steps per sample of a single-step loop (per-step lists are folded onto them).
        fold_pooling: the main ``macs``/``sops``/kinds follow the pool-folding view.
    """
    values = _host_values(accs)
    return [_record(acc, vals, fold, fold_pooling) for acc, vals in zip(accs, values, strict=False)]


"""Per-sample counts on the device: a per-batch buffer folded into running moments by ``end_batch``.

Used by ``Profiler(sample_stats=True)``. During a batch every counted call adds its per-sample
contribution to a buffer (device tensors, no host sync); :meth:`SampleCollector.end_batch` maps
them to the batch's ``B`` samples, forms the ``[3, B]`` matrix of per-sample ``(macs, sops,
spikes)`` and folds it into running moments (mean, centred cross products, exact sums, min, max,
min/max of linear projections), all on the device. Memory is constant in the number of batches.

**Which sample a count belongs to.** A call reports its SOPs per *leading index* of its operand
(its frames: ``[T, B]`` for ``[T, B, C, H, W]``, ``[B]`` for ``[B, features]``, ``[B, L]`` for
tokens ``[B, L, C]``). These are mapped to the ``B`` samples of the batch, where the batch is
*multi-step* when one of its neuron calls had a ``[T, B, ...]`` layout:

* multi-step: dim 1 when it has size ``B`` (``[T, B, ...]``), else dim 0 when it has size ``B``
  (e.g. a head after the mean over T), else a dim 0 of size ``k * B`` is flattened ``[T * B]``,
  **T-major** (row ``r`` is sample ``r mod B``);
* single-step and ANN: dim 0 when it has size ``B`` (``[B, ...]``, ``[B, L, ...]``), else dim 1 when
  it has size ``B`` (``[L, B, E]`` sequence-first layouts), else a dim 0 of size ``k * B`` is
  flattened ``[B * k]``, **B-major** (row ``r`` is sample ``r // k``);
* anything else (no axis of size ``B``, 0-d operands, fanouts without per-row counts, broadcast
  operands shared by all samples) is **shared equally** among the batch's samples; the layer is
  listed in ``SampleStats.shared``.

Neuron spikes use the neuron's own batch dimension (dim 1 multi-step, dim 0 single-step). MACs of
a call are shape-derived and identical for every sample of the batch: each sample gets
``batch MACs / B``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from snnprof.counting.sample_stats import SAMPLE_FIELDS, SampleStats

__all__ = ["MACS", "SOPS", "SPIKES", "SampleCollector"]

logger = logging.getLogger(__name__)

MACS, SOPS, SPIKES = range(len(SAMPLE_FIELDS))
_MOMENT_KEYS = ("mean", "m2", "total", "min", "max", "proj_min", "proj_max")


@dataclass
class _Entry:
    """One call's per-leading-index contribution to a field (resolved at ``end_batch``)."""

    field: int
    layer: str
    values: torch.Tensor
    axis: int | None = None  # the exact sample axis, when the rule knows it (neurons)


def _sum_except(t: torch.Tensor, keep: int) -> torch.Tensor:
    dims = tuple(d for d in range(t.dim()) if d != keep)
    return t.sum(dim=dims) if dims else t


def _map_rows(t: torch.Tensor, batch: int, multi: bool) -> torch.Tensor | None:
    """Per-sample vector ``[batch]`` of a per-leading-index tensor (module docstring), or ``None``."""
    if t.dim() == 0:
        return None
    d0 = t.shape[0]
    d1 = t.shape[1] if t.dim() >= 2 else None
    order = ((1, d1), (0, d0)) if multi else ((0, d0), (1, d1))
    for axis, size in order:
        if size == batch:
            return _sum_except(t, axis)
    if d0 % batch:
        return None
    rows = _sum_except(t, 0)
    return rows.reshape(d0 // batch, batch).sum(0) if multi else rows.reshape(batch, d0 // batch).sum(1)


class SampleCollector:
    """Per-batch buffer and running moments of per-sample ``(macs, sops, spikes)``.

    Args:
        projections: ``{name: (w_macs, w_sops, w_spikes)}`` linear functionals whose per-sample
            minimum and maximum are tracked as well (e.g. a per-event profile's pJ per MAC, SOP, spike).
    """

    def __init__(self, projections: Mapping[str, Sequence[float]] | None = None) -> None:
        self.names = list(projections or {})
        self.weights = [[float(v) for v in w] for w in (projections or {}).values()]
        bad = [n for n, w in zip(self.names, self.weights, strict=True) if len(w) != len(SAMPLE_FIELDS)]
        if bad:
            raise ValueError(f"sample projections need {len(SAMPLE_FIELDS)} weights {SAMPLE_FIELDS}: {bad}")
        self.n = 0
        self.shared: dict[str, None] = {}
        self._moments: dict[str, torch.Tensor] | None = None
        self._clear()

    def _clear(self) -> None:
        self._entries: list[_Entry] = []
        self._macs_host = 0
        self._macs_dev: torch.Tensor | None = None
        self._multi = False
        self._neuron_batch: int | None = None
        self._root_batch: int | None = None

    # ----------------------------------------------------------------- during a batch
    @property
    def pending(self) -> bool:
        """True when calls were counted since the last :meth:`end_batch`."""
        return bool(self._entries) or self._macs_host != 0 or self._macs_dev is not None

    def hint_batch(self, batch: int, exact: bool) -> None:
        """Record a batch size seen in this batch (``exact``: a neuron's batch dim, else the model input's dim 0)."""
        if exact and self._neuron_batch is None:
            self._neuron_batch = batch
        elif not exact and self._root_batch is None:
            self._root_batch = batch

    def add_macs(self, macs: int | torch.Tensor) -> None:
        """MACs of one call (a host int, or a device scalar decided on the device)."""
        if isinstance(macs, torch.Tensor):
            self._macs_dev = macs.to(torch.float64) if self._macs_dev is None else self._macs_dev + macs
        else:
            self._macs_host += int(macs)

    def add_sops(self, layer: str, rows: torch.Tensor | None, total: torch.Tensor | None,
                 mask: torch.Tensor | None) -> None:
        """SOPs of one operand side: per leading index (``rows``) or only their ``total`` (shared).

        Args:
            layer: the layer's name (listed in ``shared`` when its SOPs cannot be mapped).
            rows: accumulates per leading index, or ``None`` when the fanout gives none.
            total: the side's total accumulates (0-d); needed only without ``rows``.
            mask: device bool scalar, whether this side applies (its input kind), or ``None``.
        """
        if rows is not None:
            values = rows
        elif total is not None:
            values = total.reshape(())
        else:
            raise ValueError(f"{layer}: SOPs need per-row values or a total")
        if mask is not None:
            values = torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))
        self._entries.append(_Entry(SOPS, layer, values))

    def add_spikes(self, layer: str, per_index: torch.Tensor, multi: bool) -> None:
        """Spikes of one neuron call per ``[T, B]`` (multi-step) or ``[B]`` index."""
        self._multi = self._multi or multi
        axis = 1 if multi else 0
        if per_index.dim() > axis:
            self.hint_batch(per_index.shape[axis], exact=True)
        self._entries.append(_Entry(SPIKES, layer, per_index, axis))

    # ----------------------------------------------------------------- batch end
    def end_batch(self, batch_size: int | None = None) -> None:
        """Map this batch's contributions to its samples and fold them into the running moments.

        Args:
            batch_size: samples in the batch; inferred from the neurons' batch dim (else the model
                input's dim 0) when omitted.

        Raises:
            ValueError: the batch size cannot be inferred.
        """
        if not self.pending and batch_size is None:
            return
        batch = batch_size or self._neuron_batch or self._root_batch
        if batch is None or batch < 1:
            raise ValueError("end_batch: cannot infer the batch size; pass end_batch(batch_size)")
        device = self._device()
        x = torch.zeros(len(SAMPLE_FIELDS), batch, dtype=torch.float64, device=device)
        for entry in self._entries:
            x[entry.field] += self._resolve(entry, batch).to(device=device, dtype=torch.float64)
        macs = self._macs_dev.to(device) + self._macs_host if self._macs_dev is not None else self._macs_host
        x[MACS] += macs / batch
        self._fold(x)
        self._clear()

    def _device(self) -> torch.device:
        if self._moments is not None:
            return self._moments["mean"].device
        for entry in self._entries:
            return entry.values.device
        return self._macs_dev.device if self._macs_dev is not None else torch.device("cpu")

    def _resolve(self, entry: _Entry, batch: int) -> torch.Tensor:
        values = entry.values
        if entry.axis is not None and values.dim() > entry.axis and values.shape[entry.axis] == batch:
            return _sum_except(values, entry.axis)
        mapped = _map_rows(values, batch, self._multi)
        if mapped is not None:
            return mapped
        if entry.layer not in self.shared:
            logger.debug("per-sample counts of %s shared equally (shape %s, batch %d)", entry.layer,
                         tuple(values.shape), batch)
        self.shared[entry.layer] = None
        return (values.sum() / batch).expand(batch)

    def _init_moments(self, device: torch.device) -> dict[str, torch.Tensor]:
        k, p = len(SAMPLE_FIELDS), len(self.names)

        def full(shape: tuple[int, ...], value: float) -> torch.Tensor:
            return torch.full(shape, value, dtype=torch.float64, device=device)

        return {"mean": full((k,), 0.0), "m2": full((k, k), 0.0), "total": full((k,), 0.0),
                "min": full((k,), float("inf")), "max": full((k,), float("-inf")),
                "proj_min": full((p,), float("inf")), "proj_max": full((p,), float("-inf")),
                "weights": torch.tensor(self.weights, dtype=torch.float64, device=device).reshape(p, k)}

    def _fold(self, x: torch.Tensor) -> None:
        """Chan et al.'s update of the running moments with the batch ``x [fields, B]`` (device ops only)."""
        m = self._moments = self._moments if self._moments is not None else self._init_moments(x.device)
        nb = x.shape[1]
        n = self.n + nb
        mean_b = x.mean(1)
        centred = x - mean_b[:, None]
        delta = mean_b - m["mean"]
        m["m2"] = m["m2"] + centred @ centred.T + torch.outer(delta, delta) * (self.n * nb / n)
        m["mean"] = m["mean"] + delta * (nb / n)
        m["total"] = m["total"] + x.sum(1)
        m["min"] = torch.minimum(m["min"], x.amin(1))
        m["max"] = torch.maximum(m["max"], x.amax(1))
        if self.names:
            proj = m["weights"] @ x
            m["proj_min"] = torch.minimum(m["proj_min"], proj.amin(1))
            m["proj_max"] = torch.maximum(m["proj_max"], proj.amax(1))
        self.n = n

    # ----------------------------------------------------------------- results and state
    def result(self) -> SampleStats:
        """The running moments as host data (one transfer)."""
        stats = SampleStats(n=self.n, shared=list(self.shared))
        if self._moments is None:
            return stats
        host = {k: v.cpu().tolist() for k, v in self._moments.items()}
        stats.total, stats.mean, stats.m2 = host["total"], host["mean"], host["m2"]
        stats.min, stats.max = host["min"], host["max"]
        stats.projections = {
            name: {"weights": list(w), "min": lo, "max": hi}
            for name, w, lo, hi in zip(self.names, self.weights, host["proj_min"], host["proj_max"], strict=True)
        }
        return stats

    def state_dict(self) -> dict[str, Any]:
        """Plain state (tensors on the CPU, ints, strings, lists); the batch buffer must be empty."""
        if self.pending:
            raise RuntimeError("sample statistics have an unfinished batch: call end_batch() before saving")
        moments = {k: v.detach().cpu() for k, v in self._moments.items()} if self._moments is not None else {}
        return {"n": self.n, "names": list(self.names), "weights": [list(w) for w in self.weights],
                "shared": list(self.shared), "moments": moments}

    def load_state_dict(self, state: Mapping[str, Any], device: torch.device | str | None = None) -> None:
        """Restore :meth:`state_dict` output (moments moved to ``device``, default CPU).

        Raises:
            ValueError: the state tracks other projections.
        """
        if list(state["names"]) != self.names or [list(w) for w in state["weights"]] != self.weights:
            raise ValueError(f"saved sample projections {list(state['names'])} differ from {self.names}")
        self._clear()
        self.n = int(state["n"])
        self.shared = dict.fromkeys(state["shared"])
        moments = state["moments"]
        self._moments = {k: moments[k].to(device or "cpu") for k in (*_MOMENT_KEYS, "weights")} if moments else None

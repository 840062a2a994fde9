"""Event-driven synaptic layers: accumulate only the weights of active inputs, against dense linear/conv.

A dense layer multiplies every input by its weights whatever the input is. An event-driven layer
visits only the nonzero inputs (spikes) and adds their weight column to the outputs they connect to:
its work is the layer's synaptic operations (SOPs, as counted by :mod:`snnprof.counting`), so it
wins below some firing rate. Which rate depends on the hardware; :mod:`snnprof.kernels.bench` measures
it. The layers keep their weights input-major (prepared once, as an event-driven accelerator would
store them) and give the dense result up to float rounding.

Methods:
* ``dense``: :func:`torch.nn.functional.linear` / :func:`~torch.nn.functional.conv2d` (MKL / oneDNN).
* ``csr`` (linear): the spikes as a CSR matrix times the input-major weight (:func:`torch.sparse.mm`):
  per active input, its weight row is accumulated into its sample's outputs.
* ``gather`` (linear): the same in plain PyTorch ops: ``nonzero``, ``index_select`` of the active
  inputs' weight rows, ``index_add_`` into their samples' outputs (in chunks of 4 MiB).
* ``unfold_csr`` (conv): ``unfold`` (im2col) the spikes densely, then ``csr`` on the patch matrix.
* ``events_csr`` (conv): the sparse patch matrix is built directly from the input events (each spike
  lands in up to kh*kw patches; stride and zero padding respected), then ``csr``; nothing dense is
  unfolded.

Graded inputs (counts) are weighted by their value.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from snnprof.kernels.timing import Timing, error_text, rel_error, time_interleaved

__all__ = [
    "CONV_METHODS",
    "FULL_LAYERS",
    "LINEAR_METHODS",
    "QUICK_LAYERS",
    "SKIP_FACTOR",
    "ConvSynapse",
    "Crossover",
    "LinearSynapse",
    "SynapseLayer",
    "SynapseRow",
    "bench_synapse_layer",
    "crossovers",
    "make_synapse_layer",
    "random_spikes",
]

LINEAR_METHODS: tuple[str, ...] = ("dense", "csr", "gather")
CONV_METHODS: tuple[str, ...] = ("dense", "unfold_csr", "events_csr")

_CHUNK_BYTES = 4 << 20  # bound on the gathered [events, out] temporary of the ``gather`` method


def random_spikes(
    shape: tuple[int, ...], rate: float, seed: int = 0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Bernoulli spikes in {0, 1} with probability ``rate`` (deterministic for a seed)."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < rate).to(dtype)


def _csr_matmul(x2d: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
    """``x2d @ weight_t`` with ``x2d`` converted to CSR: one weight-row accumulate per nonzero."""
    return torch.sparse.mm(x2d.to_sparse_csr(), weight_t)


def _gather_matmul(x2d: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
    """``x2d @ weight_t`` by gathering the active inputs' weight rows and adding them per sample."""
    rows, cols = x2d.nonzero(as_tuple=True)
    vals = x2d[rows, cols]
    graded = bool((vals != 1).any())
    out = x2d.new_zeros(x2d.shape[0], weight_t.shape[1])
    chunk = max(1, _CHUNK_BYTES // (weight_t.shape[1] * weight_t.element_size()))
    for lo in range(0, rows.numel(), chunk):
        gathered = weight_t.index_select(0, cols[lo : lo + chunk])
        if graded:
            gathered = gathered * vals[lo : lo + chunk, None]
        out.index_add_(0, rows[lo : lo + chunk], gathered)
    return out


class LinearSynapse:
    """A linear layer ``y = x W^T + b`` with its weight also stored input-major for event-driven use.

    Args:
        weight: ``[out, in]``.
        bias: ``[out]`` or ``None``.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        self.weight, self.bias = weight, bias
        self.weight_t = weight.t().contiguous()  # [in, out]: one contiguous row per input

    def __call__(self, x: torch.Tensor, method: str = "csr") -> torch.Tensor:
        """Apply the layer to ``x`` (``[..., in]``) with ``method`` (one of :data:`LINEAR_METHODS`)."""
        if method == "dense":
            return F.linear(x, self.weight, self.bias)
        x2d = x.reshape(-1, x.shape[-1])
        if method == "csr":
            out = _csr_matmul(x2d, self.weight_t)
        elif method == "gather":
            out = _gather_matmul(x2d, self.weight_t)
        else:
            raise ValueError(f"unknown linear method {method!r}; expected one of {LINEAR_METHODS}")
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.weight.shape[0])


def _out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis (dilation 1)."""
    return (size + 2 * padding - kernel) // stride + 1


class ConvSynapse:
    """A 2-D convolution (dilation 1, groups 1) with its weight also stored as an input-major patch matrix.

    Args:
        weight: ``[out, C, kh, kw]``.
        bias: ``[out]`` or ``None``.
        stride: stride in both axes.
        padding: zero padding in both axes.
    """

    def __init__(
        self, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0
    ) -> None:
        self.weight, self.bias, self.stride, self.padding = weight, bias, stride, padding
        self.weight_t = weight.reshape(weight.shape[0], -1).t().contiguous()  # [C*kh*kw, out], unfold's order

    def __call__(self, x: torch.Tensor, method: str = "events_csr") -> torch.Tensor:
        """Apply the convolution to ``x`` (``[B, C, H, W]``) with ``method`` (one of :data:`CONV_METHODS`)."""
        if method == "dense":
            return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)
        b, _, h, w = x.shape
        out_c, _, kh, kw = self.weight.shape
        ho, wo = _out_size(h, kh, self.stride, self.padding), _out_size(w, kw, self.stride, self.padding)
        if method == "unfold_csr":
            cols = F.unfold(x, (kh, kw), padding=self.padding, stride=self.stride)  # [B, C*kh*kw, L]
            patches = cols.transpose(1, 2).reshape(b * ho * wo, -1).to_sparse_csr()
        elif method == "events_csr":
            patches = self._event_patches(x, ho, wo)
        else:
            raise ValueError(f"unknown conv method {method!r}; expected one of {CONV_METHODS}")
        out = torch.sparse.mm(patches, self.weight_t).reshape(b, ho, wo, out_c).permute(0, 3, 1, 2).contiguous()
        return out if self.bias is None else out + self.bias.reshape(1, -1, 1, 1)

    def _event_patches(self, x: torch.Tensor, ho: int, wo: int) -> torch.Tensor:
        """The sparse ``[B*ho*wo, C*kh*kw]`` patch matrix built from the input's nonzeros (CSR)."""
        _, _, kh, kw = self.weight.shape
        ev = x.nonzero()  # [E, 4]: batch, channel, y, x
        vals = x[ev[:, 0], ev[:, 1], ev[:, 2], ev[:, 3]]
        rows, cols, data = [], [], []
        for dy in range(kh):
            for dx in range(kw):
                oy, ox = ev[:, 2] + self.padding - dy, ev[:, 3] + self.padding - dx
                ok = (oy >= 0) & (ox >= 0)
                if self.stride > 1:
                    ok &= (oy % self.stride == 0) & (ox % self.stride == 0)
                    oy, ox = oy.div(self.stride, rounding_mode="floor"), ox.div(self.stride, rounding_mode="floor")
                ok &= (oy < ho) & (ox < wo)
                sel = ok.nonzero(as_tuple=True)[0]
                rows.append((ev[sel, 0] * ho + oy[sel]) * wo + ox[sel])
                cols.append((ev[sel, 1] * kh + dy) * kw + dx)
                data.append(vals[sel])
        shape = (x.shape[0] * ho * wo, self.weight_t.shape[0])
        coo = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(data), shape)
        return coo.coalesce().to_sparse_csr()


# --------------------------------------------------------------------------- benchmark: dense vs event-driven

OUT_RTOL = 1e-4  # outputs: max |diff| / max(1, max |dense|)
SKIP_FACTOR = 20.0  # a method this many times slower than dense is not run at higher rates
Progress = Callable[[str], None]


@dataclass(frozen=True)
class SynapseLayer:
    """A synaptic layer benchmarked at several firing rates.

    Attributes:
        name: ``"linear"`` or ``"conv"``.
        batch: samples per call (e.g. T x batch of a multi-step network).
        in_features: linear inputs, or conv input channels.
        out_features: linear outputs, or conv output channels.
        size: conv input height = width (unused for linear).
        kernel: conv kernel size (padding ``kernel // 2``, stride 1).
    """

    name: str
    batch: int
    in_features: int
    out_features: int
    size: int = 0
    kernel: int = 3

    def describe(self) -> str:
        """Shape summary, e.g. ``linear 2048->2048, batch 256``."""
        if self.name == "linear":
            return f"linear {self.in_features}->{self.out_features}, batch {self.batch}"
        k = self.kernel
        return f"conv {k}x{k} {self.in_features}->{self.out_features} ch, {self.size}x{self.size}, batch {self.batch}"


FULL_LAYERS = (SynapseLayer("linear", 256, 2048, 2048), SynapseLayer("conv", 16, 64, 64, size=32))
QUICK_LAYERS = (SynapseLayer("linear", 32, 256, 256), SynapseLayer("conv", 2, 8, 8, size=16))


@dataclass(frozen=True)
class SynapseRow:
    """One method of one synaptic layer at one firing rate.

    Attributes:
        layer: ``linear`` or ``conv``.
        shape: the layer's shape summary.
        method: ``dense`` or an event-driven method.
        rate: input firing rate (fraction of nonzero inputs asked for).
        events: nonzero inputs actually drawn.
        status: ``ok``, ``FAILED`` or ``unavailable``.
        reason: why not ``ok``.
        timing: wall time per call.
        speedup_vs_dense: dense median / this median.
    """

    layer: str
    shape: str
    method: str
    rate: float
    events: int
    status: str
    reason: str = ""
    timing: Timing | None = None
    speedup_vs_dense: float | None = None


@dataclass(frozen=True)
class Crossover:
    """Firing rate below which an event-driven method beats dense.

    Attributes:
        layer: ``linear`` or ``conv``.
        method: the event-driven method.
        rate: interpolated crossover rate (fraction), ``None`` if it never or always wins in range.
        note: how it was found, in words.
    """

    layer: str
    method: str
    rate: float | None
    note: str


_LayerFn = Callable[[torch.Tensor, str], torch.Tensor]


def make_synapse_layer(
    layer: SynapseLayer, device: str = "cpu", seed: int = 0
) -> tuple[_LayerFn, tuple[str, ...], tuple[int, ...]]:
    """(layer callable, its methods, input shape) with weights uniform in +-1/sqrt(fan_in)."""
    gen = torch.Generator().manual_seed(seed)
    if layer.name == "linear":
        bound = 1 / math.sqrt(layer.in_features)
        weight = (torch.rand(layer.out_features, layer.in_features, generator=gen) * 2 - 1) * bound
        return LinearSynapse(weight.to(device)), LINEAR_METHODS, (layer.batch, layer.in_features)
    k = layer.kernel
    bound = 1 / math.sqrt(layer.in_features * k * k)
    weight = (torch.rand(layer.out_features, layer.in_features, k, k, generator=gen) * 2 - 1) * bound
    conv = ConvSynapse(weight.to(device), padding=k // 2)
    return conv, CONV_METHODS, (layer.batch, layer.in_features, layer.size, layer.size)


def _check_methods(
    fn: _LayerFn, x: torch.Tensor, methods: Sequence[str], skip: dict[str, str]
) -> tuple[dict[str, Callable[[], torch.Tensor]], dict[str, tuple[str, str]]]:
    """Run every method once against dense: (calls to time, method -> (status, reason) for the others)."""
    dense = fn(x, "dense")
    calls: dict[str, Callable[[], torch.Tensor]] = {}
    problems = {m: ("skipped", reason) for m, reason in skip.items()}
    for method in (m for m in methods if m not in skip):
        try:
            err = rel_error(dense, fn(x, method), 1.0)
        except Exception as exc:  # noqa: BLE001 - reported as unavailable
            problems[method] = ("unavailable", error_text(exc))
            continue
        if err > OUT_RTOL:
            problems[method] = ("FAILED", f"output error {err:.2e} > {OUT_RTOL:g}")
        else:
            calls[method] = functools.partial(fn, x, method)
    return calls, problems


def bench_synapse_layer(
    layer: SynapseLayer,
    rates: Sequence[float],
    *,
    device: str = "cpu",
    rounds: int = 10,
    warmup: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[SynapseRow]:
    """Dense vs event-driven methods of one layer at every firing rate (outputs checked, then timed).

    Rates run in increasing order; a method more than :data:`SKIP_FACTOR` times slower than dense at
    one rate is not run at higher rates (it only gets slower) and is reported as ``skipped``.
    """
    fn, methods, shape = make_synapse_layer(layer, device, seed)
    rows: list[SynapseRow] = []
    skip: dict[str, str] = {}
    for rate in sorted(rates):
        if progress is not None:
            progress(f"synapse {layer.name} rate {rate:.2%}")
        x = random_spikes(shape, rate, seed).to(device)
        with torch.no_grad():
            calls, problems = _check_methods(fn, x, methods, skip)
            timings = time_interleaved(calls, rounds, warmup, device)
        base = timings["dense"].median_s if "dense" in timings else None
        for method in methods:
            common = {"layer": layer.name, "shape": layer.describe(), "method": method, "rate": rate,
                      "events": int(x.count_nonzero())}  # fmt: skip
            if method in problems:
                status, reason = problems[method]
                rows.append(SynapseRow(**common, status=status, reason=reason))
                continue
            speedup = None if base is None else base / timings[method].median_s
            rows.append(SynapseRow(**common, status="ok", timing=timings[method], speedup_vs_dense=speedup))
            if speedup is not None and speedup < 1 / SKIP_FACTOR:
                skip[method] = f"over {SKIP_FACTOR:g}x slower than dense already at {rate:.1%}"
    return rows


def _interpolate(r0: float, q0: float, r1: float, q1: float) -> float:
    """Rate where log(time ratio) crosses 0 between two points, interpolated in log-log."""
    l0, l1 = math.log(q0), math.log(q1)
    frac = (0 - l0) / (l1 - l0) if l1 != l0 else 0.0
    return math.exp(math.log(r0) + frac * (math.log(r1) - math.log(r0)))


def crossovers(rows: Sequence[SynapseRow]) -> list[Crossover]:
    """For each layer and event-driven method, the firing rate below which it beats dense."""
    out = []
    keys = dict.fromkeys((r.layer, r.method) for r in rows if r.method != "dense")
    for layer, method in keys:
        mine = [r for r in rows if r.layer == layer and r.method == method and r.status == "ok"]
        pts = sorted((r.rate, 1 / r.speedup_vs_dense) for r in mine if r.speedup_vs_dense)
        if not pts:
            out.append(Crossover(layer, method, None, "no successful measurement"))
            continue
        wins = [ratio < 1 for _, ratio in pts]
        if all(wins):
            out.append(Crossover(layer, method, None, f"faster than dense at every rate up to {pts[-1][0]:.1%}"))
        elif not wins[0]:
            out.append(Crossover(layer, method, None, f"slower than dense at every rate down to {pts[0][0]:.1%}"))
        else:
            i = wins.index(False)
            rate = _interpolate(pts[i - 1][0], pts[i - 1][1], pts[i][0], pts[i][1])
            note = f"faster below ~{rate:.2%} (between {pts[i - 1][0]:.1%} and {pts[i][0]:.1%})"
            if any(wins[i:]):
                note += "; not monotonic: faster again at some higher rate"
            out.append(Crossover(layer, method, rate, note))
    return out

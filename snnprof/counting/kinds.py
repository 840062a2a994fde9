"""Input-kind detection, on the tensor's device and without a host sync.

Kinds (codes are device int64 scalars so the engine never waits for the device):

=========  ====  ==========================================================================
kind       code  values
=========  ====  ==========================================================================
spike      0     ``{0, c}`` with ``c > 0`` and at least one zero (scaled spikes such as OTTT's
                 x2.74 included), ``bool`` tensors, and all-zero tensors (silent spikes)
count      1     non-negative integers otherwise (graded spikes, event counts, SEW sums;
                 an all-ones tensor is a count of one per element)
ternary    2     ``{-1, 0, 1}`` with at least one ``-1``
dense      3     anything else (real values, constants such as 0.5 everywhere)
=========  ====  ==========================================================================

These are the definitions. On CPU the engine decides the same kinds in one pass with the native
kernels of :mod:`snnprof.counting.native` (Torch passes remain its fallback).
"""

from __future__ import annotations

import torch

__all__ = ["KIND_CODES", "KIND_NAMES", "classify", "detect_kind", "events", "host_code", "sample_proves_dense"]

KIND_NAMES: tuple[str, ...] = ("spike", "count", "ternary", "dense")
KIND_CODES: dict[str, int] = {name: code for code, name in enumerate(KIND_NAMES)}
SPIKE, COUNT, TERNARY, DENSE = range(4)


def _as_float(x: torch.Tensor) -> torch.Tensor:
    """float32/float64 view of ``x``: half types are promoted so ``x * (max - x)`` cannot underflow."""
    return x if x.dtype in (torch.float32, torch.float64) else x.to(torch.float32)


def detect_kind(x: torch.Tensor) -> torch.Tensor:
    """Kind code of ``x`` (see :func:`classify`)."""
    return classify(x)[0]


def classify(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Classify ``x`` as spike/count/ternary/dense (see module docstring).

    Uses only float passes and reductions (bool kernels are slow on CPU). Exactness: the spread
    ``sum(x * (max - x))`` and ``sum(x mod 1)`` are sums of non-negative terms, so they are zero iff
    every term is zero; NaN and inf make them non-zero (dense).

    Args:
        x: any tensor.

    Returns:
        ``(code, peak)``: 0-d tensors on ``x.device``, the int64 kind code and ``max(x)``.
    """
    device = x.device
    one = torch.ones((), device=device)
    if x.dtype == torch.bool or x.numel() == 0:
        return torch.tensor(SPIKE, device=device), one
    if x.is_complex():
        return torch.tensor(DENSE, device=device), one
    xf = _as_float(x).reshape(-1)
    lo, hi = torch.aminmax(xf)
    spike = (lo == 0) & (torch.dot(xf, hi - xf) == 0)
    if xf.device.type == "cpu" and bool(spike):  # free to read on CPU: skip the integrality pass
        return torch.tensor(SPIKE), hi
    integral = torch.remainder(xf, 1).sum() == 0
    count = (lo >= 0) & integral
    ternary = (lo >= -1) & (hi <= 1) & integral
    code = torch.where(spike, SPIKE, torch.where(count, COUNT, torch.where(ternary, TERNARY, DENSE)))
    return code.to(torch.int64), hi


def events(x: torch.Tensor, code: torch.Tensor, by_value: bool, peak: torch.Tensor | None = None) -> torch.Tensor:
    """Event tensor of ``x`` as float: 1 per nonzero, or the value itself for graded ``count`` inputs.

    Spikes ``{0, c}`` become ``x / c`` (exactly 0/1), ternary values ``|x|``, counts ``x`` (or 1 per
    nonzero when ``by_value`` is false). The result is meaningless for ``dense`` inputs, whose SOPs
    the engine discards.

    Args:
        x: the synaptic input.
        code: its kind code (0-d tensor).
        by_value: weigh ``count`` inputs by their value (a graded spike of n counts n).
        peak: ``max(x)`` if already known (saves a pass).
    """
    if x.dtype == torch.bool:
        return x.to(torch.float32)
    xf = _as_float(x)
    if xf.dtype not in (torch.float32, torch.float64):
        xf = xf.to(torch.float32)
    if peak is None:
        peak = xf.amax() if xf.numel() else xf.new_ones(())
    peak = peak.to(xf.dtype)
    scale = torch.where((code == SPIKE) & (peak > 0), peak, torch.ones_like(peak))
    magnitude = xf.abs().div_(scale)
    if by_value:
        return magnitude
    return torch.where(code == COUNT, magnitude.sign(), magnitude)


_SAMPLE = 2048


def sample_proves_dense(x: torch.Tensor) -> bool:
    """CPU fast path: True when a small sample of ``x`` already proves the kind is ``dense``.

    A non-integer value together with two different nonzero values rules out spike, count and
    ternary, so the full passes can be skipped. Reading the sample is free on CPU (ops are
    synchronous); on other devices this returns False so the engine stays free of host syncs.
    """
    if x.device.type != "cpu" or not x.is_floating_point() or not x.is_contiguous() or x.numel() < 2:
        return False
    sample = x.view(-1)[:_SAMPLE]
    if not bool(torch.ne(sample, torch.round(sample)).any()):
        return False
    nonzero = sample[sample != 0]
    return bool(nonzero.numel() >= 2 and torch.ne(nonzero, nonzero[0]).any())


def host_code(code: torch.Tensor) -> int | None:
    """The kind code as a Python int when reading it costs nothing (CPU tensors), else ``None``."""
    return int(code) if code.device.type == "cpu" else None

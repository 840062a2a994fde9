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
"""

from __future__ import annotations

import torch

__all__ = ["KIND_CODES", "KIND_NAMES", "detect_kind", "events"]

KIND_NAMES: tuple[str, ...] = ("spike", "count", "ternary", "dense")
KIND_CODES: dict[str, int] = {name: code for code, name in enumerate(KIND_NAMES)}
SPIKE, COUNT, TERNARY, DENSE = range(4)


def detect_kind(x: torch.Tensor) -> torch.Tensor:
    """Classify ``x`` as spike/count/ternary/dense (see module docstring).

    Args:
        x: any tensor.

    Returns:
        A 0-d int64 tensor on ``x.device`` holding the kind code.
    """
    device = x.device
    if x.dtype == torch.bool or x.numel() == 0:
        return torch.tensor(SPIKE, device=device)
    if x.is_complex():
        return torch.tensor(DENSE, device=device)
    lo, hi = torch.aminmax(x)
    if x.is_floating_point():
        integral = torch.eq(x, torch.round(x)).all()
    else:
        integral = torch.ones((), dtype=torch.bool, device=device)
    two_valued = torch.logical_or(x == 0, x == hi).all()
    spike = two_valued & (lo == 0)
    count = (lo >= 0) & integral
    ternary = (lo >= -1) & (hi <= 1) & integral
    code = torch.where(spike, SPIKE, torch.where(count, COUNT, torch.where(ternary, TERNARY, DENSE)))
    return code.to(torch.int64)


def events(x: torch.Tensor, code: torch.Tensor, by_value: bool) -> torch.Tensor:
    """Event tensor of ``x`` as float32: 1 per nonzero, or the value itself for ``count`` inputs.

    Args:
        x: the synaptic input.
        code: its kind code (0-d tensor).
        by_value: weigh ``count`` inputs by their value (a graded spike of n counts n).
    """
    nonzero = (x != 0).to(torch.float32)
    if not by_value:
        return nonzero
    graded = x.to(torch.float32) if x.dtype != torch.float32 else x
    return torch.where(code == COUNT, graded, nonzero)

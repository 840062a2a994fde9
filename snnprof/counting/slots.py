"""Valid slots: models that pad their ``[T, B]`` layout say which slots hold real data.

SpikingNeRF packs each ray's sample points along time and pads the rest of the ``[T, B]`` tensor
with zeros; any model that pads sequences does the same. The padding slots still cost neuron
updates (the network runs on the whole tensor), so ``firing_rate = spikes / neuron_updates`` mixes
the activity of real inputs with idle padding. A model marks its padded region with
:func:`valid_slots`; every neuron layer that runs inside then also reports

* ``valid_updates`` = neurons per slot × valid slots, and
* ``valid_spikes`` = spikes emitted in valid slots, with ``firing_rate_valid = valid_spikes / valid_updates``.

Example::

    mask = torch.zeros(T, B, dtype=torch.bool)
    mask[t_idx, b_idx] = True                     # the slots that hold a point
    with snnprof.valid_slots(mask):               # a no-op when no profiler is active
        out = snn(padded)                         # neurons see [T, B, ...]

``mask`` is a bool tensor over the leading dims of the neuron outputs inside: ``[T, B]`` for
multi-step ``[T, B, ...]`` neurons, ``[B]`` for single-step ``[B, ...]`` ones (or ``[T]``); or a
callable returning it, called only when a profiler is active. Neuron calls whose leading dims do
not match are counted all-valid, with a warning. Blocks nest: the innermost mask applies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

__all__ = ["current_mask", "mask_fits", "profiling", "valid_slots"]

_MASK: ContextVar[torch.Tensor | None] = ContextVar("snnprof_valid_slots", default=None)
_LOCK = threading.Lock()
_ACTIVE = [0]  # profilers inside their ``with`` block, all threads


def profiling(delta: int) -> None:
    """Count a profiler entering (+1) or leaving (-1) its ``with`` block (called by the profiler)."""
    with _LOCK:
        _ACTIVE[0] = max(_ACTIVE[0] + delta, 0)


@contextmanager
def valid_slots(mask: torch.Tensor | Callable[[], torch.Tensor]) -> Iterator[None]:
    """Mark the valid ``[T, B]`` slots of the neuron layers that run inside the block.

    Args:
        mask: bool tensor over the leading ``[T, B]`` (or ``[B]``) dims of the neuron outputs
            inside (true = a real input, false = padding), or a callable returning it (called
            only while a profiler is active, so a model pays nothing otherwise).

    Raises:
        TypeError: ``mask`` (or what the callable returns) is not a tensor.
    """
    if not _ACTIVE[0]:
        yield
        return
    value = mask() if callable(mask) else mask
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"valid_slots expects a bool tensor, got {type(value).__name__}")
    token = _MASK.set(value.detach().bool())
    try:
        yield
    finally:
        _MASK.reset(token)


def current_mask() -> torch.Tensor | None:
    """The mask of the innermost :func:`valid_slots` block, or ``None`` outside any."""
    return _MASK.get()


def mask_fits(mask: torch.Tensor, spikes: torch.Tensor, multi_step: bool) -> bool:
    """Whether ``mask`` covers leading dims of ``spikes``: ``mask.shape == spikes.shape[:mask.dim()]``.

    At most the ``[T, B]`` dims of a multi-step output (``[B]`` of a single-step one) are covered.
    """
    lead = 2 if multi_step else 1
    return mask.dim() <= min(lead, spikes.dim()) and tuple(mask.shape) == tuple(spikes.shape[: mask.dim()])

"""Calls inside ``torch.vmap``: rules see the physical tensors, the vmapped dims first.

Under ``vmap`` (e.g. SpikingJelly's ``TLastSeqToANNContainer``) a module's hooks receive batched
tensors whose shapes hide the vmapped dimension, and whose values cannot be read. Counting them
as they look would miss a factor of the vmapped size. :func:`physical` replaces every batched
tensor by the tensor vmap actually computes on, with the vmapped dimensions moved to the front
(outermost first), like the leading batch dims of any other call.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["is_batched", "physical"]

_functorch = torch._C._functorch


def is_batched(value: Any) -> bool:
    """Whether ``value`` is a tensor batched by ``vmap``."""
    return isinstance(value, torch.Tensor) and _functorch.is_batchedtensor(value)


def physical(value: Any) -> Any:
    """``value`` (a tensor, or nested tuples/lists/dicts) with batched tensors replaced by physical ones."""
    if isinstance(value, torch.Tensor):
        while _functorch.is_batchedtensor(value):
            value = _functorch.get_unwrapped(value).movedim(_functorch.maybe_get_bdim(value), 0)
        return value
    if isinstance(value, dict):
        return {k: physical(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(physical(v) for v in value)
    return value

"""Built-in counting rules; importing this package registers them all."""

from __future__ import annotations

from snnprof.counting.rules import attention, conv, dense_ops, einsum, linear, neurons, recurrent  # noqa: F401

__all__: list[str] = []

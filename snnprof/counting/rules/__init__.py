"""Built-in counting rules; importing this package registers them all."""

from __future__ import annotations

from snnprof.counting.rules import (  # noqa: F401
    attention,
    conv,
    dense_ops,
    einsum,
    elementwise,
    frameworks,
    linear,
    losses,
    neurons,
    norms,
    pooling,
    recurrent,
    resample,
    sj_layers,
)

__all__: list[str] = []

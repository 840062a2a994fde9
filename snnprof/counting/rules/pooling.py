"""Pooling: one cost function per family serves the modules and the functional forms.

Average and LP pooling: kernel-size ops per output element (the adds, with the divide folded in);
max pooling (fractional included): kernel size − 1 comparisons per output element; adaptive
pools: one op per input element; unpooling is a scatter (zero cost, with the data-movement rules).

Average pools (adaptive included, not LP pools) also report their input and windows
(:class:`~snnprof.counting.costs.Pooling`), from shapes and hyper-parameters only: output index ``i``
of a pooled dim reads inputs ``[i·stride − pad, i·stride − pad + kernel)`` clipped to the input
(adaptive: ``[⌊i·in/out⌋, ⌈(i+1)·in/out⌉)``). Pool folding (:mod:`snnprof.counting.folding`)
uses them when a synaptic layer consumes the pooled spikes.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from snnprof.counting.costs import Cost, Pooling
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import arg, first_tensor, out_tensor, prod

__all__ = ["adaptive_windows", "kernel_elems", "pool_cost", "pool_windows"]

Windows = tuple[tuple[tuple[int, int], ...], ...]

_AVG = Convention("pooling", "kernel size per output element")
_MAX = Convention("pooling", "kernel size − 1 per output element")
_ADAPTIVE = Convention("pooling", "1 per input element")


def kernel_elems(kernel: Any, dims: int) -> int:
    """Elements of a pooling window (``kernel`` an int or a tuple)."""
    return prod(kernel) if isinstance(kernel, (tuple, list)) else int(kernel) ** dims


def pool_cost(per_output: int, output: Any) -> Cost:
    """``per_output`` ops per output element."""
    return Cost(flops=per_output * out_tensor(output).numel())


def _per_dim(value: Any, dims: int) -> tuple[int, ...]:
    """An int or a sequence of ints as one int per pooled dim."""
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value) if len(value) == dims else (int(value[0]),) * dims
    return (int(value),) * dims


def pool_windows(kernel: Any, stride: Any, padding: Any, in_size: tuple[int, ...],
                 out_size: tuple[int, ...]) -> Windows:
    """``[start, stop)`` input range of each output index per pooled dim (padding clipped away).

    Args:
        kernel: kernel size (int or one per dim).
        stride: stride (int, one per dim, or ``None``/empty for the kernel size).
        padding: implicit padding on both sides (int or one per dim).
        in_size: input extent per pooled dim.
        out_size: output extent per pooled dim (``ceil_mode`` shows here).
    """
    dims = len(in_size)
    k = _per_dim(kernel, dims)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and not stride) else _per_dim(stride, dims)
    p = _per_dim(padding, dims)
    return tuple(
        tuple((max(i * s[d] - p[d], 0), min(i * s[d] - p[d] + k[d], in_size[d])) for i in range(out_size[d]))
        for d in range(dims)
    )


def adaptive_windows(in_size: tuple[int, ...], out_size: tuple[int, ...]) -> Windows:
    """Adaptive pooling windows: ``[floor(i·in/out), ceil((i+1)·in/out))`` per pooled dim."""
    sizes = zip(in_size, out_size, strict=True)
    return tuple(tuple(((i * n) // m, math.ceil((i + 1) * n / m)) for i in range(m)) for n, m in sizes)


def _pooling(x: torch.Tensor, output: Any, dims: int, windows_of: Any) -> Pooling | None:
    """The :class:`Pooling` of an average pool over the last ``dims`` dims (``None`` if shapes disagree)."""
    out = out_tensor(output)
    if x.dim() < dims or out.dim() != x.dim() or out.shape[: x.dim() - dims] != x.shape[: x.dim() - dims]:
        return None
    in_size, out_size = tuple(x.shape[x.dim() - dims :]), tuple(out.shape[out.dim() - dims :])
    return Pooling(x, windows_of(in_size, out_size))


def _pool_dims(module: nn.Module) -> int:
    for klass in type(module).__mro__:  # user subclasses (``class Down(nn.MaxPool1d)``) keep the parent's dims
        for d in (1, 2, 3):
            if f"{d}d" in klass.__name__:
                return d
    return 2


@register_rule(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.LPPool1d, nn.LPPool2d, nn.LPPool3d, convention=_AVG)
def avg_pool(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Average/LP pooling: kernel-size ops per output element (average pools also report their windows)."""
    dims = _pool_dims(module)
    cost = pool_cost(kernel_elems(module.kernel_size, dims), output)
    if isinstance(module, nn.modules.pooling._AvgPoolNd):
        windows = lambda i, o: pool_windows(module.kernel_size, module.stride, module.padding, i, o)  # noqa: E731
        cost.pooling = _pooling(arg(args, kwargs, 0, "input"), output, dims, windows)
    return cost


@register_rule(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.FractionalMaxPool2d, nn.FractionalMaxPool3d,
               convention=_MAX)
def max_pool(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Max pooling (fractional included): kernel-size minus one comparisons per output element."""
    return pool_cost(kernel_elems(module.kernel_size, _pool_dims(module)) - 1, output)


@register_rule(
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, convention=_ADAPTIVE,
)
def adaptive_pool(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Adaptive pools: one op per input element (adaptive average pools also report their windows)."""
    x = first_tensor(args) if args else first_tensor(kwargs)
    cost = Cost(flops=x.numel())
    if isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)):
        cost.pooling = _pooling(x, output, _pool_dims(module), adaptive_windows)
    return cost


def _functional_pool(op: str, dims: int, kernel_at: int, minus: int) -> Any:
    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        return pool_cost(kernel_elems(arg(args, kwargs, kernel_at, "kernel_size"), dims) - minus, output)

    rule.__name__ = f"{op}_op"
    rule.__doc__ = f"``F.{op}``: kernel size{' − 1' if minus else ''} per output element."
    return rule


def _functional_avg_pool(dims: int) -> Any:
    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        kernel = arg(args, kwargs, 1, "kernel_size")
        cost = pool_cost(kernel_elems(kernel, dims), output)
        stride, padding = arg(args, kwargs, 2, "stride"), arg(args, kwargs, 3, "padding", 0)
        windows = lambda i, o: pool_windows(kernel, stride, padding, i, o)  # noqa: E731
        cost.pooling = _pooling(arg(args, kwargs, 0, "input"), output, dims, windows)
        return cost

    rule.__name__ = f"avg_pool{dims}d_op"
    rule.__doc__ = f"``F.avg_pool{dims}d``: kernel size per output element (and its windows)."
    return rule


for _d in (1, 2, 3):
    register_rule(f"avg_pool{_d}d", convention=_AVG)(_functional_avg_pool(_d))
    register_rule(f"lp_pool{_d}d", convention=_AVG)(_functional_pool(f"lp_pool{_d}d", _d, 2, 0))
    register_rule(f"max_pool{_d}d", f"max_pool{_d}d_with_indices", convention=_MAX)(
        _functional_pool(f"max_pool{_d}d", _d, 1, 1)
    )
for _d in (2, 3):
    register_rule(f"fractional_max_pool{_d}d", f"fractional_max_pool{_d}d_with_indices", convention=_MAX)(
        _functional_pool(f"fractional_max_pool{_d}d", _d, 1, 1)
    )


def _functional_adaptive_avg(dims: int) -> Any:
    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        x = arg(args, kwargs, 0, "input")
        return Cost(flops=x.numel(), pooling=_pooling(x, output, dims, adaptive_windows))

    rule.__name__ = f"adaptive_avg_pool{dims}d_op"
    rule.__doc__ = f"``F.adaptive_avg_pool{dims}d``: one op per input element (and its windows)."
    return rule


for _d in (1, 2, 3):
    register_rule(f"adaptive_avg_pool{_d}d", convention=_ADAPTIVE)(_functional_adaptive_avg(_d))


@register_rule(
    *(f"adaptive_max_pool{d}d" for d in (1, 2, 3)),
    *(f"adaptive_max_pool{d}d_with_indices" for d in (1, 2, 3)), convention=_ADAPTIVE,
)
def adaptive_pool_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.adaptive_max_pool*d``: one op per input element."""
    return Cost(flops=arg(args, kwargs, 0, "input").numel())

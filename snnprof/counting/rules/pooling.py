"""Pooling: one cost function per family serves the modules and the functional forms.

Average and LP pooling: kernel-size ops per output element (the adds, with the divide folded in);
max pooling (fractional included): kernel size − 1 comparisons per output element; adaptive
pools: one op per input element; unpooling is a scatter (zero cost, with the data-movement rules).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from snnprof.counting.costs import Cost
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import arg, first_tensor, out_tensor, prod

__all__ = ["kernel_elems", "pool_cost"]

_AVG = Convention("pooling", "kernel size per output element")
_MAX = Convention("pooling", "kernel size − 1 per output element")
_ADAPTIVE = Convention("pooling", "1 per input element")


def kernel_elems(kernel: Any, dims: int) -> int:
    """Elements of a pooling window (``kernel`` an int or a tuple)."""
    return prod(kernel) if isinstance(kernel, (tuple, list)) else int(kernel) ** dims


def pool_cost(per_output: int, output: Any) -> Cost:
    """``per_output`` ops per output element."""
    return Cost(flops=per_output * out_tensor(output).numel())


def _pool_dims(module: nn.Module) -> int:
    for klass in type(module).__mro__:  # user subclasses (``class Down(nn.MaxPool1d)``) keep the parent's dims
        for d in (1, 2, 3):
            if f"{d}d" in klass.__name__:
                return d
    return 2


@register_rule(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.LPPool1d, nn.LPPool2d, nn.LPPool3d, convention=_AVG)
def avg_pool(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Average/LP pooling: kernel-size ops per output element."""
    return pool_cost(kernel_elems(module.kernel_size, _pool_dims(module)), output)


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
    """Adaptive pools: one op per input element."""
    return Cost(flops=(first_tensor(args) if args else first_tensor(kwargs)).numel())


def _functional_pool(op: str, dims: int, kernel_at: int, minus: int) -> Any:
    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        return pool_cost(kernel_elems(arg(args, kwargs, kernel_at, "kernel_size"), dims) - minus, output)

    rule.__name__ = f"{op}_op"
    rule.__doc__ = f"``F.{op}``: kernel size{' − 1' if minus else ''} per output element."
    return rule


for _d in (1, 2, 3):
    register_rule(f"avg_pool{_d}d", convention=_AVG)(_functional_pool(f"avg_pool{_d}d", _d, 1, 0))
    register_rule(f"lp_pool{_d}d", convention=_AVG)(_functional_pool(f"lp_pool{_d}d", _d, 2, 0))
    register_rule(f"max_pool{_d}d", f"max_pool{_d}d_with_indices", convention=_MAX)(
        _functional_pool(f"max_pool{_d}d", _d, 1, 1)
    )
for _d in (2, 3):
    register_rule(f"fractional_max_pool{_d}d", f"fractional_max_pool{_d}d_with_indices", convention=_MAX)(
        _functional_pool(f"fractional_max_pool{_d}d", _d, 1, 1)
    )


@register_rule(
    *(f"adaptive_{kind}_pool{d}d" for kind in ("avg", "max") for d in (1, 2, 3)),
    *(f"adaptive_max_pool{d}d_with_indices" for d in (1, 2, 3)), convention=_ADAPTIVE,
)
def adaptive_pool_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.adaptive_*_pool*d``: one op per input element."""
    return Cost(flops=arg(args, kwargs, 0, "input").numel())

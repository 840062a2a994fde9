"""Name rules: the elementwise table for functional ops seen inside modules without a rule.

Handler factories in fvcore's style build one rule per family: :func:`elementwise` (a fixed number
of ops per output element), :func:`reduction` (one op per input element) and :data:`zero_cost`
(data movement). Each family is registered for its op names (``"add"`` matches ``torch.add``,
``Tensor.add``, ``Tensor.add_`` and ``Tensor.__iadd__``), so :func:`snnprof.list_rules` lists every
name and the conventions tables are generated from the registry. Activations use the same numbers
as their module rules: piecewise-linear 1, transcendental 4, softmax family 3. Anything else that
returns a tensor is reported as unsupported.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from snnprof.counting.costs import Cost
from snnprof.counting.registry import Convention, OpRule, register_rule
from snnprof.counting.rules._util import arg, first_tensor

__all__ = [
    "PIECEWISE_OPS",
    "SOFTMAX_OPS",
    "TRANSCENDENTAL_OPS",
    "elementwise",
    "op_name",
    "reduction",
    "zero_cost",
]

#: ops per element of a piecewise-linear activation, a transcendental function and the softmax family
PIECEWISE_OPS, TRANSCENDENTAL_OPS, SOFTMAX_OPS = 1, 4, 3


def op_name(func: Any) -> str:
    """Short, normalised name of a torch function (``__iadd__`` -> ``iadd``, ``add_`` -> ``add``)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    return name.strip("_")


def _numel(value: Any) -> int:
    found = first_tensor(value)
    return found.numel() if isinstance(found, torch.Tensor) else 0


def elementwise(per_element: int) -> OpRule:
    """Handler factory: ``per_element`` ops per element of the op's output."""

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        return Cost(flops=per_element * _numel(output))

    rule.__name__ = f"elementwise_{per_element}"
    rule.__doc__ = f"{per_element} op(s) per output element."
    return rule


def reduction() -> OpRule:
    """Handler factory: one op per element of the reduced input."""

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        return Cost(flops=_numel(args) if args else _numel(kwargs))

    rule.__name__ = "reduction"
    rule.__doc__ = "One op per input element."
    return rule


def zero_cost(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Data movement, views, copies, creation and bookkeeping: no arithmetic."""
    return Cost()


def extremum(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``max``/``min``: elementwise of two tensors (1 per output element), else a reduction (1 per input element)."""
    other = args[1] if len(args) > 1 else kwargs.get("other")
    if isinstance(other, torch.Tensor):
        return Cost(flops=_numel(output))
    return Cost(flops=_numel(args[:1]) if args else _numel(kwargs))


register_rule(
    "relu", "relu6", "leaky_relu", "prelu", "rrelu", "hardtanh", "hardsigmoid", "hardswish", "threshold",
    "hardshrink", "softshrink", "tanhshrink", "softsign",
    convention=Convention("activations", f"{PIECEWISE_OPS} per output element"),
)(elementwise(PIECEWISE_OPS))
register_rule(
    "sigmoid", "tanh", "gelu", "silu", "elu", "selu", "celu", "softplus", "mish", "logsigmoid", "log_sigmoid", "glu",
    convention=Convention("activations", f"{TRANSCENDENTAL_OPS} per output element"),
)(elementwise(TRANSCENDENTAL_OPS))
register_rule(
    "softmax", "log_softmax", "softmin",
    convention=Convention("activations", f"{SOFTMAX_OPS} per output element (exp, sum, divide)"),
)(elementwise(SOFTMAX_OPS))
_GUMBEL = Convention("activations", "Gumbel softmax: 13 per output element (noise −log(−log u) 8, add, scale, "
                                    "softmax 3)")
register_rule("gumbel_softmax", convention=_GUMBEL)(elementwise(13))
register_rule(
    "add", "radd", "iadd", "sub", "rsub", "isub", "mul", "rmul", "imul", "div", "rdiv", "truediv", "rtruediv",
    "itruediv", "floordiv", "neg", "abs", "maximum", "minimum", "clamp", "clip", "heaviside", "ge", "gt", "le",
    "lt", "eq", "ne", "where", "sign", "square", "addcmul", "addcdiv", "lerp", "masked_fill", "reciprocal", "fmod",
    "remainder", "pow", "floor", "ceil", "round", "trunc", "frac", "sqrt", "rsqrt", "and", "or", "xor", "invert",
    "logical_and", "logical_or", "logical_not", "bitwise_and",
    convention=Convention("elementwise", "1 per output element"),
)(elementwise(1))
_SEARCH = Convention("elementwise", "binary search: ⌈log2(boundaries + 1)⌉ comparisons per output element")


def _search_cost(boundaries: Any, output: Any) -> Cost:
    n = boundaries.shape[-1] if isinstance(boundaries, torch.Tensor) and boundaries.dim() else 1
    return Cost(flops=math.ceil(math.log2(n + 1)) * _numel(output))


@register_rule("bucketize", convention=_SEARCH)
def bucketize(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``bucketize(input, boundaries)``: a binary search per output element."""
    return _search_cost(arg(args, kwargs, 1, "boundaries"), output)


@register_rule("searchsorted", convention=_SEARCH)
def searchsorted(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``searchsorted(sorted_sequence, input)``: a binary search per output element."""
    return _search_cost(arg(args, kwargs, 0, "sorted_sequence"), output)


register_rule(
    "exp", "log", "log2", "log10", "expm1", "log1p", "erf", "sin", "cos", "atan",
    convention=Convention("elementwise", f"{TRANSCENDENTAL_OPS} per output element (transcendental)"),
)(elementwise(TRANSCENDENTAL_OPS))
register_rule(
    "sum", "mean", "var", "std", "norm", "prod", "cumsum", "logsumexp", "amax", "amin", "argmax", "argmin", "all",
    "any", "count_nonzero",
    convention=Convention("elementwise", "1 per input element (reduction)"),
)(reduction())
register_rule(
    "max", "min",
    convention=Convention("elementwise", "1 per output element of two tensors; else 1 per input element"),
)(extremum)
register_rule(
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "contiguous", "flatten",
    "unflatten", "squeeze", "unsqueeze", "expand", "expand_as", "repeat", "repeat_interleave", "cat",
    "concat", "concatenate", "stack", "split", "chunk", "unbind", "getitem", "setitem", "clone", "detach",
    "to", "type", "float", "half", "double", "bfloat16", "int", "long", "bool", "size", "dim", "numel",
    "get", "set", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "fill", "zero", "copy", "index_select",
    "gather", "scatter", "narrow", "select", "roll", "flip", "pad", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "feature_alpha_dropout", "movedim", "moveaxis", "swapaxes", "split_with_sizes",
    "tensor_split", "as_strided", "unfold", "tile", "broadcast_to", "masked_select", "index_put",
    "nonzero", "argsort", "sort", "topk", "requires_grad", "retain_grad", "cpu", "cuda", "item", "tolist",
    "numpy", "data_ptr", "element_size", "is_contiguous", "is_floating_point", "stride", "storage_offset",
    "register_hook", "backward", "len", "iter", "reversed", "format", "repr", "contains", "hash",
    "bernoulli", "uniform", "normal", "random", "dim_order", "is_complex", "nelement", "embedding",
    "one_hot", "arange", "linspace", "zeros", "ones", "empty", "full", "tensor", "as_tensor",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "unique", "bincount",
    "diag", "diagonal", "tril", "triu", "meshgrid", "broadcast_tensors", "index_add", "requires_grad_",
    "sizes", "shape", "grad", "is_leaf", "device", "dtype", "apply", "typename", "new", "deg2rad",
    "max_unpool1d", "max_unpool2d", "max_unpool3d", "index_copy", "index_fill", "masked_scatter",
    convention=Convention("zero", "0"),
)(zero_cost)
register_rule("fold", convention=Convention("elementwise", "1 per input element (overlapping blocks are summed)"))(
    reduction()
)

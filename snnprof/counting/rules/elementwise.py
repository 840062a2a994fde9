"""Functional ops seen inside modules that have no rule of their own.

Arithmetic and activations cost a fixed number of ops per output element (same table as the
module rules); data-movement ops cost nothing; anything else that returns a tensor is reported as
unsupported. Reductions cost one op per input element.
"""

from __future__ import annotations

from typing import Any

import torch

from snnprof.counting.rules._util import first_tensor

__all__ = ["ZERO_COST", "classify_op", "op_name"]

_ONE = {
    "add", "radd", "iadd", "sub", "rsub", "isub", "mul", "rmul", "imul", "div", "rdiv", "truediv",
    "rtruediv", "itruediv", "floordiv", "neg", "abs", "maximum", "minimum", "max", "min", "clamp", "clip",
    "relu", "relu6", "leaky_relu", "hardtanh", "heaviside", "ge", "gt", "le", "lt", "eq", "ne", "where",
    "sign", "square", "addcmul", "addcdiv", "lerp", "masked_fill", "threshold", "hardsigmoid", "hardswish",
    "reciprocal", "fmod", "remainder", "pow", "mul_", "floor", "ceil", "round", "trunc", "frac", "sqrt",
    "rsqrt", "and", "or", "xor", "invert", "logical_and", "logical_or", "logical_not", "bitwise_and",
}
_FOUR = {"sigmoid", "tanh", "exp", "log", "log2", "log10", "expm1", "log1p", "gelu", "silu", "elu", "selu",
         "softplus", "mish", "erf", "sin", "cos", "atan", "logsigmoid", "celu"}
_THREE = {"softmax", "log_softmax", "softmin"}
_REDUCE = {"sum", "mean", "var", "std", "norm", "prod", "cumsum", "logsumexp", "amax", "amin", "argmax",
           "argmin", "all", "any", "count_nonzero"}
ZERO_COST = {
    "view", "view_as", "reshape", "reshape_as", "permute", "transpose", "t", "contiguous", "flatten",
    "unflatten", "squeeze", "unsqueeze", "expand", "expand_as", "repeat", "repeat_interleave", "cat",
    "concat", "concatenate", "stack", "split", "chunk", "unbind", "getitem", "setitem", "clone", "detach",
    "to", "type", "float", "half", "double", "bfloat16", "int", "long", "bool", "size", "dim", "numel",
    "get", "set", "zeros_like", "ones_like", "empty_like", "full_like", "rand_like", "randn_like",
    "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor", "fill", "zero", "copy", "index_select",
    "gather", "scatter", "narrow", "select", "roll", "flip", "pad", "dropout", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "feature_alpha_dropout", "movedim", "moveaxis", "swapaxes", "split_with_sizes",
    "tensor_split", "as_strided", "unfold", "fold", "tile", "broadcast_to", "masked_select", "index_put",
    "nonzero", "argsort", "sort", "topk", "requires_grad", "retain_grad", "cpu", "cuda", "item", "tolist",
    "numpy", "data_ptr", "element_size", "is_contiguous", "is_floating_point", "stride", "storage_offset",
    "register_hook", "backward", "len", "iter", "reversed", "format", "repr", "contains", "hash",
    "bernoulli", "uniform", "normal", "random", "dim_order", "is_complex", "nelement", "embedding",
    "one_hot", "arange", "linspace", "zeros", "ones", "empty", "full", "tensor", "as_tensor",
    "pixel_shuffle", "pixel_unshuffle", "channel_shuffle", "native_channel_shuffle", "unique", "bincount",
    "diag", "diagonal", "tril", "triu", "meshgrid", "broadcast_tensors", "index_add", "requires_grad_",
    "sizes", "shape", "grad", "is_leaf", "device", "dtype", "apply", "typename", "new", "deg2rad",
}


def op_name(func: Any) -> str:
    """Short, normalised name of a torch function (``__iadd__`` -> ``iadd``, ``add_`` -> ``add``)."""
    name = getattr(func, "__name__", None) or type(func).__name__
    return name.strip("_")


def classify_op(func: Any, args: tuple[Any, ...], output: Any) -> tuple[str, int]:
    """Classify an intercepted op without a rule.

    Returns:
        ``("zero", 0)``, ``("elementwise", flops)`` or ``("unsupported", 0)``.
    """
    name = op_name(func)
    if name in ZERO_COST:
        return "zero", 0
    out = first_tensor(output)
    if name in _REDUCE:
        src = first_tensor(args)
        return "elementwise", src.numel() if src is not None else 0
    per = 1 if name in _ONE else 4 if name in _FOUR else 3 if name in _THREE else None
    if per is not None:
        return "elementwise", per * (out.numel() if isinstance(out, torch.Tensor) else 0)
    if not isinstance(out, torch.Tensor):
        return "zero", 0
    return "unsupported", 0

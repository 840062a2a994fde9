"""Activation modules, embeddings and zero-cost modules (normalisation, pooling, resampling: own modules).

Per-element op conventions (the same numbers as the functional name rules of
:mod:`snnprof.counting.rules.elementwise`):

* Activations per element: piecewise-linear 1 (ReLU, LeakyReLU, Hardtanh, PReLU ...),
  transcendental 4 (Sigmoid, Tanh, GELU, SiLU, ELU, Softplus, Mish ...), Softmax/LogSoftmax 3.
* EmbeddingBag: one add per gathered element.
* Flatten, Unflatten, Dropout, Identity, padding, shuffles, unpooling and Embedding: 0 (known,
  zero cost).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from snnprof.counting.costs import Cost
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import arg, out_tensor
from snnprof.counting.rules.elementwise import PIECEWISE_OPS, SOFTMAX_OPS, TRANSCENDENTAL_OPS

__all__: list[str] = []

_PIECEWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Threshold,
    nn.Hardshrink, nn.Softshrink, nn.Tanhshrink, nn.RReLU, nn.Softsign,
)
_TRANSCENDENTAL = (
    nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU, nn.ELU, nn.SELU, nn.CELU, nn.Softplus, nn.Mish, nn.LogSigmoid,
    nn.GLU,
)


@register_rule(*_PIECEWISE, convention=Convention("activations", f"{PIECEWISE_OPS} per output element"))
def piecewise_activation(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Piecewise-linear activations: 1 op per element."""
    return Cost(flops=PIECEWISE_OPS * out_tensor(output).numel())


@register_rule(*_TRANSCENDENTAL, convention=Convention("activations", f"{TRANSCENDENTAL_OPS} per output element"))
def transcendental_activation(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
) -> Cost:
    """Sigmoid/Tanh/GELU/SiLU/ELU...: 4 ops per element."""
    return Cost(flops=TRANSCENDENTAL_OPS * out_tensor(output).numel())


@register_rule(nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d,
               convention=Convention("activations", f"{SOFTMAX_OPS} per output element (exp, sum, divide)"))
def softmax(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Softmax family: 3 ops per element (exp, sum, divide)."""
    return Cost(flops=SOFTMAX_OPS * out_tensor(output).numel())


@register_rule(
    nn.Flatten, nn.Unflatten, nn.Identity, nn.modules.dropout._DropoutNd,
    nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd, nn.modules.padding.CircularPad1d,
    nn.modules.padding.CircularPad2d, nn.modules.padding.CircularPad3d,
    nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle, nn.Embedding, nn.modules.pooling._MaxUnpoolNd,
    convention=Convention("zero", "0"),
)
def zero_cost(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Known modules that move or select data without arithmetic (counted as zero)."""
    return Cost()


def embedding_bag_cost(indices: Any, dim: int) -> Cost:
    """EmbeddingBag: one add per gathered element (``indices`` x ``dim``)."""
    return Cost(flops=indices.numel() * dim)


_BAG = Convention("elementwise", "EmbeddingBag: 1 per gathered element")


@register_rule(nn.EmbeddingBag, convention=_BAG)
def embedding_bag(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """EmbeddingBag: one add per gathered element (reduction)."""
    return embedding_bag_cost(arg(args, kwargs, 0, "input"), module.embedding_dim)


@register_rule("embedding_bag", convention=_BAG)
def embedding_bag_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.embedding_bag(input, weight)`` / ``torch.embedding_bag(weight, indices)``: one add per gathered element."""
    first, second = arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "weight")
    indices, weight = (second, first) if first.is_floating_point() else (first, second)
    return embedding_bag_cost(indices, weight.shape[1])

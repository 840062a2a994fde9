"""Non-synaptic layers: normalisation, pooling, resampling, activations and zero-cost modules.

Per-element op conventions (``flops`` column; documented in the README):

* BatchNorm: 2 per element in eval (folded scale and shift), 4 in training (statistics too).
* LayerNorm / GroupNorm / InstanceNorm: 5 per element with affine, 3 without.
* Pooling: avg = kernel size per output element (adds + 1 divide folded in); max = kernel size - 1
  comparisons; adaptive pools = input elements.
* Upsampling per output element: nearest 0, linear 3, bilinear 7, bicubic 31, trilinear 15.
* Activations per element: piecewise-linear 1 (ReLU, LeakyReLU, Hardtanh, PReLU ...),
  transcendental 4 (Sigmoid, Tanh, GELU, SiLU, ELU, Softplus, Mish ...), Softmax/LogSoftmax 3.
* Flatten, Unflatten, Dropout, Identity, padding and channel shuffles: 0 (known, zero cost).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from snnprof.counting.costs import Cost
from snnprof.counting.registry import register_rule
from snnprof.counting.rules._util import arg, first_tensor, out_tensor, prod

__all__: list[str] = []


def _in(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return first_tensor(args) if args else first_tensor(kwargs)


@register_rule(nn.modules.batchnorm._BatchNorm)
def batchnorm(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """BatchNorm1d/2d/3d and SyncBatchNorm: 2 ops per element in eval, 4 in training."""
    return Cost(flops=(4 if module.training else 2) * out_tensor(output).numel())


@register_rule(nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, nn.RMSNorm, nn.LocalResponseNorm)
def other_norm(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """LayerNorm/GroupNorm/InstanceNorm/RMSNorm/LRN: 5 ops per element with affine, 3 without."""
    affine = any(p is not None for p in (getattr(module, "weight", None), getattr(module, "bias", None)))
    return Cost(flops=(5 if affine else 3) * out_tensor(output).numel())


def _kernel_elems(module: nn.Module, dims: int) -> int:
    k = module.kernel_size
    return prod(k) if isinstance(k, (tuple, list)) else int(k) ** dims


def _pool_dims(module: nn.Module) -> int:
    for klass in type(module).__mro__:  # user subclasses (``class Down(nn.MaxPool1d)``) keep the parent's dims
        for d in (1, 2, 3):
            if f"{d}d" in klass.__name__:
                return d
    return 2


@register_rule(nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.LPPool1d, nn.LPPool2d, nn.LPPool3d)
def avg_pool(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Average/LP pooling: kernel-size ops per output element."""
    return Cost(flops=_kernel_elems(module, _pool_dims(module)) * out_tensor(output).numel())


@register_rule(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
def max_pool(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Max pooling: kernel-size minus one comparisons per output element."""
    return Cost(flops=(_kernel_elems(module, _pool_dims(module)) - 1) * out_tensor(output).numel())


@register_rule(
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)
def adaptive_pool(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Adaptive pools: one op per input element."""
    return Cost(flops=_in(args, kwargs).numel())


_INTERP = {"nearest": 0, "nearest-exact": 0, "area": 1, "linear": 3, "bilinear": 7, "bicubic": 31, "trilinear": 15}


@register_rule(nn.Upsample)
def upsample(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``nn.Upsample`` (and the deprecated UpsamplingNearest2d/UpsamplingBilinear2d)."""
    return Cost(flops=_INTERP.get(module.mode, 7) * out_tensor(output).numel())


_PIECEWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Threshold,
    nn.Hardshrink, nn.Softshrink, nn.Tanhshrink, nn.RReLU, nn.Softsign,
)
_TRANSCENDENTAL = (
    nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU, nn.ELU, nn.SELU, nn.CELU, nn.Softplus, nn.Mish, nn.LogSigmoid,
    nn.GLU,
)


@register_rule(*_PIECEWISE)
def piecewise_activation(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Piecewise-linear activations: 1 op per element."""
    return Cost(flops=out_tensor(output).numel())


@register_rule(*_TRANSCENDENTAL)
def transcendental_activation(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any
) -> Cost:
    """Sigmoid/Tanh/GELU/SiLU/ELU...: 4 ops per element."""
    return Cost(flops=4 * out_tensor(output).numel())


@register_rule(nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d)
def softmax(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Softmax family: 3 ops per element (exp, sum, divide)."""
    return Cost(flops=3 * out_tensor(output).numel())


@register_rule(
    nn.Flatten, nn.Unflatten, nn.Identity, nn.modules.dropout._DropoutNd,
    nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
    nn.modules.padding._ReplicationPadNd, nn.modules.padding.CircularPad1d,
    nn.modules.padding.CircularPad2d, nn.modules.padding.CircularPad3d,
    nn.PixelShuffle, nn.PixelUnshuffle, nn.ChannelShuffle, nn.Embedding,
)
def zero_cost(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Known modules that move or select data without arithmetic (counted as zero)."""
    return Cost()


@register_rule(nn.EmbeddingBag)
def embedding_bag(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """EmbeddingBag: one add per gathered element (reduction)."""
    idx = arg(args, kwargs, 0, "input")
    return Cost(flops=idx.numel() * module.embedding_dim)

"""Normalisation: one cost function per family serves the module and its functional form.

* BatchNorm: 2 ops per element in eval (folded scale and shift), 4 when batch statistics are
  computed (training, or no running statistics), as ``nn.BatchNorm*`` decides for ``F.batch_norm``.
* LayerNorm / GroupNorm / InstanceNorm / RMSNorm / LocalResponseNorm: 5 per element with an affine
  weight or bias, 3 without.
* ``F.normalize``: 3 per element (power, sum, divide).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from snnprof.counting.costs import Cost
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import arg, out_tensor

__all__ = ["batch_norm_cost", "norm_cost"]

_BN = Convention("normalisation", "2 per element in eval (folded scale+shift), 4 computing batch statistics")
_NORM = Convention("normalisation", "5 per element with affine weight or bias, 3 without")


def batch_norm_cost(batch_stats: bool, output: Any) -> Cost:
    """BatchNorm of one call: 4 ops per element computing batch statistics, else 2."""
    return Cost(flops=(4 if batch_stats else 2) * out_tensor(output).numel())


def norm_cost(affine: bool, output: Any) -> Cost:
    """Layer/group/instance/RMS/LRN norm of one call: 5 ops per element with affine, 3 without."""
    return Cost(flops=(5 if affine else 3) * out_tensor(output).numel())


@register_rule(nn.modules.batchnorm._BatchNorm, convention=_BN)
def batchnorm(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """BatchNorm1d/2d/3d and SyncBatchNorm: batch statistics in training or without running statistics."""
    no_stats = getattr(module, "running_mean", None) is None and getattr(module, "running_var", None) is None
    return batch_norm_cost(module.training or no_stats, output)


@register_rule("batch_norm", convention=_BN)
def batch_norm_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.batch_norm``: batch statistics when ``training``."""
    return batch_norm_cost(bool(arg(args, kwargs, 5, "training", False)), output)


@register_rule(
    nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, nn.RMSNorm, nn.LocalResponseNorm,
    nn.CrossMapLRN2d, convention=_NORM,
)
def other_norm(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """LayerNorm/GroupNorm/InstanceNorm/RMSNorm/LRN: 5 ops per element with affine, 3 without."""
    affine = any(p is not None for p in (getattr(module, "weight", None), getattr(module, "bias", None)))
    return norm_cost(affine, output)


#: positions of the (weight, bias) arguments of each functional norm
_AFFINE_ARGS: dict[str, tuple[tuple[int, str], ...]] = {
    "layer_norm": ((2, "weight"), (3, "bias")),
    "group_norm": ((2, "weight"), (3, "bias")),
    "instance_norm": ((3, "weight"), (4, "bias")),
    "rms_norm": ((2, "weight"),),
    "local_response_norm": (),
}


def _functional_norm(op: str) -> Any:
    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        return norm_cost(any(arg(args, kwargs, i, key) is not None for i, key in _AFFINE_ARGS[op]), output)

    rule.__name__ = f"{op}_op"
    rule.__doc__ = f"``F.{op}``: 5 ops per element with affine, 3 without."
    return rule


for _op in _AFFINE_ARGS:
    register_rule(_op, convention=_NORM)(_functional_norm(_op))


@register_rule(torch.instance_norm, name="instance_norm", convention=_NORM)
def torch_instance_norm_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``torch.instance_norm(input, weight, bias, ...)`` (``F.instance_norm`` orders its arguments differently)."""
    return norm_cost(any(arg(args, kwargs, i, key) is not None for i, key in ((1, "weight"), (2, "bias"))), output)


@register_rule("normalize", convention=Convention("normalisation", "3 per element (power, sum, divide)"))
def normalize_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.normalize``: 3 ops per element."""
    return Cost(flops=3 * out_tensor(output).numel())

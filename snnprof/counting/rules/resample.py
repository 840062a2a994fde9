"""Resampling: ``nn.Upsample`` and ``F.interpolate`` (and the deprecated ``F.upsample*``) share one rule.

Ops per output element by mode, ``2 x taps − 1`` (products plus the adds that combine them):
nearest and nearest-exact 0, linear 3, bilinear 7, bicubic 31, trilinear 15. ``area`` is an
adaptive average pool (torch runs ``adaptive_avg_pool``): one op per input element. Antialiased
downsampling (``antialias=True``) widens the filter; it is counted like the plain filter, with a
warning. ``F.grid_sample`` samples with the same filters (``bilinear`` on a 5-D input is trilinear).
``F.affine_grid`` is a batched product ``[N, positions, d + 1] x [N, d + 1, d]``: dense MACs.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.counting.costs import Cost, Synapse
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import arg, out_tensor

__all__ = ["INTERPOLATION_OPS", "interpolation_cost"]

#: ops per output element of each interpolation mode (``area``: per input element instead)
INTERPOLATION_OPS: dict[str, int] = {
    "nearest": 0, "nearest-exact": 0, "linear": 3, "bilinear": 7, "bicubic": 31, "trilinear": 15,
}
_INTERP = Convention(
    "resampling",
    "per output element: nearest 0, linear 3, bilinear 7, bicubic 31, trilinear 15; area: 1 per input element",
)


def interpolation_cost(mode: str, x: torch.Tensor, output: Any, antialias: bool = False) -> Cost:
    """Cost of one interpolation of ``x`` in ``mode`` (see the module docstring).

    Raises:
        ValueError: an unknown mode.
    """
    out = out_tensor(output)
    if mode == "area":
        return Cost(flops=x.numel())
    if mode not in INTERPOLATION_OPS:
        raise ValueError(f"unknown interpolation mode {mode!r}")
    warnings = ()
    if antialias and out.numel() < x.numel():
        warnings = (f"antialiased {mode} downsampling counted like plain {mode} "
                    f"({INTERPOLATION_OPS[mode]} per output element)",)
    return Cost(flops=INTERPOLATION_OPS[mode] * out.numel(), warnings=warnings)


@register_rule(nn.Upsample, convention=_INTERP)
def upsample(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``nn.Upsample`` (and UpsamplingNearest2d/UpsamplingBilinear2d)."""
    return interpolation_cost(module.mode, arg(args, kwargs, 0, "input"), output)


@register_rule("interpolate", "upsample", convention=_INTERP)
def interpolate_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.interpolate`` / ``F.upsample``: every mode, as ``nn.Upsample``."""
    return interpolation_cost(arg(args, kwargs, 3, "mode", "nearest"), arg(args, kwargs, 0, "input"), output,
                              bool(arg(args, kwargs, 6, "antialias", False)))


@register_rule("upsample_nearest", convention=_INTERP)
def upsample_nearest_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.upsample_nearest``: nearest (0 per output element)."""
    return interpolation_cost("nearest", arg(args, kwargs, 0, "input"), output)


@register_rule("upsample_bilinear", convention=_INTERP)
def upsample_bilinear_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.upsample_bilinear``: bilinear (7 per output element)."""
    return interpolation_cost("bilinear", arg(args, kwargs, 0, "input"), output)


@register_rule("grid_sample", convention=Convention(
    "resampling", "per output element as interpolation: nearest 0, bilinear 7 (trilinear 15 on 5-D), bicubic 31"))
def grid_sample_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.grid_sample``: the interpolation filter per output element."""
    x, mode = arg(args, kwargs, 0, "input"), arg(args, kwargs, 2, "mode", "bilinear")
    if mode == "bilinear" and x.dim() == 5:
        mode = "trilinear"
    return interpolation_cost(mode, x, output)


@register_rule(F.affine_grid, name="affine_grid", convention=Convention(
    "resampling", "dense MACs `N·positions·(d+1)·d` (a batched product)"))
def affine_grid_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.affine_grid``: every grid position is ``theta [d, d + 1]`` times ``[x, (y, (z,)) 1]``."""
    out = out_tensor(output)  # [N, *spatial, d]
    d = out.shape[-1]
    return Cost(synapses=(Synapse(dense_macs=out.numel() * (d + 1)),))

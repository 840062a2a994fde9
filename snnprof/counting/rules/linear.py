"""Linear maps on N-d input, Bilinear, and the matmul family (mm, bmm, matmul, @ ...; einsum: :mod:`.einsum`).

Linear: dense MACs = ``rows * in * out`` with ``rows`` = product of all leading dims; exact SOPs =
events x ``out`` (every input event reaches every output). Bias: one op per output element.

matmul ``A[..., n, k] @ B[..., k, m]``: dense MACs = ``batch * n * k * m``; events of ``A`` reach
``m`` outputs each, events of ``B`` reach ``n`` (times broadcast factors); when both operands carry
events, only coinciding pairs accumulate: ``sum_k colsum(A)_k * rowsum(B)_k``. Parameters are never
treated as event operands.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.counting.costs import Cost, PerEvent, Synapse, exact_sum
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import activity, arg, out_tensor, prod

__all__ = ["linear_cost", "matmul_cost"]


def linear_cost(x: torch.Tensor, weight_shape: tuple[int, ...], has_bias: bool, out: torch.Tensor) -> Cost:
    """Cost of ``y = x W^T (+ b)`` with ``W`` of shape ``[out, in]``."""
    out_f, in_f = (weight_shape[0], weight_shape[1]) if len(weight_shape) == 2 else (1, weight_shape[0])
    rows = x.numel() // in_f if in_f else 0
    synapse = Synapse(dense_macs=rows * in_f * out_f, operand=x, fanout=PerEvent(out_f))
    geometry = {"in_channels": in_f, "out_channels": out_f, "kernel_elems": 1, "out_positions": 1, "frames": rows}
    return Cost(flops=out.numel() if has_bias else 0, synapses=(synapse,), geometry=geometry)


_LINEAR = Convention("synaptic", "linear: MACs `rows·in·out`; SOPs events × out; bias 1 per output element")
_BILINEAR = Convention("synaptic", "bilinear: dense MACs `rows·out·(in1·in2 + in1)`; bias 1 per output element")
_MATMUL = Convention(
    "synaptic", "matmul family: MACs `batch·n·k·m`; SOPs: events of A reach m outputs, of B n, both: coinciding "
    "pairs; `addmm`/`baddbmm` +1 per output element",
)
_GROUPED = Convention("synaptic", "grouped/scaled matmuls: dense MACs, output elements × inner size per group")


@register_rule(nn.Linear, convention=_LINEAR)
def linear_module(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``nn.Linear`` (and subclasses) on input of any rank."""
    x = arg(args, kwargs, 0, "input")
    return linear_cost(x, tuple(module.weight.shape), module.bias is not None, out_tensor(output))


@register_rule(F.linear, convention=_LINEAR)
def linear_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.linear(x, W, b)``."""
    weight, bias = arg(args, kwargs, 1, "weight"), arg(args, kwargs, 2, "bias")
    return linear_cost(arg(args, kwargs, 0, "input"), tuple(weight.shape), bias is not None, out_tensor(output))


def _bilinear_cost(x1: torch.Tensor, weight_shape: tuple[int, ...], has_bias: bool, out: torch.Tensor) -> Cost:
    out_f, in1, in2 = weight_shape
    rows = x1.numel() // in1
    # y_k = x1^T A_k x2: in1*in2 MACs for A_k x2, then in1 for the dot with x1 (always dense MACs).
    dense = rows * out_f * (in1 * in2 + in1)
    return Cost(flops=out.numel() if has_bias else 0, synapses=(Synapse(dense_macs=dense),))


@register_rule(nn.Bilinear, convention=_BILINEAR)
def bilinear_module(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``nn.Bilinear``: multiplicative, so always counted as dense MACs."""
    x1 = arg(args, kwargs, 0, "input1")
    return _bilinear_cost(x1, tuple(module.weight.shape), module.bias is not None, out_tensor(output))


@register_rule(F.bilinear, convention=_BILINEAR)
def bilinear_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.bilinear``: always dense MACs."""
    weight, bias = arg(args, kwargs, 2, "weight"), arg(args, kwargs, 3, "bias")
    return _bilinear_cost(arg(args, kwargs, 0, "input1"), tuple(weight.shape), bias is not None, out_tensor(output))


class _Pair:
    """Both matmul operands carry events: ``sum_k colsum(A)_k * rowsum(B)_k`` (per broadcast batch index)."""

    def __init__(self, a2: torch.Tensor, b2: torch.Tensor) -> None:
        self.a_shape, self.b_shape = a2.shape, b2.shape

    def rows(self, ev_a: torch.Tensor, ev_b: torch.Tensor) -> torch.Tensor:
        """Accumulates per index of the broadcast batch dims (0-d for 2-d products)."""
        col = exact_sum(ev_a.reshape(self.a_shape), -2)  # [..., k]
        row = exact_sum(ev_b.reshape(self.b_shape), -1)  # [..., k]
        return (col * row).sum(-1)

    def __call__(self, ev_a: torch.Tensor, ev_b: torch.Tensor) -> torch.Tensor:
        return self.rows(ev_a, ev_b).sum()


def matmul_cost(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> Cost:
    """Cost of ``torch.matmul(a, b)`` with numpy broadcasting and 1-d operands."""
    a2 = a.unsqueeze(0) if a.dim() == 1 else a
    b2 = b.unsqueeze(-1) if b.dim() == 1 else b
    n, k, m = a2.shape[-2], a2.shape[-1], b2.shape[-1]
    batch = prod(torch.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    rep_a = batch // max(prod(a2.shape[:-2]), 1)
    rep_b = batch // max(prod(b2.shape[:-2]), 1)
    synapse = Synapse(
        dense_macs=batch * n * k * m,
        operand=activity(a), fanout=PerEvent(m * rep_a, trailing=1),
        operand_b=activity(b), fanout_b=PerEvent(n * rep_b, trailing=2),
        pair=_Pair(a2, b2),  # column/row sums broadcast over the batch dims like the product itself
    )
    return Cost(synapses=(synapse,), geometry={"in_channels": k, "out_channels": m, "kernel_elems": 1,
                                               "out_positions": 1, "frames": batch * n})


@register_rule(torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, name="matmul", convention=_MATMUL)
def matmul_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``torch.matmul`` / ``@``."""
    return matmul_cost(arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "other"), out_tensor(output))


@register_rule(torch.Tensor.__rmatmul__, name="matmul", convention=_MATMUL)
def rmatmul_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``b.__rmatmul__(a)`` = ``a @ b``."""
    return matmul_cost(args[1], args[0], out_tensor(output))


@register_rule(torch.mm, torch.Tensor.mm, torch.bmm, torch.Tensor.bmm, name="mm", convention=_MATMUL)
def mm_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``mm`` / ``bmm``."""
    return matmul_cost(arg(args, kwargs, 0, "input"), arg(args, kwargs, 1, "mat2"), out_tensor(output))


@register_rule(torch.addmm, torch.Tensor.addmm, torch.baddbmm, torch.Tensor.baddbmm, name="addmm", convention=_MATMUL)
def addmm_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``addmm`` / ``baddbmm``: the product plus one add per output element."""
    out = out_tensor(output)
    cost = matmul_cost(arg(args, kwargs, 1, "mat1"), arg(args, kwargs, 2, "mat2"), out)
    cost.flops = out.numel()
    return cost


@register_rule(F.grouped_mm, F.scaled_grouped_mm, torch._grouped_mm, torch._scaled_grouped_mm, name="grouped_mm",
               convention=_GROUPED)
def grouped_mm_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.grouped_mm``: each output element sums ``K`` products of its group (2-d x 2-d: ``K`` split in groups).

    Rows (or columns) beyond ``offs[-1]`` are counted too (reading ``offs`` would need a host sync).
    """
    a, b, out = arg(args, kwargs, 0, "mat_a"), arg(args, kwargs, 1, "mat_b"), out_tensor(output)
    inner = a.shape[-1] // out.shape[0] if a.dim() == 2 and b.dim() == 2 else a.shape[-1]
    return Cost(synapses=(Synapse(dense_macs=out.numel() * inner),))


@register_rule(F.scaled_mm, torch._scaled_mm, name="scaled_mm", convention=_GROUPED)
def scaled_mm_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.scaled_mm`` (low-precision ``A @ B`` with scales): ``M·K·N`` dense MACs."""
    a = arg(args, kwargs, 0, "mat_a")
    return Cost(synapses=(Synapse(dense_macs=out_tensor(output).numel() * a.shape[-1]),))

"""Attention: ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention`` (whole module).

SDPA with ``q [..., L, E]``, ``k [..., S, E]``, ``v [..., S, Ev]``:
``QK^T`` = ``batch*L*S*E`` MACs (q/k events counted like a matmul), ``A V`` = ``batch*L*S*Ev`` MACs
(events of ``v`` reach ``L`` outputs each), softmax and scaling 4 ops per score (+1 with a mask).

MultiheadAttention counts its projections as linear maps of ``query``/``key``/``value`` (so spiking
inputs give SOPs), the score and value products as dense MACs, the output projection, biases,
softmax and the optional weight averaging. The module rule covers every code path of the module
(fast path, ``need_weights``), so it counts the same under ``no_grad``/``eval``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.counting.costs import Cost, PerEvent, Synapse
from snnprof.counting.registry import register_rule
from snnprof.counting.rules._util import arg, prod
from snnprof.counting.rules.linear import linear_cost, matmul_cost

__all__: list[str] = []


def _sdpa_scores(q: torch.Tensor, k: torch.Tensor) -> Synapse:
    try:
        return matmul_cost(q, k.transpose(-2, -1), q).synapses[0]
    except RuntimeError:  # grouped-query attention: heads do not broadcast
        return Synapse(dense_macs=prod(q.shape[:-1]) * k.shape[-2] * q.shape[-1])


def _value_fanout(q: torch.Tensor, v: torch.Tensor) -> PerEvent:
    """Events of ``v`` reach every query row of their (batch, head), repeated over broadcast heads."""
    length = q.shape[-2]
    rep = max(prod(q.shape[:-2]) // max(prod(v.shape[:-2]), 1), 1)
    return PerEvent(length * rep)


@register_rule(F.scaled_dot_product_attention, name="sdpa")
def sdpa_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.scaled_dot_product_attention`` (every backend, CPU flash included)."""
    q, k, v = arg(args, kwargs, 0, "query"), arg(args, kwargs, 1, "key"), arg(args, kwargs, 2, "value")
    mask = arg(args, kwargs, 3, "attn_mask")
    rows = prod(q.shape[:-1])  # batch * heads * L
    s = k.shape[-2]
    scores = rows * s
    av = Synapse(dense_macs=scores * v.shape[-1], operand=None if isinstance(v, nn.Parameter) else v,
                 fanout=_value_fanout(q, v))
    per_score = 5 if mask is not None else 4
    return Cost(flops=scores * per_score, synapses=(_sdpa_scores(q, k), av))


def _mha_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    q = arg(args, kwargs, 0, "query")
    k = arg(args, kwargs, 1, "key", q)
    v = arg(args, kwargs, 2, "value", k)
    return q, k, v


@register_rule(nn.MultiheadAttention)
def mha_module(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``nn.MultiheadAttention``: projections (synaptic), scores, values, output projection."""
    q, k, v = _mha_inputs(args, kwargs)
    e, heads = module.embed_dim, module.num_heads
    unbatched = q.dim() == 2
    seq_dim = 0 if (unbatched or not module.batch_first) else 1
    n = 1 if unbatched else q.shape[1 - seq_dim]
    length, src = q.shape[seq_dim], k.shape[seq_dim]
    src += int(module.bias_k is not None) + int(module.add_zero_attn)
    has_bias = module.in_proj_bias is not None
    proj = [
        linear_cost(q, (e, module.embed_dim), has_bias, q.new_empty(0)),
        linear_cost(k, (e, module.kdim), has_bias, q.new_empty(0)),
        linear_cost(v, (e, module.vdim), has_bias, q.new_empty(0)),
    ]
    scores = n * heads * length * src
    core = Synapse(dense_macs=2 * n * length * src * e)
    out_proj = Synapse(dense_macs=n * length * e * e)
    bias_ops = (n * length * e + 2 * n * k.shape[seq_dim] * e) if has_bias else 0
    out_bias = n * length * e if module.out_proj.bias is not None else 0
    need_weights = arg(args, kwargs, 4, "need_weights", True)
    averaging = scores if need_weights and arg(args, kwargs, 6, "average_attn_weights", True) else 0
    flops = bias_ops + out_bias + 4 * scores + averaging
    synapses = tuple(p.synapses[0] for p in proj) + (core, out_proj)
    return Cost(flops=flops, synapses=synapses)


@register_rule(F.multi_head_attention_forward, name="multi_head_attention")
def mha_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.multi_head_attention_forward`` called directly (dense MACs of the whole block)."""
    q, k, _v = arg(args, kwargs, 0, "query"), arg(args, kwargs, 1, "key"), arg(args, kwargs, 2, "value")
    e, heads = arg(args, kwargs, 3, "embed_dim_to_check"), arg(args, kwargs, 4, "num_heads")
    unbatched = q.dim() == 2
    n = 1 if unbatched else q.shape[1]
    length, src = q.shape[0], k.shape[0]
    macs = n * e * e * (length + 2 * src) + 2 * n * length * src * e + n * length * e * e
    return Cost(flops=4 * n * heads * length * src, synapses=(Synapse(dense_macs=macs),))

"""Attention: ``F.scaled_dot_product_attention`` and ``nn.MultiheadAttention`` (whole module).

SDPA with ``q [..., L, E]``, ``k [..., S, E]``, ``v [..., S, Ev]``:
``QK^T`` = ``batch*L*S*E`` MACs (q/k events counted like a matmul), ``A V`` = ``batch*L*S*Ev`` MACs
(events of ``v`` reach ``L`` outputs each), softmax and scaling 4 ops per score (+1 with a mask).

Multi-head attention (``nn.MultiheadAttention`` and ``F.multi_head_attention_forward`` called
directly: one :class:`AttentionCall` and one :func:`attention_cost` serve both) with ``q [L, N, E]``,
``k [S, N, kdim]``, ``v [S, N, vdim]``: the projections are linear maps of ``query``/``key``/``value``
(``N*L*E*E``, ``N*S*kdim*E``, ``N*S*vdim*E`` MACs; spiking inputs give SOPs), the score and value
products ``2*N*L*S'*E`` dense MACs, the output projection ``N*L*E*E_out``, with
``S' = S + bias_kv + add_zero_attn`` (or the length of ``static_k``). ``flops``: projection biases
``N*L*E + 2*N*S*E``, output bias ``N*L*E_out``, softmax and scaling 4 per score (5 with an attention
or key-padding mask), weight averaging 1 per score when averaged weights are returned. The module
rule covers every code path of the module (fast path, ``need_weights``), so it counts the same
under ``no_grad``/``eval``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.counting.costs import Cost, PerEvent, Synapse
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import activity, arg, prod
from snnprof.counting.rules.linear import matmul_cost

__all__ = ["AttentionCall", "attention_cost"]


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


@register_rule(F.scaled_dot_product_attention, name="sdpa", convention=Convention(
    "attention", "SDPA: MACs `batch·L·S·(E+Ev)`; softmax and scale 4 per score (5 with a mask)"))
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


@dataclass(frozen=True)
class AttentionCall:
    """One multi-head attention call, in the terms of ``F.multi_head_attention_forward``.

    ``nn.MultiheadAttention`` and a direct call of the functional are both described by one of these
    and counted by :func:`attention_cost`, so the two always agree on the same weights.

    Attributes:
        query: ``[L, N, E]`` (``[N, L, E]`` when ``seq_dim`` is 1) or unbatched ``[L, E]``.
        key: ``[S, N, kdim]`` (layout as ``query``).
        value: ``[S, N, vdim]`` (layout as ``query``).
        seq_dim: the sequence dimension of the batched inputs (1 for a ``batch_first`` module).
        num_heads: attention heads.
        out_features: outputs of the output projection (``E`` for the module).
        in_bias: the q/k/v projections add a bias.
        out_bias: the output projection adds a bias.
        bias_kv: ``bias_k``/``bias_v`` append one key/value position.
        zero_attn: ``add_zero_attn`` appends one zero key/value position.
        static_len: source length of ``static_k``/``static_v`` when given (they replace the projected
            keys/values, which torch still computes).
        need_weights: the attention weights are returned (the softmax path, not SDPA).
        average: the returned weights are averaged over the heads.
        masked: a mask (attention or key padding) is added to the scores.
    """

    query: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    seq_dim: int
    num_heads: int
    out_features: int
    in_bias: bool
    out_bias: bool
    bias_kv: bool = False
    zero_attn: bool = False
    static_len: int | None = None
    need_weights: bool = True
    average: bool = True
    masked: bool = False


def _projection(x: torch.Tensor, embed: int) -> Synapse:
    """``x [..., d] -> [..., embed]``: a linear map of ``x`` (its events reach ``embed`` outputs each)."""
    return Synapse(dense_macs=x.numel() * embed, operand=activity(x), fanout=PerEvent(embed))


def attention_cost(call: AttentionCall) -> Cost:
    """Cost of one multi-head attention call (see the module docstring)."""
    q, k = call.query, call.key
    e = q.shape[-1]
    seq_dim = call.seq_dim if q.dim() == 3 else 0
    n = q.shape[1 - seq_dim] if q.dim() == 3 else 1
    length, src_in = q.shape[seq_dim], k.shape[seq_dim]
    src = (call.static_len if call.static_len is not None else src_in + int(call.bias_kv)) + int(call.zero_attn)
    scores = n * call.num_heads * length * src
    core = Synapse(dense_macs=2 * n * length * src * e)  # q k^T and weights x v, all heads together
    out_proj = Synapse(dense_macs=n * length * e * call.out_features)
    flops = (5 if call.masked else 4) * scores
    flops += (n * length * e + 2 * n * src_in * e) if call.in_bias else 0
    flops += n * length * call.out_features if call.out_bias else 0
    flops += scores if call.need_weights and call.average else 0
    projections = tuple(_projection(x, e) for x in (q, k, call.value))
    return Cost(flops=flops, synapses=(*projections, core, out_proj))


def _masked(attn_mask: Any, key_padding_mask: Any, need_weights: bool, is_causal: bool) -> bool:
    """Whether a mask is added to the scores (a causal hint without padding mask and weights drops it)."""
    if key_padding_mask is not None:
        return True
    return attn_mask is not None and not (is_causal and not need_weights)


_MHA = Convention(
    "attention", "multi-head attention: projections (synaptic), `2·N·L·S'·E` scores and values, output projection; "
    "biases 1 per element; 4 per score (5 with a mask), +1 per score averaging returned weights",
)


@register_rule(nn.MultiheadAttention, convention=_MHA)
def mha_module(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``nn.MultiheadAttention``: projections (synaptic), scores, values, output projection (every code path)."""
    q = arg(args, kwargs, 0, "query")
    need_weights, is_causal = arg(args, kwargs, 4, "need_weights", True), arg(args, kwargs, 7, "is_causal", False)
    masked = _masked(arg(args, kwargs, 5, "attn_mask"), arg(args, kwargs, 3, "key_padding_mask"), need_weights,
                     is_causal)
    return attention_cost(AttentionCall(
        query=q, key=arg(args, kwargs, 1, "key"), value=arg(args, kwargs, 2, "value"),
        seq_dim=1 if module.batch_first else 0, num_heads=module.num_heads,
        out_features=module.out_proj.weight.shape[0], in_bias=module.in_proj_bias is not None,
        out_bias=module.out_proj.bias is not None, bias_kv=module.bias_k is not None,
        zero_attn=bool(module.add_zero_attn), need_weights=bool(need_weights),
        average=bool(arg(args, kwargs, 6, "average_attn_weights", True)), masked=masked,
    ))


def _static_len(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int | None:
    static = arg(args, kwargs, 21, "static_k")
    static = static if static is not None else arg(args, kwargs, 22, "static_v")
    return None if static is None else int(static.shape[1])


@register_rule(F.multi_head_attention_forward, name="multi_head_attention", convention=_MHA)
def mha_op(args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """``F.multi_head_attention_forward`` called directly: the same count as the module on the same weights."""
    need_weights, is_causal = arg(args, kwargs, 15, "need_weights", True), arg(args, kwargs, 24, "is_causal", False)
    masked = _masked(arg(args, kwargs, 16, "attn_mask"), arg(args, kwargs, 14, "key_padding_mask"), need_weights,
                     is_causal)
    return attention_cost(AttentionCall(
        query=arg(args, kwargs, 0, "query"), key=arg(args, kwargs, 1, "key"), value=arg(args, kwargs, 2, "value"),
        seq_dim=0, num_heads=int(arg(args, kwargs, 4, "num_heads")),
        out_features=arg(args, kwargs, 11, "out_proj_weight").shape[0],
        in_bias=arg(args, kwargs, 6, "in_proj_bias") is not None,
        out_bias=arg(args, kwargs, 12, "out_proj_bias") is not None,
        bias_kv=arg(args, kwargs, 7, "bias_k") is not None, zero_attn=bool(arg(args, kwargs, 9, "add_zero_attn")),
        static_len=_static_len(args, kwargs), need_weights=bool(need_weights),
        average=bool(arg(args, kwargs, 23, "average_attn_weights", True)), masked=masked,
    ))

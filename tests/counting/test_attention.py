"""Attention: SDPA inside custom modules, nn.MultiheadAttention, and the transformer fast path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from tests.counting._helpers import binary, hooks_left, run


class Attn(nn.Module):
    """A rule-less module that calls SDPA (counted as ``<name>/sdpa.0``)."""

    def __init__(self, mask: bool = False) -> None:
        super().__init__()
        self.mask = mask

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(q.shape[-2], k.shape[-2], dtype=torch.bool).tril() if self.mask else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.mark.parametrize("mask", [False, True])
def test_sdpa_dense(mask: bool) -> None:
    B, H, L, S, E, Ev = 2, 3, 4, 5, 6, 7
    q, k, v = torch.randn(B, H, L, E), torch.randn(B, H, S, E), torch.randn(B, H, S, Ev)
    rec = run(Attn(mask), (q, k, v)).layer("(root)/sdpa.0")
    dense = B * H * L * S * E + B * H * L * S * Ev
    assert (rec.dense_macs, rec.macs, rec.sops) == (dense, dense, 0)
    assert rec.flops == 2 * dense + (5 if mask else 4) * B * H * L * S
    assert rec.input_kind == "dense"


def test_sdpa_spiking_qkv() -> None:
    """Spikformer-style attention: q, k, v are spikes; QK^T pairs are exact, v events reach L rows."""
    B, H, L, S, E = 1, 2, 3, 4, 5
    q, k, v = binary((B, H, L, E), seed=1), binary((B, H, S, E), seed=2), binary((B, H, S, E), seed=3)
    rec = run(Attn(), (q, k, v)).layer("(root)/sdpa.0")
    qk_pairs = int(torch.einsum("bhle,bhse->", q, k))
    assert rec.dense_macs == 2 * B * H * L * S * E
    # the A @ V product's left operand (softmax weights) is dense; v events each reach L outputs
    assert rec.macs == 0
    assert rec.sops == qk_pairs + int(v.sum()) * L


def _mha_expected(n: int, length: int, src: int, e: int, heads: int, *, kdim: int, vdim: int, bias: bool = True,
                  need_weights: bool = True) -> tuple[int, int]:
    """Rule docstring: projections (linear maps), scores and values (2*n*L*S*E), output projection, biases,
    softmax 4 per score and weight averaging 1 per score."""
    dense = n * length * e * e + n * src * kdim * e + n * src * vdim * e + 2 * n * length * src * e + n * length * e * e
    scores = n * heads * length * src
    flops = 2 * dense + 4 * scores + (scores if need_weights else 0)
    if bias:
        flops += n * length * e + 2 * n * src * e + n * length * e
    return dense, flops


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_self_attention(batch_first: bool, need_weights: bool) -> None:
    n, length, e, heads = 2, 5, 8, 2
    mha = nn.MultiheadAttention(e, heads, batch_first=batch_first)
    x = torch.randn(n, length, e) if batch_first else torch.randn(length, n, e)
    res = run(mha, (x, x, x, None, need_weights))
    assert res.uncalled == []  # out_proj never runs as a module: covered by the MHA rule
    rec = res.layers[0]
    expected = _mha_expected(n, length, length, e, heads, kdim=e, vdim=e, need_weights=need_weights)
    assert (rec.dense_macs, rec.flops) == expected
    assert rec.macs == rec.dense_macs


def test_mha_batch_first_is_layout_only() -> None:
    torch.manual_seed(0)
    a = nn.MultiheadAttention(8, 2, batch_first=False)
    b = nn.MultiheadAttention(8, 2, batch_first=True)
    b.load_state_dict(a.state_dict())
    x = torch.randn(4, 3, 8)
    ra, rb = run(a, (x, x, x)), run(b, (x.transpose(0, 1),) * 3)
    assert ra.totals.to_dict() | {"input_read_bytes": 0} == rb.totals.to_dict() | {"input_read_bytes": 0}


def test_mha_cross_attention_kdim_vdim_no_bias() -> None:
    n, length, src, e, heads, kdim, vdim = 2, 3, 6, 4, 2, 5, 7
    mha = nn.MultiheadAttention(e, heads, kdim=kdim, vdim=vdim, bias=False)
    q, k, v = torch.randn(length, n, e), torch.randn(src, n, kdim), torch.randn(src, n, vdim)
    rec = run(mha, (q, k, v)).layers[0]
    assert (rec.dense_macs, rec.flops) == _mha_expected(n, length, src, e, heads, kdim=kdim, vdim=vdim, bias=False)


def test_mha_unbatched() -> None:
    length, e, heads = 4, 6, 3
    mha = nn.MultiheadAttention(e, heads)
    x = torch.randn(length, e)
    rec = run(mha, (x, x, x)).layers[0]
    assert (rec.dense_macs, rec.flops) == _mha_expected(1, length, length, e, heads, kdim=e, vdim=e)


def test_mha_spiking_inputs_make_projection_sops() -> None:
    n, length, e = 1, 4, 6
    mha = nn.MultiheadAttention(e, 2)
    x = binary((length, n, e), seed=4)
    rec = run(mha, (x, x, x)).layers[0]
    # q, k and v projections are linear maps of spikes: events x E each; the rest stays dense
    assert rec.sops == 3 * int(x.sum()) * e
    assert rec.macs == 2 * n * length * length * e + n * length * e * e


def _encoder_expected(length: int, n: int, d: int, ff: int, heads: int) -> int:
    mha, _ = _mha_expected(n, length, length, d, heads, kdim=d, vdim=d)
    return mha + n * length * d * ff + n * length * ff * d


@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_encoder_layer_fast_path_is_counted(batch_first: bool) -> None:
    torch.manual_seed(0)
    length, n, d, ff, heads = 5, 2, 8, 16, 2
    enc = nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff, dropout=0.0, batch_first=batch_first).eval()
    x = torch.randn(n, length, d) if batch_first else torch.randn(length, n, d)
    before = torch.backends.mha.get_fastpath_enabled()
    with_grad = run(enc, x)
    with torch.no_grad():
        no_grad = run(enc, x)
    assert torch.backends.mha.get_fastpath_enabled() == before
    assert with_grad.to_dict() == no_grad.to_dict()
    assert no_grad.totals.dense_macs == _encoder_expected(length, n, d, ff, heads)
    rows = n * length
    # the encoder layer calls its attention with need_weights=False
    _, mha_flops = _mha_expected(n, length, length, d, heads, kdim=d, vdim=d, need_weights=False)
    flops = (mha_flops + 2 * rows * d * ff + rows * ff + rows * ff  # linear1 (+bias), F.relu
             + 2 * rows * ff * d + rows * d  # linear2 (+bias)
             + 2 * rows * d + 2 * 5 * rows * d)  # two residual adds, two LayerNorms
    assert no_grad.totals.flops == flops
    assert no_grad.layer("(root)/relu").flops == rows * ff
    assert no_grad.layer("self_attn").dense_macs > 0
    assert no_grad.uncalled == []
    assert hooks_left(enc) == []


@pytest.mark.parametrize("flag", [True, False])
def test_fast_path_flag_restored(flag: bool) -> None:
    before = torch.backends.mha.get_fastpath_enabled()
    try:
        torch.backends.mha.set_fastpath_enabled(flag)
        enc = nn.TransformerEncoderLayer(8, 2, dim_feedforward=8).eval()
        with torch.no_grad():
            run(enc, torch.randn(3, 1, 8))
        assert torch.backends.mha.get_fastpath_enabled() is flag
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


# ------------------------------------------------------------------ one mechanism for the module and the functional

MHA_CASES = {
    "self": {},
    "kdim-vdim": {"kdim": 5, "vdim": 7},
    "kdim-vdim-small": {"kdim": 3, "vdim": 2},
    "no-bias": {"bias": False},
    "bias-kv": {"add_bias_kv": True},
    "zero-attn": {"add_zero_attn": True},
    "everything": {"kdim": 5, "vdim": 7, "add_bias_kv": True, "add_zero_attn": True},
}
CALLS = {
    "weights": {},
    "no-weights": {"need_weights": False},
    "per-head-weights": {"average_attn_weights": False},
    "attn-mask": {"attn_mask": True},
    "padding-mask": {"key_padding_mask": True},
    "causal-hint": {"attn_mask": True, "is_causal": True, "need_weights": False},
}


def _mha_call(mha: nn.MultiheadAttention, length: int, src: int, n: int, call: dict, *, spikes: bool = False):
    """Inputs (seq-first) and keyword arguments of one module call."""
    gen = torch.Generator().manual_seed(3)

    def make(*shape: int) -> torch.Tensor:
        return (torch.rand(*shape, generator=gen) < 0.5).float() if spikes else torch.randn(*shape, generator=gen)

    q, k, v = make(length, n, mha.embed_dim), make(src, n, mha.kdim), make(src, n, mha.vdim)
    kwargs = {key: value for key, value in call.items() if key not in ("attn_mask", "key_padding_mask")}
    if call.get("attn_mask"):
        kwargs["attn_mask"] = torch.ones(length, src, dtype=torch.bool).tril()
    if call.get("key_padding_mask"):
        kwargs["key_padding_mask"] = torch.zeros(n, src, dtype=torch.bool)
    return (q, k, v), kwargs


class _ModuleCall(nn.Module):
    def __init__(self, mha: nn.MultiheadAttention, kwargs: dict) -> None:
        super().__init__()
        self.mha, self.kwargs = mha, kwargs

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self.mha(q, k, v, **self.kwargs)[0]


class _FunctionalCall(nn.Module):
    """``F.multi_head_attention_forward`` with the module's weights, as a user would call it."""

    def __init__(self, mha: nn.MultiheadAttention, kwargs: dict) -> None:
        super().__init__()
        self.mha, self.kwargs = mha, kwargs

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        m = self.mha
        separate = not m._qkv_same_embed_dim
        return F.multi_head_attention_forward(
            q, k, v, m.embed_dim, m.num_heads, m.in_proj_weight, m.in_proj_bias, m.bias_k, m.bias_v,
            m.add_zero_attn, 0.0, m.out_proj.weight, m.out_proj.bias, training=False,
            use_separate_proj_weight=separate, q_proj_weight=m.q_proj_weight, k_proj_weight=m.k_proj_weight,
            v_proj_weight=m.v_proj_weight, **self.kwargs,
        )[0]


def _mha_formula(n: int, length: int, src: int, e: int, heads: int, *, kdim: int, vdim: int, bias: bool = True,
                 bias_kv: bool = False, zero_attn: bool = False, weights: bool = True, average: bool = True,
                 masked: bool = False) -> tuple[int, int]:
    """Closed form: projections n*L*E*E + n*S*kdim*E + n*S*vdim*E, scores and values 2*n*L*S'*E with
    S' = S + bias_kv + zero_attn, output projection n*L*E*E; flops: 2 per MAC, biases n*L*E + 2*n*S*E and
    n*L*E, 4 per score (5 masked), 1 per score to average the returned weights."""
    s2 = src + bias_kv + zero_attn
    dense = n * length * e * e + n * src * kdim * e + n * src * vdim * e + 2 * n * length * s2 * e + n * length * e * e
    scores = n * heads * length * s2
    flops = 2 * dense + (5 if masked else 4) * scores + (scores if weights and average else 0)
    flops += (n * length * e + 2 * n * src * e + n * length * e) if bias else 0
    return dense, flops


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("case", list(MHA_CASES))
def test_mha_module_and_functional_agree_and_match_the_formula(case: str, call: str) -> None:
    torch.manual_seed(0)
    e, heads, n, length, src = 6, 2, 2, 3, 4
    mha = nn.MultiheadAttention(e, heads, **MHA_CASES[case]).eval()
    inputs, kwargs = _mha_call(mha, length, src, n, CALLS[call])
    module = run(_ModuleCall(mha, kwargs), inputs)
    functional = run(_FunctionalCall(mha, kwargs), inputs)
    assert module.layer("mha").dense_macs == functional.layer("(root)/multi_head_attention.0").dense_macs
    assert module.totals.to_dict() | {"params": 0} == functional.totals.to_dict() | {"params": 0}
    opts = MHA_CASES[case] | CALLS[call]
    weights = opts.get("need_weights", True)
    masked = bool(opts.get("key_padding_mask") or (opts.get("attn_mask") and not opts.get("is_causal")))
    expected = _mha_formula(n, length, src, e, heads, kdim=opts.get("kdim", e), vdim=opts.get("vdim", e),
                            bias=opts.get("bias", True), bias_kv=opts.get("add_bias_kv", False),
                            zero_attn=opts.get("add_zero_attn", False), weights=weights,
                            average=opts.get("average_attn_weights", True), masked=masked)
    assert (module.totals.dense_macs, module.totals.flops) == expected
    if weights:  # the softmax path runs bmm; SDPA's CPU kernel is not counted by FlopCounterMode
        with FlopCounterMode(display=False) as counter:
            _FunctionalCall(mha, kwargs)(*inputs)
        assert 2 * module.totals.dense_macs == counter.get_total_flops()


@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_module_and_functional_agree_on_spikes(batch_first: bool) -> None:
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(6, 2, kdim=4, vdim=5, batch_first=batch_first).eval()
    (q, k, v), kwargs = _mha_call(mha, 3, 4, 2, {}, spikes=True)
    module_in = tuple(t.transpose(0, 1) for t in (q, k, v)) if batch_first else (q, k, v)
    module = run(_ModuleCall(mha, kwargs), module_in).totals
    functional = run(_FunctionalCall(mha, kwargs), (q, k, v)).totals
    # each projection is a linear map of spikes: every event reaches E outputs
    assert module.sops == functional.sops == int(q.sum() + k.sum() + v.sum()) * 6
    assert (module.macs, module.dense_macs) == (functional.macs, functional.dense_macs)


def test_mha_functional_static_kv() -> None:
    """static_k/static_v replace the projected keys/values (still computed by torch) and set the source length."""
    torch.manual_seed(0)
    e, heads, n, length, src, static = 6, 2, 2, 3, 4, 7
    mha = nn.MultiheadAttention(e, heads).eval()
    q, k = torch.randn(length, n, e), torch.randn(src, n, e)
    sk, sv = torch.randn(n * heads, static, e // heads), torch.randn(n * heads, static, e // heads)

    def body(q: torch.Tensor, k: torch.Tensor, sk: torch.Tensor, sv: torch.Tensor) -> torch.Tensor:
        return F.multi_head_attention_forward(
            q, k, k, e, heads, mha.in_proj_weight, mha.in_proj_bias, None, None, False, 0.0, mha.out_proj.weight,
            mha.out_proj.bias, training=False, static_k=sk, static_v=sv)[0]

    class Body(nn.Module):
        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return body(*args)

    rec = run(Body(), (q, k, sk, sv)).layer("(root)/multi_head_attention.0")
    projections = n * length * e * e + 2 * n * src * e * e
    dense = projections + 2 * n * length * static * e + n * length * e * e
    assert rec.dense_macs == dense
    scores = n * heads * length * static
    assert rec.flops == 2 * dense + 5 * scores + (n * length * e + 2 * n * src * e) + n * length * e

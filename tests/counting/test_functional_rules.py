"""Functional pooling, normalisation, interpolation, losses and the other name/op rules, in closed form.

Each expected value is derived here from the rule's convention; a module and its functional form
must agree on the same call (one rule serves both), and ``FlopCounterMode`` must agree where it
counts the op (products it runs as ``mm``/``bmm``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from snnprof.counting.registry import find_name_rule, name_rule_names, rule_convention
from tests.counting._helpers import Fn, run


def _r(*shape: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 2 + 0.1


def _flops(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor) -> int:
    res = run(Fn(fn), inputs)
    assert res.totals.dense_macs == 0
    return res.totals.flops


# (label, call, input shape, expected flops) -- expected from the convention written next to it
X = (2, 3, 8, 8)  # 384 elements
POOLS = [
    # kernel size per output element: 2x2 windows, output [2, 3, 4, 4] = 96
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 2), X, 4 * 96),
    ("avg_pool1d", lambda x: F.avg_pool1d(x, 3, stride=1), (2, 3, 8), 3 * 2 * 3 * 6),
    ("avg_pool3d", lambda x: F.avg_pool3d(x, 2), (1, 2, 4, 4, 4), 8 * 16),
    ("lp_pool2d", lambda x: F.lp_pool2d(x, 2, 2), X, 4 * 96),
    ("lp_pool1d", lambda x: F.lp_pool1d(x, 2, 4), (2, 3, 8), 4 * 12),
    # kernel size - 1 per output element
    ("max_pool2d", lambda x: F.max_pool2d(x, 2), X, 3 * 96),
    ("max_pool2d indices", lambda x: F.max_pool2d(x, 2, return_indices=True)[0], X, 3 * 96),
    ("max_pool1d", lambda x: F.max_pool1d(x, 4), (2, 3, 8), 3 * 12),
    ("max_pool3d", lambda x: F.max_pool3d(x, 2), (1, 2, 4, 4, 4), 7 * 16),
    ("fractional_max_pool2d", lambda x: F.fractional_max_pool2d(x, 2, output_size=3), X, 3 * 2 * 3 * 9),
    # adaptive: one op per input element
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, 1), X, 384),
    ("adaptive_max_pool1d", lambda x: F.adaptive_max_pool1d(x, 2), (2, 3, 8), 48),
    ("adaptive_max_pool2d indices", lambda x: F.adaptive_max_pool2d(x, 2, return_indices=True)[0], X, 384),
]
NORMS = [
    # BatchNorm: 2 per element with running statistics, 4 computing batch statistics
    ("batch_norm eval", lambda x: F.batch_norm(x, torch.zeros(3), torch.ones(3)), X, 2 * 384),
    ("batch_norm train", lambda x: F.batch_norm(x, None, None, training=True), X, 4 * 384),
    # 5 per element with affine, 3 without
    ("layer_norm", lambda x: F.layer_norm(x, (8,)), X, 3 * 384),
    ("layer_norm affine", lambda x: F.layer_norm(x, (8,), torch.ones(8)), X, 5 * 384),
    ("group_norm", lambda x: F.group_norm(x, 3), X, 3 * 384),
    ("group_norm affine", lambda x: F.group_norm(x, 3, bias=torch.zeros(3)), X, 5 * 384),
    ("instance_norm", F.instance_norm, X, 3 * 384),
    ("instance_norm affine", lambda x: F.instance_norm(x, weight=torch.ones(3)), X, 5 * 384),
    ("rms_norm", lambda x: F.rms_norm(x, (8,)), X, 3 * 384),
    ("rms_norm affine", lambda x: F.rms_norm(x, (8,), torch.ones(8)), X, 5 * 384),
    ("local_response_norm", lambda x: F.local_response_norm(x, 2), X, 3 * 384),
    ("normalize", lambda x: F.normalize(x, dim=1), X, 3 * 384),
]
RESAMPLING = [
    # per output element: nearest 0, linear 3, bilinear 7, bicubic 31, trilinear 15; area: per input element
    ("interpolate nearest", lambda x: F.interpolate(x, scale_factor=2), X, 0),
    ("interpolate nearest-exact", lambda x: F.interpolate(x, scale_factor=2, mode="nearest-exact"), X, 0),
    ("interpolate linear", lambda x: F.interpolate(x, scale_factor=2, mode="linear"), (2, 3, 8), 3 * 96),
    ("interpolate bilinear", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), X, 7 * 4 * 384),
    ("interpolate bicubic", lambda x: F.interpolate(x, size=(5, 6), mode="bicubic"), X, 31 * 2 * 3 * 30),
    ("interpolate trilinear", lambda x: F.interpolate(x, scale_factor=2, mode="trilinear"), (1, 1, 2, 2, 2),
     15 * 64),
    ("interpolate area down", lambda x: F.interpolate(x, size=(2, 2), mode="area"), X, 384),
    ("interpolate area up", lambda x: F.interpolate(x, size=(16, 16), mode="area"), X, 384),
    ("upsample", lambda x: F.upsample(x, scale_factor=2, mode="bilinear"), X, 7 * 4 * 384),
    ("upsample_nearest", lambda x: F.upsample_nearest(x, scale_factor=2), X, 0),
    ("upsample_bilinear", lambda x: F.upsample_bilinear(x, scale_factor=2), X, 7 * 4 * 384),
    # grid_sample: the filter per output element (4-D bilinear 7, 5-D "bilinear" = trilinear 15)
    ("grid_sample", lambda x: F.grid_sample(x, torch.zeros(2, 5, 6, 2), align_corners=False), X, 7 * 2 * 3 * 30),
    ("grid_sample nearest", lambda x: F.grid_sample(x, torch.zeros(2, 5, 6, 2), mode="nearest",
                                                    align_corners=False), X, 0),
    ("grid_sample 3d", lambda x: F.grid_sample(x, torch.zeros(1, 2, 2, 2, 3), align_corners=False),
     (1, 2, 4, 4, 4), 15 * 2 * 8),
]


@pytest.mark.filterwarnings("ignore:`nn.functional.upsample")  # the deprecated forms are counted too
@pytest.mark.parametrize(("label", "call", "shape", "expected"), POOLS + NORMS + RESAMPLING,
                         ids=[c[0] for c in POOLS + NORMS + RESAMPLING])
def test_functional_rules_closed_form(label: str, call: Callable, shape: tuple[int, ...], expected: int) -> None:
    assert _flops(call, _r(*shape)) == expected


MODES = ["nearest", "nearest-exact", "bilinear", "bicubic", "area"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("size", [None, (3, 5)])
def test_upsample_module_and_interpolate_agree(mode: str, size: tuple[int, int] | None) -> None:
    x = _r(1, 2, 4, 4)
    kw = {"size": size} if size else {"scale_factor": 2}
    module = run(nn.Upsample(mode=mode, **kw), x).totals.flops
    functional = _flops(lambda t: F.interpolate(t, mode=mode, **kw), x)
    out = (size[0] * size[1]) if size else 64
    expected = {"nearest": 0, "nearest-exact": 0, "bilinear": 7 * 2 * out, "bicubic": 31 * 2 * out, "area": 32}[mode]
    assert module == functional == expected


def test_antialias_downsampling_warns() -> None:
    res = run(Fn(lambda t: F.interpolate(t, size=(2, 2), mode="bilinear", antialias=True)), _r(1, 1, 8, 8))
    assert res.totals.flops == 7 * 4
    assert any("antialiased bilinear" in w for w in res.warnings)


@pytest.mark.parametrize(("module", "call"), [
    (nn.AvgPool2d(2), lambda x: F.avg_pool2d(x, 2)),
    (nn.MaxPool2d(3, 1, 1), lambda x: F.max_pool2d(x, 3, 1, 1)),
    (nn.AdaptiveAvgPool2d(2), lambda x: F.adaptive_avg_pool2d(x, 2)),
    (nn.LPPool2d(2, 2), lambda x: F.lp_pool2d(x, 2, 2)),
    (nn.BatchNorm2d(3).eval(), lambda x: F.batch_norm(x, torch.zeros(3), torch.ones(3), torch.ones(3), torch.zeros(3))),
    (nn.BatchNorm2d(3).train(), lambda x: F.batch_norm(x, torch.zeros(3), torch.ones(3), training=True)),
    (nn.LayerNorm(8), lambda x: F.layer_norm(x, (8,), torch.ones(8), torch.zeros(8))),
    (nn.GroupNorm(3, 3), lambda x: F.group_norm(x, 3, torch.ones(3), torch.zeros(3))),
    (nn.InstanceNorm2d(3), F.instance_norm),
    (nn.LocalResponseNorm(2), lambda x: F.local_response_norm(x, 2)),
])
def test_modules_and_functionals_agree(module: nn.Module, call: Callable) -> None:
    x = _r(*X)
    assert run(module, x).totals.flops == _flops(call, x)


def test_direct_torch_calls_with_other_argument_orders() -> None:
    x, ones = _r(*X), torch.ones(3)
    assert _flops(lambda t: torch.instance_norm(t, ones, None, None, None, True, 0.1, 1e-5, False), x) == 5 * 384
    assert _flops(lambda t: torch.instance_norm(t, None, None, None, None, True, 0.1, 1e-5, False), x) == 3 * 384
    weight, idx = _r(10, 3), torch.tensor([1, 2, 4, 5])
    assert _flops(lambda i, w: F.embedding_bag(i, w, torch.tensor([0, 2])), idx, weight) == 4 * 3
    assert _flops(lambda w, i: torch.embedding_bag(w, i, torch.tensor([0, 2]))[0], weight, idx) == 4 * 3


def test_batchnorm_without_running_stats_in_eval_computes_batch_statistics() -> None:
    bn = nn.BatchNorm2d(3, track_running_stats=False).eval()
    assert run(bn, _r(*X)).totals.flops == 4 * 384  # like F.batch_norm(training=True), which it calls


# ------------------------------------------------------------------------------------------------ elementwise

def test_max_min_reduce_or_compare() -> None:
    x, y = _r(4, 5), _r(4, 5)
    assert _flops(lambda t: t.max(), x) == 20  # a reduction: one op per input element
    assert _flops(lambda t: t.min(dim=1).values, x) == 20
    assert _flops(torch.max, x, y) == 20  # elementwise of two tensors: per output element
    assert _flops(lambda t: t.amax(1), x) == 20


def test_fold_sums_every_input_element_unfold_moves_data() -> None:
    cols = _r(1, 2 * 4, 9)  # 2 channels, 2x2 kernel, 3x3 blocks over a 4x4 image (overlapping)
    assert _flops(lambda c: F.fold(c, (4, 4), 2), cols) == 72
    assert _flops(lambda x: F.unfold(x, 2), _r(1, 2, 4, 4)) == 0


@pytest.mark.parametrize(("fn", "per"), [(torch.bucketize, None), (torch.searchsorted, None)])
def test_binary_search(fn: Callable, per: None) -> None:
    boundaries, x = torch.tensor([0.5, 1.0, 1.5, 2.0, 2.5]), _r(3, 4)
    args = (x, boundaries) if fn is torch.bucketize else (boundaries, x)
    assert _flops(fn, *args) == math.ceil(math.log2(5 + 1)) * 12


def test_gumbel_softmax() -> None:
    assert _flops(F.gumbel_softmax, _r(2, 5)) == 13 * 10


@pytest.mark.parametrize(("call", "per"), [
    (F.relu, 1), (F.prelu, 1), (F.softsign, 1), (F.tanhshrink, 1), (F.logsigmoid, 4), (F.glu, 4),
    (partial(F.softmin, dim=1), 3), (torch.exp, 4), (torch.sqrt, 1),
])
def test_activations_and_arithmetic(call: Callable, per: int) -> None:
    x = _r(2, 6)
    args = (x, torch.ones(1)) if call is F.prelu else (x,)
    out = call(*args)
    assert _flops(call, *args) == per * out.numel()


def test_every_name_rule_has_a_convention() -> None:
    missing = [n for n in name_rule_names() if rule_convention(find_name_rule(n)) is None]
    assert missing == []


# ------------------------------------------------------------------------------------------------ losses

B, C = 4, 5
LOSSES = [
    # (label, call, input and target prepared outside the counted call, ops per input element: rules/losses.py)
    ("l1_loss", F.l1_loss, None, 3),
    ("mse_loss", F.mse_loss, None, 3),
    ("smooth_l1_loss", F.smooth_l1_loss, None, 5),
    ("huber_loss", F.huber_loss, None, 5),
    ("soft_margin_loss", F.soft_margin_loss, lambda x, y: (x, y.sign()), 11),
    ("binary_cross_entropy", F.binary_cross_entropy, lambda x, y: (x / 3, y.abs() / 3), 11),
    ("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits, lambda x, y: (x, y / 3), 13),
    ("kl_div", partial(F.kl_div, reduction="batchmean"), lambda x, y: (x.log(), y.abs()), 6),
    ("poisson_nll_loss", F.poisson_nll_loss, None, 7),
    ("gaussian_nll_loss", lambda x, var: F.gaussian_nll_loss(x, x, var), lambda x, y: (x, y.abs() + 0.1), 9),
    ("multilabel_soft_margin_loss", F.multilabel_soft_margin_loss, lambda x, y: (x, (y > 1).float()), 13),
    ("hinge_embedding_loss", F.hinge_embedding_loss, lambda x, y: (x, y.sign()), 4),
    ("triplet_margin_loss", lambda x, y: F.triplet_margin_loss(x, y, y), None, 7),
    ("triplet_margin_with_distance_loss", lambda x, y: F.triplet_margin_with_distance_loss(x, y, y), None, 7),
]


@pytest.mark.parametrize(("label", "call", "prep", "per"), LOSSES, ids=[c[0] for c in LOSSES])
def test_losses_per_input_element(label: str, call: Callable, prep: Callable | None, per: int) -> None:
    x, y = _r(B, C), _r(B, C) - 1
    if prep is not None:
        x, y = prep(x, y)
    assert _flops(call, x, y) == per * B * C


def test_class_indexed_losses() -> None:
    logits, target = _r(B, C), torch.tensor([0, 3, 1, 4])
    assert _flops(F.cross_entropy, logits, target) == 3 * B * C + 2 * B
    assert _flops(F.nll_loss, logits, target) == 2 * B
    assert _flops(F.multi_margin_loss, logits, target) == 4 * B * C
    x1, x2, y = _r(B), _r(B), torch.ones(B)
    assert _flops(F.margin_ranking_loss, x1, x2, y) == 5 * B
    x1, x2 = _r(B, C), _r(B, C)
    assert _flops(F.cosine_embedding_loss, x1, x2, y) == 7 * B * C
    targets = torch.tensor([[0, 2, -1, 1, 3]] * B)
    assert _flops(F.multilabel_margin_loss, logits, targets) == 4 * B * C


def test_ctc_loss_lattice() -> None:
    steps, labels = 6, 2
    log_probs = _r(steps, B, C).log_softmax(2)
    targets = torch.ones(B, labels, dtype=torch.long)
    call = Fn(lambda lp, t: F.ctc_loss(lp, t, torch.full((B,), steps), torch.full((B,), labels)))
    assert run(call, (log_probs, targets)).totals.flops == 6 * steps * B * (2 * labels + 1)


def test_distances() -> None:
    x1, x2 = _r(B, C), _r(1, C)  # broadcast to [B, C]
    assert _flops(F.cosine_similarity, x1, x2) == 6 * B * C
    assert _flops(F.pairwise_distance, x1, x2) == 3 * B * C
    assert _flops(F.pdist, x1) == 3 * (B * (B - 1) // 2) * C
    assert run(nn.CosineSimilarity(), (x1, x2)).totals.flops == 6 * B * C
    assert run(nn.PairwiseDistance(), (x1, x2)).totals.flops == 3 * B * C


def test_triplet_loss_with_a_module_distance_counts_the_module() -> None:
    loss = nn.TripletMarginWithDistanceLoss(distance_function=nn.PairwiseDistance())
    res = run(loss, (_r(B, C), _r(B, C), _r(B, C)))
    # the distance module runs twice (3 per element each); the loss keeps margin, max and reduction
    assert res.layer("distance_function").flops == 2 * 3 * B * C
    assert res.totals.flops == 2 * 3 * B * C + 1 * B * C


# ------------------------------------------------------------------------------------------------ products


def _flop_counter_macs(fn: Callable[[], torch.Tensor]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def test_linear_cross_entropy_module_and_functional() -> None:
    x, target = _r(3, 4), torch.tensor([0, 4, 2])
    loss = nn.LinearCrossEntropyLoss(4, 5, bias=True)
    module = run(loss, (x, target)).totals
    weight, bias = loss.linear.weight, loss.linear.bias
    functional = run(Fn(lambda a, t: F.linear_cross_entropy(a, weight, t, linear_bias=bias)), (x, target)).totals
    rows, logits = 3, 5
    assert module.dense_macs == functional.dense_macs == rows * 4 * logits
    assert module.flops == functional.flops == 2 * rows * 4 * logits + rows * logits + 3 * rows * logits + 2 * rows
    assert module.dense_macs == _flop_counter_macs(lambda: F.linear_cross_entropy(x, weight, target))


def test_conv_tbc_is_a_convolution_over_time() -> None:
    steps, batch, c_in, c_out, k, pad = 7, 2, 3, 4, 3, 1
    x, w, b = _r(steps, batch, c_in), _r(k, c_in, c_out), _r(c_out)
    rec = run(Fn(lambda x, w, b: F.conv_tbc(x, w, b, pad)), (x, w, b)).layer("(root)/conv_tbc.0")
    out_steps = steps + 2 * pad - k + 1
    dense = batch * out_steps * c_out * c_in * k
    assert (rec.dense_macs, rec.flops) == (dense, 2 * dense + batch * out_steps * c_out)
    # spikes: each event at step t reaches c_out outputs for every tap that lands inside the output
    spikes = (torch.rand(steps, batch, c_in, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    rec = run(Fn(lambda x, w, b: F.conv_tbc(x, w, b, pad)), (spikes, w, b)).layer("(root)/conv_tbc.0")
    reach = [sum(0 <= t - tap + pad < out_steps for tap in range(k)) for t in range(steps)]
    expected = sum(int(spikes[t].sum()) * reach[t] * c_out for t in range(steps))
    assert (rec.macs, rec.sops) == (0, expected)


def test_affine_grid_is_a_batched_product() -> None:
    theta = _r(2, 2, 3)
    rec = run(Fn(lambda th: F.affine_grid(th, [2, 1, 4, 5], align_corners=False)), theta).layer(
        "(root)/affine_grid.0")
    assert rec.dense_macs == 2 * 4 * 5 * 2 * 3  # [N, H*W, 3] x [N, 3, 2]


def test_grouped_mm() -> None:
    a = _r(32, 8).to(torch.bfloat16)
    b = _r(2, 16, 8).to(torch.bfloat16).transpose(-2, -1)  # [G, K, N], column-major as the kernel wants
    offs = torch.tensor([16, 32], dtype=torch.int32)
    rec = run(Fn(lambda a, b, o: F.grouped_mm(a, b, offs=o)), (a, b, offs)).layer("(root)/grouped_mm.0")
    assert rec.dense_macs == 32 * 8 * 16  # every row of a meets the K x N matrix of its group

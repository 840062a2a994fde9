"""Pool folding: a synaptic layer fed by average/sum-pooled spikes, counted on the pre-pool spikes.

The closed form used throughout: with pools folded, a layer's SOPs are

    ``Σ_p spike[p] · Σ_{q ∋ p} F[q]  =  Σ_q F[q] · (spikes in window q)``,

i.e. the exact SOPs of the layer on the **window-count** tensor (a sum pool of the spike
indicator, counted by value). The window counts are computed here with explicit loops over the
pooling formula, independently of the engine, and the layer's fan-out ``F`` by brute force.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

from snnprof.config import parse_config
from snnprof.counting import Profiler, native, profile
from snnprof.counting import folding as folding_mod
from snnprof.counting.merge import merge_results
from snnprof.counting.results import ProfileResult
from snnprof.workload import make_profiler
from tests.counting._helpers import Fn, binary, conv_sops_bruteforce


@pytest.fixture(params=["native", "torch"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the native statistics and with their Torch fallback."""
    if request.param == "torch":
        monkeypatch.setattr(native, "_load", lambda: "disabled in this test")
    return request.param


def window_counts(spikes: torch.Tensor, windows: list[list[tuple[int, int]]]) -> torch.Tensor:
    """Spikes (nonzeros) in each window: ``[*lead, *out]`` by explicit loops (``windows`` per pooled dim)."""
    dims = len(windows)
    lead = spikes.shape[: spikes.dim() - dims]
    ind = (spikes != 0).double().reshape(-1, *spikes.shape[spikes.dim() - dims :])
    out = torch.zeros(ind.shape[0], *(len(w) for w in windows), dtype=torch.float64)
    for idx in torch.cartesian_prod(*(torch.arange(len(w)) for w in windows)).reshape(-1, dims).tolist():
        box = tuple(slice(*windows[d][i]) for d, i in enumerate(idx))
        out[(slice(None), *idx)] = ind[(slice(None), *box)].sum(tuple(range(1, dims + 1)))
    return out.reshape(*lead, *out.shape[1:])


def avg_windows(size: int, k: int, s: int, p: int, ceil_mode: bool = False) -> list[tuple[int, int]]:
    """Windows of an average pool along one dim: output i reads ``[i·s − p, i·s − p + k)`` ∩ the input."""
    span = size + 2 * p - k
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:  # torch: the last window must start inside input or left pad
        out -= 1
    return [(max(i * s - p, 0), min(i * s - p + k, size)) for i in range(out)]


def adaptive_windows(size: int, out: int) -> list[tuple[int, int]]:
    """Windows of an adaptive pool: ``[floor(i·n/m), ceil((i+1)·n/m))``."""
    return [((i * size) // out, math.ceil((i + 1) * size / out)) for i in range(out)]


# ----------------------------------------------------------------------------- by hand


class PoolConv(nn.Module):
    def __init__(self, pool: nn.Module, conv: nn.Module) -> None:
        super().__init__()
        self.pool, self.conv = pool, conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


def test_folded_pool_by_hand(engine: str):
    # 6x6 spikes -> AvgPool2d(2) -> 3x3 -> Conv2d(1, 3, k3, p1). Per dim, pooled positions 0, 1, 2
    # reach 2, 3, 2 output positions; each output channel (3) once.
    x = torch.zeros(1, 1, 6, 6)
    for i, j in [(0, 0), (1, 1), (2, 3), (5, 5), (4, 1)]:
        x[0, 0, i, j] = 1.0
    torch.manual_seed(0)
    net = PoolConv(nn.AvgPool2d(2), nn.Conv2d(1, 3, 3, padding=1, bias=False))
    # spikes (0,0), (1,1) -> window (0,0): 2·2·2; (2,3) -> (1,1): 3·3; (5,5) -> (2,2): 2·2; (4,1) -> (2,0): 2·2
    by_hand = 3 * (2 * (2 * 2) + 3 * 3 + 2 * 2 + 2 * 2)
    assert by_hand == 75
    dense = 3 * 9 * 1 * 9  # C_out · positions · C_in · kernel
    default = profile(net, x)
    folded = profile(net, x, fold_pooling=True)
    rec, frec = default.layer("conv"), folded.layer("conv")
    assert (rec.input_kind, rec.macs, rec.sops) == ("dense", dense, 0)  # pooled values 0.25 and 0.5: dense
    assert (frec.input_kind, frec.macs, frec.sops) == ("spike (folded)", 0, by_hand)
    for r in (rec, frec):
        assert (r.folded_calls, r.macs_unfolded, r.sops_unfolded, r.macs_folded, r.sops_folded) == (
            1, dense, 0, 0, by_hand)
        assert r.folded_kinds == {"dense": 1}
    assert frec.dense_macs == rec.dense_macs == dense and frec.sops_rate == rec.sops_rate == 0.0
    assert frec.flops == rec.flops
    assert folded.fold_pooling and not default.fold_pooling
    assert (folded.totals.macs, folded.totals.sops) == (0, by_hand)
    assert (default.totals.macs_folded, default.totals.sops_folded) == (0, by_hand)


def test_overlapping_windows_count_each_window(engine: str):
    # AvgPool1d(3, stride 2, pad 1) on 7 positions -> 4 windows [0,2) [1,4) [3,6) [5,7); a Linear(4, 5)
    # reaches 5 outputs from each. Position p lies in 1 or 2 windows: counts per position 1,2,1,2,1,2,1.
    x = torch.tensor([[[1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0]]])
    net = PoolConv(nn.AvgPool1d(3, 2, 1), nn.Linear(4, 5))
    windows_of = [1, 2, 1, 2, 1, 2, 1]
    by_hand = 5 * sum(w for w, s in zip(windows_of, x.view(-1).tolist(), strict=True) if s)
    assert by_hand == 5 * (1 + 2 + 2 + 2 + 1)
    assert profile(net, x, fold_pooling=True).layer("conv").sops == by_hand


# ----------------------------------------------------------------------------- geometries x consumers

_POOLS: list[tuple[str, Callable[[], nn.Module], tuple[int, ...], Callable[[tuple[int, ...]], list]]] = [
    ("AvgPool1d(2)", lambda: nn.AvgPool1d(2), (2, 3, 9), lambda s: [avg_windows(s[-1], 2, 2, 0)]),
    ("AvgPool1d(3,2,1,ceil)", lambda: nn.AvgPool1d(3, 2, 1, ceil_mode=True), (2, 3, 10),
     lambda s: [avg_windows(s[-1], 3, 2, 1, True)]),
    ("AvgPool2d(2)", lambda: nn.AvgPool2d(2), (2, 3, 8, 6), lambda s: [avg_windows(n, 2, 2, 0) for n in s[-2:]]),
    ("AvgPool2d(3,2,1)", lambda: nn.AvgPool2d(3, 2, 1), (2, 3, 9, 7),
     lambda s: [avg_windows(n, 3, 2, 1) for n in s[-2:]]),
    ("AvgPool2d((2,3),(1,2))", lambda: nn.AvgPool2d((2, 3), (1, 2), count_include_pad=False), (2, 2, 6, 7),
     lambda s: [avg_windows(s[-2], 2, 1, 0), avg_windows(s[-1], 3, 2, 0)]),
    ("AvgPool3d(2)", lambda: nn.AvgPool3d(2), (1, 2, 4, 6, 4), lambda s: [avg_windows(n, 2, 2, 0) for n in s[-3:]]),
    ("AdaptiveAvgPool2d((3,2))", lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 7, 5),
     lambda s: [adaptive_windows(s[-2], 3), adaptive_windows(s[-1], 2)]),
    ("AdaptiveAvgPool1d(4)", lambda: nn.AdaptiveAvgPool1d(4), (2, 3, 10), lambda s: [adaptive_windows(s[-1], 4)]),
]


def _conv_for(dims: int, channels: int) -> nn.Module:
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    return conv(channels, 4, 3, padding=1, stride=1)


def _expected_conv(counts: torch.Tensor, dims: int) -> int:
    flat = counts.reshape(-1, *counts.shape[counts.dim() - dims - 1 :])
    out_spatial = counts.shape[counts.dim() - dims :]
    return conv_sops_bruteforce(flat, 4, 3, out_spatial, padding=1)


@pytest.mark.parametrize(("label", "make", "shape", "windows_of"), _POOLS, ids=[p[0] for p in _POOLS])
def test_folded_conv_equals_sops_on_window_counts(engine: str, label: str, make: Callable, shape: tuple[int, ...],
                                                 windows_of: Callable):
    dims = len(windows_of(shape))
    x = binary(shape, p=0.3, seed=1) * 2.74  # scaled spikes, as OTTT's
    net = PoolConv(make(), _conv_for(dims, shape[1]))
    counts = window_counts(x, windows_of(shape))
    result = profile(net, x, fold_pooling=True)
    assert result.layer("conv").sops == _expected_conv(counts, dims)
    assert result.layer("conv").macs == 0


@pytest.mark.parametrize(("label", "make", "shape", "windows_of"), _POOLS, ids=[p[0] for p in _POOLS])
def test_folded_linear_after_flatten(engine: str, label: str, make: Callable, shape: tuple[int, ...],
                                     windows_of: Callable):
    x = binary(shape, p=0.4, seed=2)
    counts = window_counts(x, windows_of(shape))
    features = math.prod(counts.shape[1:])
    net = nn.Sequential(make(), nn.Flatten(), nn.Linear(features, 6))
    result = profile(net, x, fold_pooling=True)
    assert result.layer("2").sops == 6 * int(counts.sum())  # every window count reaches all 6 outputs


_ROUTES: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = [
    ("F.avg_pool2d + flatten", lambda x: torch.flatten(F.avg_pool2d(x, 2), 1)),
    ("F.avg_pool2d + view", lambda x: F.avg_pool2d(x, 2).view(x.shape[0], -1)),
    ("F.avg_pool2d + reshape + contiguous", lambda x: F.avg_pool2d(x, 2).contiguous().reshape(x.shape[0], -1)),
    ("sum pool (x4) + flatten", lambda x: (F.avg_pool2d(x, 2) * 4).flatten(1)),
    ("sum pool (4*) + flatten", lambda x: (4.0 * F.avg_pool2d(x, 2)).flatten(1)),
    ("F.adaptive_avg_pool2d + squeeze", lambda x: F.adaptive_avg_pool2d(x, (4, 3)).flatten(2).flatten(1)),
]


@pytest.mark.parametrize(("label", "route"), _ROUTES, ids=[r[0] for r in _ROUTES])
def test_functional_pools_and_reshapes_are_followed(engine: str, label: str, route: Callable):
    x = binary((3, 2, 8, 6), p=0.35, seed=3)
    adaptive = "adaptive" in label
    windows = ([adaptive_windows(8, 4), adaptive_windows(6, 3)] if adaptive
               else [avg_windows(8, 2, 2, 0), avg_windows(6, 2, 2, 0)])
    counts = window_counts(x, windows)
    net = nn.Sequential(Fn(route), nn.Linear(math.prod(counts.shape[1:]), 5))
    rec = profile(net, x, fold_pooling=True).layer("1")
    assert (rec.sops, rec.macs, rec.folded_calls) == (5 * int(counts.sum()), 0, 1)


def test_functional_consumers(engine: str):
    x = binary((2, 3, 8, 8), p=0.3, seed=4)
    torch.manual_seed(0)
    weight, fc = torch.randn(4, 3, 3, 3), torch.randn(7, 3 * 16)

    def route(t: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(t, 2)
        return F.conv2d(pooled, weight, padding=1).sum() + F.linear(pooled.flatten(1), fc).sum()

    counts = window_counts(x, [avg_windows(8, 2, 2, 0)] * 2)
    result = profile(Fn(route), x, fold_pooling=True)
    assert result.layer("(root)/conv2d.0").sops == _expected_conv(counts, 2)
    assert result.layer("(root)/linear.0").sops == 7 * int(counts.sum())


# ----------------------------------------------------------------------------- SpikingJelly, multi-step


def test_spikingjelly_multistep_pool_flatten_linear(engine: str):
    steps, batch = 3, 2
    x = binary((steps, batch, 2, 6, 6), p=0.4, seed=5)
    net = nn.Sequential(layer.AvgPool2d(2, step_mode="m"), layer.Flatten(step_mode="m"),
                        layer.Linear(2 * 9, 4, step_mode="m"))
    counts = window_counts(x, [avg_windows(6, 2, 2, 0)] * 2)
    rec = profile(net, x, fold_pooling=True).layer("2")
    assert (rec.sops, rec.macs) == (4 * int(counts.sum()), 0)


def test_seq_to_ann_container(engine: str):
    x = binary((2, 2, 3, 8, 8), p=0.3, seed=6)
    torch.manual_seed(0)
    net = nn.Sequential(layer.SeqToANNContainer(nn.AvgPool2d(2)), layer.SeqToANNContainer(nn.Conv2d(3, 4, 3, 1, 1)))
    counts = window_counts(x, [avg_windows(8, 2, 2, 0)] * 2)
    assert profile(net, x, fold_pooling=True).layer("1.0").sops == _expected_conv(counts, 2)


def test_online_lif_scale_pool_conv_matches_per_step_counts(engine: str):
    """An OTTT-style block, single-step: LIF -> x2.74 -> AvgPool -> conv, two steps."""
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv0 = nn.Conv2d(2, 3, 3, padding=1)
            self.lif = neuron.LIFNode(v_threshold=0.2)
            self.pool = nn.AvgPool2d(2)
            self.conv1 = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv1(self.pool(self.lif(self.conv0(x)) * 2.74))

    net, x = Block(), torch.randn(2, 2, 8, 8)
    spikes = []
    hook = net.lif.register_forward_hook(lambda m, a, out: spikes.append(out.detach().clone()))
    functional.reset_net(net)
    for _ in range(2):
        net(x)
    hook.remove()
    expected = sum(_expected_conv(window_counts(s, [avg_windows(8, 2, 2, 0)] * 2), 2) for s in spikes)
    functional.reset_net(net)
    with Profiler(net, fold_pooling=True) as prof:
        for _ in range(2):
            net(x)
    rec = prof.result().layer("conv1")
    assert rec.sops == expected > 0 and rec.input_kind == "spike (folded)"


# ----------------------------------------------------------------------------- what does not fold


def test_dense_pool_input_does_not_fold(engine: str):
    x = torch.randn(2, 3, 8, 8)
    net = PoolConv(nn.AvgPool2d(2), nn.Conv2d(3, 4, 3, padding=1))
    off, on = profile(net, x), profile(net, x, fold_pooling=True)
    for result in (off, on):
        rec = result.layer("conv")
        assert (rec.folded_calls, rec.macs_folded, rec.sops_folded) == (0, None, None)
        assert rec.macs == rec.dense_macs and rec.input_kind == "dense"
        assert result.totals.macs_folded is None and not result.folds_pools


def test_max_and_lp_pools_do_not_fold():
    x = binary((2, 3, 8, 8), p=0.3)
    for pool in (nn.MaxPool2d(2), nn.LPPool2d(2, 2)):
        rec = profile(PoolConv(pool, nn.Conv2d(3, 4, 3)), x, fold_pooling=True).layer("conv")
        assert rec.folded_calls == 0


def test_permuted_pool_output_is_not_followed():
    x = binary((2, 3, 8, 8), p=0.3)
    net = nn.Sequential(Fn(lambda t: F.avg_pool2d(t, 2).transpose(2, 3).flatten(1)), nn.Linear(48, 5))
    assert profile(net, x, fold_pooling=True).layer("1").folded_calls == 0


def test_an_override_wins_over_folding():
    x = binary((2, 3, 8, 8), p=0.3)
    net = PoolConv(nn.AvgPool2d(2), nn.Conv2d(3, 4, 3, padding=1))
    rec = profile(net, x, fold_pooling=True, overrides={"conv": "dense"}).layer("conv")
    assert (rec.macs, rec.folded_calls, rec.input_kind) == (rec.dense_macs, 0, "dense")


# ----------------------------------------------------------------------------- views, results, state


def _net_and_input() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), neuron.IFNode(v_threshold=0.3, step_mode="s"),
                        nn.AvgPool2d(2), nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 5))
    return net, torch.rand(4, 2, 8, 8)


def _fresh(net: nn.Module, x: torch.Tensor, **kwargs: object) -> ProfileResult:
    """Profile from a reset network state (the IF neuron keeps its membrane between calls)."""
    functional.reset_net(net)
    return profile(net, x, **kwargs)


def _sums(result: ProfileResult) -> list[tuple]:
    return [(r.name, r.macs, r.sops, r.macs_folded, r.sops_folded, r.macs_unfolded, r.sops_unfolded, r.input_kind)
            for r in result.layers]


def _counts(result: ProfileResult) -> list[tuple]:
    return [(r.name, r.macs, r.sops, r.input_kind, r.kind_calls, r.folded_calls, r.macs_folded, r.sops_folded,
             r.macs_unfolded, r.sops_unfolded, r.folded_kinds) for r in result.layers]


def test_default_counts_unchanged_and_views_switch(engine: str):
    net, x = _net_and_input()
    off, on = _fresh(net, x), _fresh(net, x, fold_pooling=True)
    rec = off.layer("3")
    assert rec.folded_calls == 1 and rec.macs == rec.dense_macs and rec.sops == 0  # the default view: dense MACs
    assert off.layer("6").folded_calls == 0  # fed by pooled *dense* outputs of conv 3
    assert _counts(off.with_pool_folding(True)) == _counts(on)
    assert _counts(on.with_pool_folding(False)) == _counts(off)
    assert off.with_pool_folding(True).totals == on.totals
    assert on.totals.macs == off.totals.macs_folded and on.totals.sops == off.totals.sops_folded
    assert off.totals.macs == on.totals.macs_unfolded and off.totals.sops == on.totals.sops_unfolded


def test_json_round_trip_keeps_both_views():
    net, x = _net_and_input()
    result = _fresh(net, x, fold_pooling=True)
    data = result.to_dict()
    assert data["fold_pooling"] is True and data["layers"][3]["sops_folded"] == result.layer("3").sops
    back = ProfileResult.from_dict(data)
    assert back.fold_pooling and _counts(back) == _counts(result) and back.totals == result.totals
    assert result.per_sample["sops_folded"] == result.totals.sops_folded / 4


@pytest.mark.parametrize("fold_pooling", [False, True])
def test_state_dict_resume_and_merge(engine: str, fold_pooling: bool):
    net, x = _net_and_input()
    whole = _fresh(net, x, fold_pooling=fold_pooling)
    functional.reset_net(net)
    with Profiler(net, fold_pooling=fold_pooling) as prof:
        net(x[:2])
        state = prof.state_dict()
    functional.reset_net(net)
    with Profiler(net, fold_pooling=fold_pooling) as prof:
        prof.load_state_dict(state)
        net(x[2:])
    resumed = prof.result()
    assert _sums(resumed) == _sums(whole) and resumed.layer("3").folded_calls == 2  # two calls instead of one
    halves = [_fresh(net, x[:2], fold_pooling=fold_pooling), _fresh(net, x[2:], fold_pooling=fold_pooling)]
    merged = merge_results(halves)
    assert _sums(merged) == _sums(whole) and _counts(merged) == _counts(resumed)
    for name in ("macs", "sops", "macs_folded", "sops_folded", "macs_unfolded", "sops_unfolded"):
        assert getattr(merged.totals, name) == getattr(whole.totals, name)
    with pytest.raises(ValueError, match="conventions"):
        merge_results([halves[0], _fresh(net, x[2:], fold_pooling=not fold_pooling)])


@pytest.mark.parametrize("fold_pooling", [False, True])
def test_sample_stats_follow_the_main_view(engine: str, fold_pooling: bool):
    net, x = _net_and_input()
    functional.reset_net(net)
    with Profiler(net, fold_pooling=fold_pooling, sample_stats=True) as prof:
        net(x)
        prof.end_batch()
    result = prof.result()
    stats = result.sample_stats
    assert stats is not None
    assert stats.spread("sops").mean * 4 == pytest.approx(result.totals.sops, abs=1e-6)
    assert stats.spread("macs").mean * 4 == pytest.approx(result.totals.macs, abs=1e-6)


def test_device_decided_path_counts_the_same(monkeypatch: pytest.MonkeyPatch):
    """Kinds read off the device (as on a GPU): the folded sums are added under a device mask."""
    net, x = _net_and_input()
    expected = _counts(_fresh(net, x, fold_pooling=True))
    monkeypatch.setattr(native, "_load", lambda: "disabled in this test")
    monkeypatch.setattr(folding_mod, "host_code", lambda code: None)
    assert _counts(_fresh(net, x, fold_pooling=True)) == expected


def test_pooled_tensors_are_forgotten_after_the_call():
    net, x = _net_and_input()
    with Profiler(net, fold_pooling=True) as prof:
        net(x)
        assert not prof._pools  # cleared when the model's call ended
        pooled = nn.AvgPool2d(2)(torch.ones(1, 1, 2, 2))
        assert prof._pools.find(pooled) is None


def test_pool_map_drops_dead_tensors():
    pools = folding_mod.PoolMap()
    src = torch.ones(1, 4)
    out = torch.ones(1, 2)
    pools.record(out, folding_mod.Pooling(src, (((0, 2), (2, 4)),)))
    assert pools.find(out) is not None
    del out
    assert not pools


def test_config_key_reaches_the_profiler():
    text = '[model]\nname = "sj_spiking_cnn"\n[count]\nfold_pooling = true\n'
    cfg = parse_config(text)
    assert cfg.count.fold_pooling is True
    assert make_profiler(cfg, nn.Linear(2, 2)).fold_pooling is True
    assert make_profiler(parse_config('[model]\nname = "sj_spiking_cnn"\n'), nn.Linear(2, 2)).fold_pooling is False


def test_ottt_vgg_folded_counts_match_window_counts():
    """The zoo's OTTT VGG-11 (narrow, 16x16, 2 steps): every folded layer against the closed form.

    Expected SOPs per call: ``C_out · Σ_q W[q] · cover[q]`` for a 3x3/pad-1 conv, with ``W`` the window
    counts summed over input channels and ``cover`` = an all-ones 3x3 convolution of ``W``'s plane
    (outputs each pooled position reaches); ``out_features · Σ W`` for the classifier.
    """
    from snnprof.models import create_model, ottt

    torch.manual_seed(0)
    model = create_model("ottt_vgg11_ws", width=0.125, num_classes=10).eval()
    pools = {"features.6": "features.7", "features.13": "features.14", "features.20": "features.21",
             "avgpool": "classifier"}
    modules = dict(model.named_modules())
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in pools}
    hooks = [modules[p].register_forward_hook(lambda m, a, out, p=p: seen[p].append(a[0].detach().clone()))
             for p in pools]
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ottt.run(model, x, 2)
    for hook in hooks:
        hook.remove()
    with torch.no_grad(), Profiler(model, fold_pooling=True) as prof:
        ottt.run(model, x, 2)
    result = prof.result()
    ones = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    for pool, layer_name in pools.items():
        consumer = modules[layer_name]
        expected = 0
        for pre in seen[pool]:
            if pool == "avgpool":
                expected += consumer.out_features * int((pre != 0).sum())  # one window covers the whole plane
                continue
            h, w = pre.shape[-2:]
            counts = window_counts(pre, [avg_windows(h, 2, 2, 0), avg_windows(w, 2, 2, 0)]).sum(1, keepdim=True)
            cover = F.conv2d(torch.ones_like(counts[:1]), ones, padding=1)  # outputs reached per position
            expected += consumer.out_channels * int((counts * cover).sum())
        rec = result.layer(layer_name)
        assert (rec.sops, rec.macs, rec.input_kind) == (expected, 0, "spike (folded)"), layer_name
    assert result.layer("features.7").sops > 0

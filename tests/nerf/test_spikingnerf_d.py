"""SpikingNeRF-D and DVGO: the seed's --op_count identities, TCP/TP invariants, §1.4 per-point numbers.

The seed's counters (lib/spiking_dvgo.py, docs/seed_models.md §1.3) are re-implemented here from their
definition, on the tensors captured by forward hooks during the same render that snnprof profiles:
FLOPs = M * dim0 * width per chunk, SOPs = spikes(L1) * width + spikes(L2) * 3, sparsity = zeros / numel
of the seed's [T, B, 39] tensor. The seed's SNN is also re-run literally on that padded tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

import snnprof
from snnprof.models.nerf_render import composite_segments, sample_dvgo

from .conftest import tiny
from .test_packing import seed_tempo

DIM0, WIDTH = 39, 128


@dataclass
class SeedCounters:
    """The seed's per-chunk counters of one render."""

    flops: list[int] = field(default_factory=list)
    sops: list[int] = field(default_factory=list)
    sparsity: list[float] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)
    logits_match: list[bool] = field(default_factory=list)


def seed_rgbnet(model: nn.Module) -> nn.Module:
    """The seed's RGBnet (Linear on the whole padded tensor) with the model's weights."""
    def lif() -> nn.Module:
        return neuron.LIFNode(tau=2.0, detach_reset=True, step_mode="m")

    net = nn.Sequential(
        layer.Linear(DIM0, WIDTH, bias=False, step_mode="m"), lif(),
        layer.Linear(WIDTH, WIDTH, bias=False, step_mode="m"), lif(),
        layer.Linear(WIDTH, 3, bias=False, step_mode="m"),
    )
    net[0].weight.data.copy_(model.rgbnet.layer1.weight.data)
    net[2].weight.data.copy_(model.rgbnet.hidden[0][0].weight.data)
    net[4].weight.data.copy_(model.rgbnet.layer3.weight.data)
    return net


def render_with_seed_counters(model: nn.Module, inputs: dict[str, torch.Tensor]) -> SeedCounters:
    """Render once, computing the seed's counters from hooked tensors."""
    out = SeedCounters()
    seen: dict[str, Any] = {}
    reference = seed_rgbnet(model)

    def on_pack(_m: nn.Module, args: tuple[Any, ...], _o: Any) -> None:
        seen["ray_id"], seen["step_id"], seen["feat"] = args

    def on_spikes(key: str) -> Any:
        def hook(_m: nn.Module, _a: Any, spikes: torch.Tensor) -> None:
            seen[key] = int(spikes.sum())
        return hook

    def on_logits(_m: nn.Module, _a: Any, logits: torch.Tensor) -> None:
        ray_id, step_id, feat = seen["ray_id"], seen["step_id"], seen["feat"]
        out.flops.append(feat.shape[0] * feat.shape[1] * WIDTH)
        out.sops.append(seen["l1"] * WIDTH + seen["l2"] * 3)
        tempo, t, b = seed_tempo(ray_id, step_id, feat, model.layout == "tcp", model.tempo_flip)
        out.sparsity.append(float((tempo == 0).sum()) / tempo.numel())
        out.shapes.append((tempo.shape[0], tempo.shape[1]))
        functional.reset_net(reference)
        expected = reference(tempo)[t, b]
        out.logits_match.append(torch.allclose(expected, logits, atol=1e-4, rtol=1e-4))

    handles = [model.packer.register_forward_hook(on_pack),
               model.rgbnet.lif1.register_forward_hook(on_spikes("l1")),
               model.rgbnet.hidden[0][1].register_forward_hook(on_spikes("l2")),
               model.rgbnet.register_forward_hook(on_logits)]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for h in handles:
            h.remove()
    return out


def profile(model: nn.Module, inputs: dict[str, torch.Tensor], views: int = 2) -> snnprof.ProfileResult:
    return snnprof.profile(model, inputs, strict=True, batch_size=views, time_steps=1)


@pytest.mark.parametrize(("layout", "flip"), [("tcp", False), ("tp", False), ("tcp", True), ("tp", True)])
def test_op_count_identities_are_exact(tiny_rays: dict[str, torch.Tensor], layout: str, flip: bool) -> None:
    model = tiny("spikingnerf_d", layout=layout, tempo_flip=flip)
    seed = render_with_seed_counters(model, tiny_rays)
    result = profile(model, tiny_rays)
    stats = model.last_render_stats
    assert len(stats) == len(seed.flops) > 1
    assert result.totals.macs == sum(seed.flops) == sum(s.points for s in stats) * DIM0 * WIDTH
    assert result.totals.sops == sum(seed.sops)
    assert [(s.time_steps, s.batch) for s in stats] == seed.shapes
    assert [s.sparsity for s in stats] == pytest.approx(seed.sparsity, abs=1e-12)
    assert all(seed.logits_match)


def test_macs_live_only_in_the_first_layer_and_sops_follow_the_spikes(tiny_rays: dict[str, torch.Tensor]) -> None:
    model = tiny("spikingnerf_d")
    result = profile(model, tiny_rays)
    synaptic = {r.name: r for r in result.layers if r.dense_macs}
    assert set(synaptic) == {"rgbnet.layer1", "rgbnet.hidden.0.0", "rgbnet.layer3"}
    assert synaptic["rgbnet.layer1"].input_kind == "dense"
    assert synaptic["rgbnet.hidden.0.0"].sops == result.layer("rgbnet.lif1").spikes * WIDTH
    assert synaptic["rgbnet.layer3"].sops == result.layer("rgbnet.hidden.0.1").spikes * 3
    points = sum(s.points for s in model.last_render_stats)
    assert 0 < result.totals.sops <= points * (WIDTH * WIDTH + WIDTH * 3)


def test_tcp_and_tp_invariants(tiny_rays: dict[str, torch.Tensor]) -> None:
    tcp, tp = tiny("spikingnerf_d", layout="tcp"), tiny("spikingnerf_d", layout="tp")
    res_tcp, res_tp = profile(tcp, tiny_rays), profile(tp, tiny_rays)
    assert res_tcp.totals.macs == res_tp.totals.macs > 0
    for a, b in zip(tcp.last_render_stats, tp.last_render_stats, strict=True):
        assert a.points == b.points
        assert a.time_steps <= b.time_steps and a.batch <= b.batch
    crossbar = [snnprof.estimate_energy(r, "spikesim_rram").total_pj for r in (res_tcp, res_tp)]
    assert 0 < crossbar[0] <= crossbar[1]
    frames = sum(s.time_steps * s.batch for s in tcp.last_render_stats)
    assert res_tcp.layer("rgbnet.layer1").geometry["frames"] == sum(s.points for s in tcp.last_render_stats)
    assert res_tcp.layer("rgbnet.hidden.0.0").geometry["frames"] == frames
    assert res_tcp.layer("rgbnet.lif1").neuron_updates == frames * WIDTH


def test_same_input_gives_identical_results_and_state(tiny_rays: dict[str, torch.Tensor]) -> None:
    model = tiny("spikingnerf_d", layout="tp")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    first, second = profile(model, tiny_rays).to_dict(), profile(model, tiny_rays).to_dict()
    assert first == second
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    rebuilt = tiny("spikingnerf_d", layout="tcp")
    assert all(torch.equal(before[k], v) for k, v in rebuilt.state_dict().items())  # same weights, any layout


def test_per_point_numbers_of_section_1_4(tiny_rays: dict[str, torch.Tensor]) -> None:
    snn, ann = tiny("spikingnerf_d"), tiny("dvgo_ann")
    assert snn.rgbnet.per_point_macs() == 4_992
    assert ann.rgbnet.per_point_macs() == 21_760
    assert snn.rgbnet.max_sops_per_point() == 16_768
    res_snn, res_ann = profile(snn, tiny_rays), profile(ann, tiny_rays)
    points = sum(s.points for s in snn.last_render_stats)
    assert points == sum(s.points for s in ann.last_render_stats)  # same grids -> same masks
    assert res_snn.totals.macs == points * 4_992 and res_ann.totals.macs == points * 21_760
    assert res_ann.totals.macs / res_snn.totals.macs == pytest.approx(21_760 / 4_992)
    assert res_ann.totals.sops == 0 and res_ann.layer("rgbnet.0").input_kind == "dense"


def test_energy_sanity_check_of_section_1_4() -> None:
    sops = 0.2 * 16_768
    snn = 4_992 * 4.6 + sops * 0.9
    ann = 21_760 * 4.6
    assert snn == pytest.approx(26_000, rel=0.01) and ann == pytest.approx(100_100, rel=0.001)
    assert 1 - snn / ann == pytest.approx(0.74, abs=0.01)


def test_realistic_occupancy_and_activity(tiny_rays: dict[str, torch.Tensor]) -> None:
    model = tiny("spikingnerf_d")
    result = profile(model, tiny_rays)
    stats = model.last_render_stats
    sampled = sum(s.sampled for s in stats)
    cached, points = sum(s.after_cache for s in stats), sum(s.points for s in stats)
    assert 0.1 < cached / sampled < 0.6 and 0.03 < points / sampled < 0.3
    per_point = result.layer("rgbnet.lif1").spikes / (points * WIDTH)
    assert 0.05 < per_point < 0.5


def test_compositing_matches_dvgo_kernel() -> None:
    gen = torch.Generator().manual_seed(0)
    ray_id = torch.sort(torch.randint(0, 7, (60,), generator=gen)).values
    alpha = torch.rand(60, generator=gen, dtype=torch.float64) ** 3
    weights, last = composite_segments(torch.log1p(-alpha), ray_id, 8)
    expected_w, expected_last = torch.zeros(60, dtype=torch.float64), torch.ones(8, dtype=torch.float64)
    for r in range(8):  # DVGO alpha2weight_cuda_kernel, ray by ray
        t_cum = 1.0
        for i in (ray_id == r).nonzero().flatten().tolist():
            expected_w[i] = t_cum * float(alpha[i])
            t_cum *= 1 - float(alpha[i])
            if t_cum < 1e-3:
                break
        expected_last[r] = t_cum
    torch.testing.assert_close(weights, expected_w, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(last, expected_last, rtol=1e-9, atol=1e-12)


def test_dvgo_sampling_steps_and_box() -> None:
    rays_o = torch.tensor([[0.0, 0.0, 4.0], [3.0, 3.0, 3.0]])
    rays_d = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    lo, hi = torch.full((3,), -1.0), torch.full((3,), 1.0)
    pts, ray_id, step_id = sample_dvgo(rays_o, rays_d, lo, hi, near=2.0, stepdist=0.25)
    # ray 0: t in [3, 5] -> ceil(2 / 0.25) = 8 steps from z = 1; ray 1 misses: its one step is outside
    assert ray_id.tolist() == [0] * 8
    assert step_id.tolist() == list(range(8))
    torch.testing.assert_close(pts[:, 2], 1.0 - 0.25 * torch.arange(8.0))


def test_dvgo_sampling_counts_world_length_of_off_axis_rays() -> None:
    """DVGO's ``infer_n_samples``: ``ceil((t_max - t_min) |d| / stepdist)`` steps, unit steps in world space."""
    rays_o = torch.tensor([[0.0, 0.0, 4.0]])
    rays_d = torch.tensor([[0.0, 0.0, -2.0]])  # |d| = 2: t in [1.5, 2.5] holds 2 world units of the box
    lo, hi = torch.full((3,), -1.0), torch.full((3,), 1.0)
    pts, ray_id, step_id = sample_dvgo(rays_o, rays_d, lo, hi, near=0.0, stepdist=0.25)
    assert step_id.tolist() == list(range(8))  # 2 / 0.25 (without |d|: 4 steps covering half the box)
    torch.testing.assert_close(pts[:, 2], 1.0 - 0.25 * torch.arange(8.0))
    off_axis = torch.tensor([[0.3, 0.2, -1.0]])  # a corner-pixel camera ray: |d| = sqrt(1.13)
    box_lo, box_hi = torch.tensor([-2.0, -2.0, -1.0]), torch.tensor([2.0, 2.0, 1.0])
    pts, _, _ = sample_dvgo(rays_o, off_axis, box_lo, box_hi, near=0.0, stepdist=0.1)
    assert pts.shape[0] == math.ceil(2 * math.sqrt(1.13) / 0.1) == 22  # ceil(2 / 0.1) = 20 without |d|


def test_render_output_and_views(tiny_rays: dict[str, torch.Tensor]) -> None:
    model = tiny("dvgo_ann")
    with torch.no_grad():
        out = model(**tiny_rays)
        single = model(**{k: v[1:2] for k, v in tiny_rays.items()})
    assert out.rgb.shape == tiny_rays["rays_o"].shape and out.alphainv_last.shape == out.rgb.shape[:-1]
    torch.testing.assert_close(out.rgb[1:2], single.rgb)
    assert out.weights.shape == out.ray_id.shape and out.raw_rgb.shape == (out.weights.numel(), 3)
    assert math.isclose(float(out.rgb.min()), float(out.rgb.clamp(0, 1).min()))
    assert {s.view for s in model.last_render_stats} == {0}


def test_bad_kwargs_are_value_errors() -> None:
    for kwargs in ({"layout": "padded"}, {"lif_type": "izhikevich"}, {"init": "random"}, {"num_voxels": 0}):
        with pytest.raises(ValueError):
            tiny("spikingnerf_d", **kwargs)
    with pytest.raises(ValueError, match="dvgo_ann"):
        tiny("dvgo_ann", layout="tcp")

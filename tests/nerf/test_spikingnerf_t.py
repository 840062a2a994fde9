"""SpikingNeRF-T and TensoRF: the seed's counters (models/tensorBase.py), PE variants of §1.4, TCP vs TP."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

import snnprof
from snnprof.models.spikingnerf_t import mlp_in_features

from .conftest import tiny
from .test_packing import seed_tempo

FEATURE_C, APP_DIM, APP_COMP = 128, 27, 48


def profile(model: nn.Module, inputs: dict[str, torch.Tensor]) -> snnprof.ProfileResult:
    return snnprof.profile(model, inputs, strict=True, batch_size=2, time_steps=1)


@pytest.mark.parametrize(("view_pe", "fea_pe", "in_c", "ann", "snn"), [
    (2, 2, 150, 35_968, 19_200), (2, 0, 42, 22_144, 5_376), (1, 0, 36, 21_376, 4_608), (0, 0, 30, 20_608, 3_840),
])
def test_in_mlpc_and_per_point_numbers(view_pe: int, fea_pe: int, in_c: int, ann: int, snn: int) -> None:
    assert mlp_in_features(APP_DIM, view_pe, fea_pe) == in_c
    assert in_c * FEATURE_C + FEATURE_C * FEATURE_C + FEATURE_C * 3 == ann
    assert in_c * FEATURE_C == snn


def test_seed_counters_and_packing_of_spikingnerf_t(tiny_rays: dict[str, torch.Tensor]) -> None:
    model = tiny("spikingnerf_t")
    seen: dict[str, Any] = {"flops": 0, "sops": 0, "shapes": []}

    def on_pack(_m: nn.Module, args: tuple[Any, ...], packing: Any) -> None:
        ray_id, step_id, mlp_in = args
        seen["flops"] += mlp_in.shape[0] * mlp_in.shape[1] * FEATURE_C
        tempo, t, b = seed_tempo(ray_id, step_id, mlp_in, condensing=True, flip=False)
        seen["shapes"].append(tuple(tempo.shape))
        assert torch.equal(packing.t_idx, t) and torch.equal(packing.b_idx, b)

    def on_spikes(weight: int) -> Any:
        def hook(_m: nn.Module, _a: Any, spikes: torch.Tensor) -> None:
            seen["sops"] += int(spikes.sum()) * weight
        return hook

    handles = [model.packer.register_forward_hook(on_pack),
               model.render_module.lif1.register_forward_hook(on_spikes(FEATURE_C)),
               model.render_module.hidden[0][1].register_forward_hook(on_spikes(3))]
    try:
        result = profile(model, tiny_rays)
    finally:
        for h in handles:
            h.remove()
    points = sum(s.points for s in model.last_render_stats)
    assert result.layer("render_module.layer1").macs == seen["flops"] == points * 150 * FEATURE_C
    assert result.totals.sops == seen["sops"] > 0
    assert result.layer("basis_mat").macs == points * 3 * APP_COMP * APP_DIM
    assert result.totals.macs == seen["flops"] + points * 3 * APP_COMP * APP_DIM
    assert [(s.time_steps, s.batch, 150) for s in model.last_render_stats] == seen["shapes"]


def test_tensorf_ann_counts_and_pe_variant(tiny_rays: dict[str, torch.Tensor]) -> None:
    model = tiny("tensorf_ann", fea_pe=0, view_pe=2)
    result = profile(model, tiny_rays)
    points = sum(s.points for s in model.last_render_stats)
    mlp = sum(r.macs for r in result.layers if r.name.startswith("render_module."))
    assert mlp == points * 22_144 == points * model.render_module.per_point_macs()
    assert result.totals.sops == 0 and all(r.bias is None for r in model.render_module if isinstance(r, nn.Linear))


def test_tcp_vs_tp_for_spikingnerf_t(tiny_rays: dict[str, torch.Tensor]) -> None:
    tcp, tp = tiny("spikingnerf_t", layout="tcp"), tiny("spikingnerf_t", layout="tp")
    res_tcp, res_tp = profile(tcp, tiny_rays), profile(tp, tiny_rays)
    assert res_tcp.totals.macs == res_tp.totals.macs
    assert all(a.time_steps <= b.time_steps for a, b in zip(tcp.last_render_stats, tp.last_render_stats, strict=True))
    energies = [snnprof.estimate_energy(r, "spikesim_rram").total_pj for r in (res_tcp, res_tp)]
    assert energies[0] <= energies[1]


def test_render_is_an_image_in_unit_range(tiny_rays: dict[str, torch.Tensor]) -> None:
    model = tiny("tensorf_ann")
    with torch.no_grad():
        out = model(**tiny_rays)
    assert out.rgb.shape == tiny_rays["rays_o"].shape
    assert float(out.rgb.min()) >= 0 and float(out.rgb.max()) <= 1
    hit = out.alphainv_last < 0.5
    assert 0.05 < float(hit.float().mean()) < 0.95  # the scene covers part of the view

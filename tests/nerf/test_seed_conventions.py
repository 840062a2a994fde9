"""The seed's own SpikingNeRF conventions (views/spikingnerf.py): MLP-only op count, per-image sparsity."""

from __future__ import annotations

import pytest
import torch

import snnprof
from snnprof.models.nerf_render import ChunkStats
from snnprof.views.spikingnerf import (
    MLP_PREFIXES,
    mlp_only_reduction,
    pooled_sparsity,
    seed_op_count,
    seed_sparsity,
)

from .conftest import tiny

C = 128


def _chunk(view: int, points: int, t: int, b: int, zeros: int) -> ChunkStats:
    """A chunk of 2 features per point, ``[t, b, 2]`` with ``zeros`` zero elements."""
    return ChunkStats(view, rays=b, sampled=points, after_cache=points, after_alpha=points, points=points,
                      time_steps=t, batch=b, zero_elements=zeros, channels=2)


def test_seed_sparsity_is_a_mean_of_chunk_means_pooled_is_a_ratio() -> None:
    stats = [_chunk(0, 4, 2, 4, 8), _chunk(0, 1, 1, 1, 1), _chunk(0, 0, 0, 0, 0), _chunk(1, 3, 3, 2, 6)]
    # view 0: chunks 8/16 and 1/2 (the empty chunk is skipped, as the seed's empty tensor) -> 0.5; view 1: 0.5
    assert seed_sparsity(stats) == pytest.approx(0.5)
    stats[1] = _chunk(0, 1, 1, 1, 0)  # view 0: (0.5 + 0) / 2 = 0.25; mean over views (0.25 + 0.5) / 2
    assert seed_sparsity(stats) == pytest.approx(0.375)
    assert pooled_sparsity(stats) == pytest.approx((8 + 0 + 0 + 6) / (16 + 2 + 0 + 12))
    ann = [ChunkStats(0, 4, 4, 4, None, 4)]
    assert seed_sparsity(ann) is None and pooled_sparsity(ann) is None


def test_seed_sparsity_of_a_render_matches_the_chunks(tiny_rays: dict[str, torch.Tensor]) -> None:
    model = tiny("spikingnerf_d", layout="tp")
    with torch.no_grad():
        model(**tiny_rays)
    stats = model.last_render_stats
    views = sorted({c.view for c in stats})
    per_view = [[c.sparsity for c in stats if c.view == v and c.points] for v in views]
    assert seed_sparsity(stats) == pytest.approx(sum(sum(p) / len(p) for p in per_view) / len(views))


def _counted(name: str, rays: dict[str, torch.Tensor]) -> tuple[snnprof.ProfileResult, torch.nn.Module, dict]:
    model = tiny(name)
    result = snnprof.profile(model, rays, strict=True, batch_size=2, time_steps=1, model_name=name)
    return result, model, {"cmos45nm_fp32": snnprof.estimate_energy(result, "cmos45nm_fp32")}


def test_mlp_only_count_is_the_seeds_for_spikingnerf_t_and_tensorf(tiny_rays: dict[str, torch.Tensor]) -> None:
    snn, snn_model, snn_energy = _counted("spikingnerf_t", tiny_rays)
    ann, ann_model, ann_energy = _counted("tensorf_ann", tiny_rays)
    n_snn = sum(c.points for c in snn_model.last_render_stats)
    n_ann = sum(c.points for c in ann_model.last_render_stats)
    s, a = seed_op_count(snn, energy=snn_energy), seed_op_count(ann, energy=ann_energy)
    assert s.layers == ("render_module.layer1", "render_module.hidden.0.0", "render_module.layer3")
    assert "basis_mat" not in s.layers + a.layers and snn.layer("basis_mat").macs > 0
    assert s.macs == n_snn * 150 * C  # the seed's N_valid * in_mlpC * featureC
    spikes = [snn.layer(n).spikes for n in ("render_module.lif1", "render_module.hidden.0.1")]
    assert s.sops == spikes[0] * C + spikes[1] * 3  # spikes_L1 * featureC + spikes_L2 * 3
    assert a.macs == a.dense_macs == n_ann * (150 * C + C * C + 3 * C) and a.sops == 0
    assert s.macs < snn.totals.macs  # the full count adds the basis matrix
    layers = snn_energy["cmos45nm_fp32"].layers
    assert s.energy_pj["cmos45nm_fp32"] == pytest.approx(sum(layers[n] for n in s.layers))
    expected = (1 - (s.energy_pj["cmos45nm_fp32"] / 2) / (a.energy_pj["cmos45nm_fp32"] / 2)) * 100
    assert mlp_only_reduction(s, a, "cmos45nm_fp32") == pytest.approx(expected)
    assert s.per_sample["macs"] == s.macs / 2 and s.to_dict()["convention"] == "seed_mlp_only"


def test_mlp_only_equals_full_for_dvgo_and_refuses_other_models(tiny_rays: dict[str, torch.Tensor]) -> None:
    result, _, _ = _counted("spikingnerf_d", tiny_rays)
    seed = seed_op_count(result)
    assert (seed.macs, seed.sops, seed.dense_macs) == (result.totals.macs, result.totals.sops,
                                                       result.totals.dense_macs)
    assert set(MLP_PREFIXES) == {"spikingnerf_d", "dvgo_ann", "spikingnerf_t", "tensorf_ann"}
    with pytest.raises(ValueError, match="no seed op-count convention"):
        seed_op_count(result, "ottt_vgg11_ws")

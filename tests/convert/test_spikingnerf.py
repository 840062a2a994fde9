"""SpikingNeRF converter: DVGO ``.tar`` and TensoRF checkpoints of ``Ikarosy/SpikingNeRF-of-CASIA``.

SpikingNeRF-D: the test writes ``run.py``'s ``{"global_step", "model_kwargs", "model_state_dict",
"optimizer_state_dict"}`` with ``lib/spiking_dvgo.py``'s keys (``RGBnet``: ``rgbnet.layer1.0.weight``,
``rgbnet.layer2.0.0.weight``, ``rgbnet.layer3.weight``; ``viewfreq``; ``lib/grid.py``'s ``DenseGrid`` and
``MaskGrid`` with ``xyz2ijk_scale/shift``) and ``get_kwargs()``'s numpy ``xyz_min``/``xyz_max``.
SpikingNeRF-T: ``models/tensorBase.py save``'s ``{"kwargs", "state_dict", "alphaMask.shape",
"alphaMask.mask" (numpy packbits of a [1, 1, Z, Y, X] volume), "alphaMask.aabb"}`` with ``density_plane.i``,
``density_line.i``, ``app_plane.i``, ``app_line.i``, ``basis_mat.weight``, ``renderModule.layerK.0.weight``.
References re-run the seeds' equations (``F.grid_sample`` as TensoRF; SpikingJelly LIF tau 2 on the
seed's condensed tensor) on those tensors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snnprof.convert import UpstreamCheckpointError, convert_checkpoint, load_upstream
from snnprof.models import create_model
from snnprof.models.nerf_packing import TemporalPacker

from .conftest import randn, save

BOX = (np.array([-1.0, -1.2, -0.9], dtype=np.float32), np.array([1.1, 1.0, 1.0], dtype=np.float32))


def lif_mlp(weights: list[torch.Tensor], tempo: torch.Tensor) -> torch.Tensor:
    """The seed's spiking MLP on ``[T, B, C]``: Linear -> LIF(tau 2: H = V + (X - V) / 2, fire H >= 1, V = 0)."""
    x = tempo
    for w in weights[:-1]:
        current, v, out = x @ w.t(), torch.zeros(x.shape[1], w.shape[0]), []
        for t in range(x.shape[0]):
            h = v + (current[t] - v) / 2
            s = (h >= 1.0).float()
            v = h * (1 - s)
            out.append(s)
        x = torch.stack(out)
    return x @ weights[-1].t()


def condense(ray_id: torch.Tensor, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The seed's ``condenser``: each ray's points left-aligned in time, empty rays dropped."""
    counts = torch.bincount(ray_id)
    counts = counts[counts > 0]
    b = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    t = torch.cat([torch.arange(int(c)) for c in counts])
    tempo = torch.zeros(int(counts.max()), counts.numel(), feat.shape[-1])
    tempo[t, b] = feat
    return tempo, t, b


def upstream_d(gen: torch.Generator, num_voxels: int = 12**3) -> tuple[dict[str, object], dict[str, torch.Tensor]]:
    model = create_model("spikingnerf_d", num_voxels=num_voxels, bbox=[b.tolist() for b in BOX], init="dvgo")
    size = model.density.world_size
    lo, hi = torch.from_numpy(BOX[0]), torch.from_numpy(BOX[1])
    scale = (torch.tensor(size, dtype=torch.float32) - 1) / (hi - lo)
    state = {"xyz_min": lo, "xyz_max": hi, "act_shift": torch.tensor([-4.6]), "viewfreq": 2.0 ** torch.arange(4.0),
             "density.grid": randn(gen, 1, 1, *size), "density.xyz_min": lo, "density.xyz_max": hi,
             "k0.grid": randn(gen, 1, 12, *size), "k0.xyz_min": lo, "k0.xyz_max": hi,
             "mask_cache.mask": torch.rand(size, generator=gen) > 0.3, "mask_cache.xyz2ijk_scale": scale,
             "mask_cache.xyz2ijk_shift": -lo * scale, "rgbnet.layer1.0.weight": randn(gen, 128, 39, scale=0.5),
             "rgbnet.layer2.0.0.weight": randn(gen, 128, 128, scale=0.3), "rgbnet.layer3.weight": randn(gen, 3, 128)}
    kwargs = {"xyz_min": BOX[0], "xyz_max": BOX[1], "num_voxels": num_voxels, "num_voxels_base": num_voxels,
              "alpha_init": 0.01, "voxel_size_ratio": torch.tensor(1.0), "mask_cache_path": "coarse_last.tar",
              "mask_cache_thres": 1e-3, "mask_cache_world_size": list(size), "fast_color_thres": 1e-4,
              "density_type": "DenseGrid", "k0_type": "DenseGrid", "density_config": {}, "k0_config": {},
              "condensing": True, "ray_tempo_unmatch": False, "time_step": 1, "lif_type": "lif", "poisson": False,
              "tempo_flip": False, "rgbnet_dim": 12, "rgbnet_direct": True, "rgbnet_full_implicit": False,
              "rgbnet_depth": 3, "rgbnet_width": 128, "viewbase_pe": 4}
    return kwargs, state


def test_spikingnerf_d_tar_gives_the_seed_mlp_and_cache(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    kwargs, state = upstream_d(gen)
    path = save(tmp_path / "fine_last.tar", {"global_step": 40000, "model_kwargs": kwargs, "model_state_dict": state,
                                             "optimizer_state_dict": {"state": {}, "param_groups": []}})
    converted = convert_checkpoint("spikingnerf", path)
    assert converted.model == "spikingnerf_d"
    kw = converted.kwargs
    assert (kw["num_voxels"], kw["layout"], kw["lif_type"], kw["viewbase_pe"]) == (12**3, "tcp", "lif", 4)
    assert kw["bbox"] == [pytest.approx(BOX[0].tolist()), pytest.approx(BOX[1].tolist())]
    model = create_model("spikingnerf_d", **kw).eval()
    model.load_state_dict(load_upstream("spikingnerf_d", path, kw), strict=True)
    torch.testing.assert_close(model.mask_cache.xyz_min, torch.from_numpy(BOX[0]))
    torch.testing.assert_close(model.mask_cache.xyz_max, torch.from_numpy(BOX[1]))
    pts = torch.rand(300, 3, generator=gen) * (torch.from_numpy(BOX[1] - BOX[0])) + torch.from_numpy(BOX[0])
    ijk = torch.round(pts * state["mask_cache.xyz2ijk_scale"] + state["mask_cache.xyz2ijk_shift"]).long()
    assert torch.equal(model.mask_cache(pts), state["mask_cache.mask"][ijk[:, 0], ijk[:, 1], ijk[:, 2]])
    ray_id = torch.sort(torch.randint(0, 9, (40,), generator=gen))[0]
    feat = randn(gen, 40, 39)
    packing = TemporalPacker("tcp")(ray_id, torch.arange(40), feat)
    with torch.no_grad():
        ours = model.rgbnet(feat, packing)
    tempo, t, b = condense(ray_id, feat)
    weights = [state["rgbnet.layer1.0.weight"], state["rgbnet.layer2.0.0.weight"], state["rgbnet.layer3.weight"]]
    torch.testing.assert_close(ours, lif_mlp(weights, tempo)[t, b], rtol=1e-5, atol=1e-5)


def test_dvgo_ann_tar_keeps_the_relu_mlp_keys(tmp_path: Path) -> None:
    """``lib/dvgo.py``'s ``rgbnet`` is ``Sequential(Linear, ReLU, Sequential(Linear, ReLU), Linear)``: unchanged."""
    gen = torch.Generator().manual_seed(4)
    kwargs, state = upstream_d(gen)
    state = {k: v for k, v in state.items() if not k.startswith("rgbnet")}
    for name, shape in (("rgbnet.0", (128, 39)), ("rgbnet.2.0", (128, 128)), ("rgbnet.3", (3, 128))):
        state[f"{name}.weight"], state[f"{name}.bias"] = randn(gen, *shape), randn(gen, shape[0])
    ann_kwargs = {k: v for k, v in kwargs.items() if k not in ("condensing", "tempo_flip", "lif_type")}
    path = save(tmp_path / "fine_last.tar", {"model_kwargs": ann_kwargs, "model_state_dict": state})
    converted = convert_checkpoint("spikingnerf", path)
    assert converted.model == "dvgo_ann" and "layout" not in converted.kwargs
    model = create_model("dvgo_ann", **converted.kwargs)
    model.load_state_dict(load_upstream("dvgo_ann", path, converted.kwargs), strict=True)
    assert torch.equal(model.rgbnet[2][0].weight, state["rgbnet.2.0.weight"])


def test_spikingnerf_d_misfit_names_the_kwargs(tmp_path: Path) -> None:
    kwargs, state = upstream_d(torch.Generator().manual_seed(1))
    path = save(tmp_path / "fine_last.tar", {"model_kwargs": kwargs, "model_state_dict": state})
    with pytest.raises(UpstreamCheckpointError, match="num_voxels") as err:
        load_upstream("spikingnerf_d", path, {"num_voxels": 10**3, "init": "dvgo"})
    assert err.value.key == "density.grid"
    bad = {**kwargs, "ray_tempo_unmatch": True}
    with pytest.raises(UpstreamCheckpointError, match="ray_tempo_unmatch"):
        convert_checkpoint("spikingnerf", save(tmp_path / "b.tar", {"model_kwargs": bad, "model_state_dict": state}))
    coarse = {k: v for k, v in state.items() if not k.startswith("rgbnet")}
    with pytest.raises(UpstreamCheckpointError, match="coarse stage"):
        convert_checkpoint("spikingnerf", save(tmp_path / "c.tar", {"model_state_dict": coarse}))


GRID, MASK, NC, AC = (8, 9, 10), (5, 6, 7), 4, 6


def upstream_t(gen: torch.Generator) -> dict[str, object]:
    state: dict[str, torch.Tensor] = {}
    for mode, ((a0, a1), axis) in enumerate((((0, 1), 2), ((0, 2), 1), ((1, 2), 0))):
        for kind, n in (("density", NC), ("app", AC)):
            state[f"{kind}_plane.{mode}"] = randn(gen, 1, n, GRID[a1], GRID[a0])
            state[f"{kind}_line.{mode}"] = randn(gen, 1, n, GRID[axis], 1)
    state["basis_mat.weight"] = randn(gen, 27, 3 * AC, scale=0.3)
    state["renderModule.layer1.0.weight"] = randn(gen, 128, 150, scale=0.4)
    state["renderModule.layer2.0.weight"] = randn(gen, 128, 128, scale=0.3)
    state["renderModule.layer3.0.weight"] = randn(gen, 3, 128)
    volume = (torch.rand(1, 1, *MASK[::-1], generator=gen) > 0.5).numpy()  # [1, 1, Z, Y, X]
    aabb = torch.tensor([[-1.0, -1.1, -0.9], [1.0, 1.2, 1.1]])
    kwargs = {"aabb": aabb, "gridSize": list(GRID), "density_n_comp": [NC] * 3, "appearance_n_comp": [AC] * 3,
              "app_dim": 27, "density_shift": -10.0, "alphaMask_thres": 1e-4, "distance_scale": 25.0,
              "rayMarch_weight_thres": 1e-4, "fea2denseAct": "softplus", "near_far": [2.0, 6.0], "step_ratio": 0.5,
              "shadingMode": "MLP_Fea_Spiking", "pos_pe": 6, "view_pe": 2, "fea_pe": 2, "featureC": 128}
    return {"kwargs": kwargs, "state_dict": state, "alphaMask.shape": volume.shape,
            "alphaMask.mask": np.packbits(volume.reshape(-1)), "alphaMask.aabb": aabb * 0.9}


def test_spikingnerf_t_checkpoint_gives_the_seed_fields(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(2)
    ckpt = upstream_t(gen)
    path = save(tmp_path / "lego.th", ckpt)
    converted = convert_checkpoint("spikingnerf", path)
    kw = converted.kwargs
    assert converted.model == "spikingnerf_t"
    assert (kw["grid_size"], kw["alpha_mask_size"], kw["density_n_comp"], kw["app_n_comp"]) == (list(GRID),
                                                                                                  list(MASK), NC, AC)
    model = create_model("spikingnerf_t", **kw).eval()
    model.load_state_dict(load_upstream("spikingnerf_t", path, kw), strict=True)
    s, aabb = ckpt["state_dict"], ckpt["kwargs"]["aabb"]
    xyz = torch.rand(200, 3, generator=gen) * (aabb[1] - aabb[0]) + aabb[0]
    norm = (xyz - aabb[0]) / (aabb[1] - aabb[0]) * 2 - 1  # TensoRF's normalize_coord
    planes = [norm[:, [0, 1]], norm[:, [0, 2]], norm[:, [1, 2]]]
    lines = [norm[:, 2], norm[:, 1], norm[:, 0]]

    def sample(kind: str, mode: int) -> torch.Tensor:
        plane = F.grid_sample(s[f"{kind}_plane.{mode}"], planes[mode].view(1, -1, 1, 2), align_corners=True)
        line_xy = torch.stack([torch.zeros_like(lines[mode]), lines[mode]], -1).view(1, -1, 1, 2)
        line = F.grid_sample(s[f"{kind}_line.{mode}"], line_xy, align_corners=True)
        return (plane * line)[0, :, :, 0]  # [n_comp, N]

    sigma = F.softplus(sum(sample("density", m).sum(0) for m in range(3)) - 10.0)
    features = torch.cat([sample("app", m) for m in range(3)]).t() @ s["basis_mat.weight"].t()
    with torch.no_grad():
        torch.testing.assert_close(model.sigma(xyz), sigma, rtol=1e-4, atol=1e-5)
        coords = (xyz - model.xyz_min) / (model.xyz_max - model.xyz_min) * 2 - 1
        torch.testing.assert_close(model.basis_mat(model.app_field(coords)), features, rtol=1e-4, atol=1e-5)
    box = ckpt["alphaMask.aabb"]
    bits = np.unpackbits(ckpt["alphaMask.mask"])[: int(np.prod(ckpt["alphaMask.shape"]))]
    volume = torch.from_numpy(bits.reshape(ckpt["alphaMask.shape"])).float()
    alpha = F.grid_sample(volume, ((xyz - box[0]) / (box[1] - box[0]) * 2 - 1).view(1, -1, 1, 1, 3),
                          align_corners=True).view(-1)
    inside = ((xyz > box[0]) & (xyz < box[1])).all(-1)
    assert torch.equal(model.alpha_mask(xyz)[inside], (alpha > 0)[inside])
    ray_id = torch.sort(torch.randint(0, 6, (30,), generator=gen))[0]
    mlp_in = randn(gen, 30, 150)
    with torch.no_grad():
        ours = model.render_module(mlp_in, TemporalPacker("tcp")(ray_id, torch.arange(30), mlp_in))
    tempo, t, b = condense(ray_id, mlp_in)
    weights = [s[f"renderModule.layer{k}.0.weight"] for k in (1, 2, 3)]
    torch.testing.assert_close(ours, lif_mlp(weights, tempo)[t, b], rtol=1e-5, atol=1e-5)


def test_tensorf_ann_checkpoint_and_refusals(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(3)
    ckpt = upstream_t(gen)
    s = {k: v for k, v in ckpt["state_dict"].items() if not k.startswith("renderModule")}
    s |= {"renderModule.mlp.0.weight": randn(gen, 128, 150), "renderModule.mlp.2.weight": randn(gen, 128, 128),
          "renderModule.mlp.4.weight": randn(gen, 3, 128)}
    ann = {**ckpt, "state_dict": s, "kwargs": {**ckpt["kwargs"], "shadingMode": "MLP_Fea"}}
    converted = convert_checkpoint("spikingnerf", save(tmp_path / "ann.th", ann))
    assert converted.model == "tensorf_ann"
    create_model("tensorf_ann", **converted.kwargs).load_state_dict(converted.state, strict=True)
    bad = {**ckpt, "kwargs": {**ckpt["kwargs"], "shadingMode": "SH"}}
    with pytest.raises(UpstreamCheckpointError, match="shadingMode") as err:
        convert_checkpoint("spikingnerf", save(tmp_path / "sh.th", bad))
    assert err.value.key == "kwargs.shadingMode"

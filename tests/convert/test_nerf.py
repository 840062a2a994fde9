"""NeRF-seed converter: ``Enigmatisms/NeRF`` checkpoints, outputs against the seed's equations and encoding.

The test writes ``saveModel``'s ``{"model": state_dict, "optimizer": ..., "train_cnt", "epoch"}`` with the
keys of ``nerf/mip_model.py`` (``MipNeRF``), ``nerf/ref_model.py`` (``RefNeRF``) and ``nerf/addtional.py``
(``ProposalNetwork``), every MLP an ``nn.Sequential`` of ``makeMLP`` blocks. The reference forward uses
the seed's ``positional_encoding`` order (``nerf/nerf_helper.py``: per frequency ``[sin(2^k x), cos(2^k x)]``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from snnprof.convert import UpstreamCheckpointError, convert_checkpoint, load_upstream
from snnprof.convert.nerf import encoding_permutation
from snnprof.models import create_model
from snnprof.models.nerf_baselines import ide_coefficients

from .conftest import randn, save

HID = 32


def seed_pe(x: torch.Tensor, levels: int) -> torch.Tensor:
    """The seed's ``positional_encoding`` with ``cat_origin``: ``[x, sin(x), cos(x), sin(2x), cos(2x), ...]``."""
    parts = [x]
    for k in range(levels):
        parts += [torch.sin(2.0**k * x), torch.cos(2.0**k * x)]
    return torch.cat(parts, -1)


def linear_layers(gen: torch.Generator, prefix: str, dims: list[int], state: dict[str, torch.Tensor]) -> None:
    """``Sequential(*makeMLP(...))`` keys: Linear at even indices (an activation after each)."""
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        state[f"{prefix}.{2 * i}.weight"] = randn(gen, b, a, scale=(2 / a) ** 0.5)
        state[f"{prefix}.{2 * i}.bias"] = randn(gen, b, scale=0.1)


def mlp(state: dict[str, torch.Tensor], prefix: str, x: torch.Tensor, n: int, last_act: bool = True) -> torch.Tensor:
    for i in range(n):
        x = F.linear(x, state[f"{prefix}.{2 * i}.weight"], state[f"{prefix}.{2 * i}.bias"])
        x = torch.relu(x) if (i < n - 1 or last_act) else x
    return x


def upstream_mip(gen: torch.Generator) -> dict[str, torch.Tensor]:
    s: dict[str, torch.Tensor] = {}
    linear_layers(gen, "lin_block1", [63, HID, HID, HID, HID], s)
    linear_layers(gen, "lin_block2", [HID + 63, HID, HID, 256], s)
    linear_layers(gen, "bottle_neck", [256, 256], s)
    linear_layers(gen, "opacity_head", [256, 1], s)
    linear_layers(gen, "rgb_layer", [256 + 27, 128, 3], s)
    return s


def reference_mip(s: dict[str, torch.Tensor], pts: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``MipNeRF.forward``: rgb and opacity per point."""
    enc_x, enc_r = seed_pe(pts, 10), seed_pe(dirs / dirs.norm(dim=-1, keepdim=True), 4)
    x = mlp(s, "lin_block2", torch.cat([enc_x, mlp(s, "lin_block1", enc_x, 4)], -1), 3)
    opacity = F.linear(x, s["opacity_head.0.weight"], s["opacity_head.0.bias"])
    x = F.linear(x, s["bottle_neck.0.weight"], s["bottle_neck.0.bias"])
    h = torch.relu(F.linear(torch.cat([x, enc_r], -1), s["rgb_layer.0.weight"], s["rgb_layer.0.bias"]))
    return torch.sigmoid(F.linear(h, s["rgb_layer.2.weight"], s["rgb_layer.2.bias"])), opacity.squeeze(-1)


def _points(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    pts = torch.rand(5, 7, 3, generator=gen) * 2 - 1
    return pts, F.normalize(torch.randn(5, 7, 3, generator=gen), dim=-1)


def test_encoding_permutation_maps_the_seed_order_to_ours() -> None:
    x = torch.randn(4, 3)
    ours = create_model("nerf_mlp", hidden=8).encode_points(x)
    torch.testing.assert_close(ours, seed_pe(x, 10)[:, encoding_permutation(10)])
    assert sorted(encoding_permutation(4).tolist()) == list(range(27))


def test_mipnerf_checkpoint_gives_the_seed_outputs(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(0)
    upstream = upstream_mip(gen)
    path = save(tmp_path / "chkpt_1000_mip.pt", {"model": {f"module.{k}": v for k, v in upstream.items()},
                                                 "optimizer": {"state": {}, "param_groups": []},
                                                 "train_cnt": 1000, "epoch": 10})
    converted = convert_checkpoint("nerf", path)
    assert converted.model == "nerf_mlp" and converted.kwargs == {"hidden": HID}
    model = create_model("nerf_mlp", hidden=HID).eval()
    model.load_state_dict(load_upstream("nerf_mlp", path, {"hidden": HID}), strict=True)
    pts, dirs = _points(gen)
    with torch.no_grad():
        rgb, opacity = model.query(pts, dirs)
    ref_rgb, ref_opacity = reference_mip(upstream, pts, dirs)
    torch.testing.assert_close(rgb, ref_rgb, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(opacity, ref_opacity, rtol=1e-5, atol=1e-6)


def test_proposal_checkpoint_gives_the_seed_density(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(1)
    s: dict[str, torch.Tensor] = {}
    linear_layers(gen, "layers", [63, HID, HID, HID, HID, 1], s)
    path = save(tmp_path / "chkpt_prop.pt", {"model": s})
    converted = convert_checkpoint("nerf", path)
    assert converted.model == "mipnerf360_proposal"
    model = create_model("mipnerf360_proposal", **converted.kwargs).eval()
    model.load_state_dict(converted.state, strict=True)
    pts, dirs = _points(gen)
    with torch.no_grad():
        _, density = model.query(pts, dirs)
    torch.testing.assert_close(density, mlp(s, "layers", seed_pe(pts, 10), 5, last_act=False).squeeze(-1))


def reference_ide(xyz: torch.Tensor, kappa_inv: torch.Tensor, level: int) -> torch.Tensor:
    """Ref-NeRF's IDE with complex numbers (``nerf/ref_func.py``)."""
    mat, m, l_deg = ide_coefficients(level)
    x, y, z = xyz[..., 0:1], xyz[..., 1:2], xyz[..., 2:3]
    vmz = torch.cat([z**i for i in range(mat.shape[0])], -1)
    vmxy = torch.cat([(x + 1j * y) ** int(k) for k in m], -1)
    ide = vmxy * (vmz @ mat) * torch.exp(-0.5 * l_deg * (l_deg + 1) * kappa_inv)
    return torch.cat([ide.real, ide.imag], -1)


def test_refnerf_checkpoint_gives_the_seed_outputs(tmp_path: Path) -> None:
    gen, bneck, level = torch.Generator().manual_seed(2), 16, 4
    s: dict[str, torch.Tensor] = {}
    dir_in = 1 + bneck + 38
    linear_layers(gen, "spa_block1", [63, HID, HID, HID, HID], s)
    linear_layers(gen, "spa_block2", [HID + 63, HID, HID, HID, HID], s)
    linear_layers(gen, "dir_block1", [dir_in, HID, HID, HID, HID], s)
    linear_layers(gen, "dir_block2", [HID + dir_in, HID, HID, HID, HID], s)
    linear_layers(gen, "spec_rgb_head", [HID, 3], s)
    for name, out in (("rho_tau_head", 2), ("norm_col_tint_head", 9), ("bottle_neck", bneck)):
        s[f"{name}.weight"], s[f"{name}.bias"] = randn(gen, out, HID, scale=0.3), randn(gen, out, scale=0.1)
    path = save(tmp_path / "ref_mip.pt", {"model": s, "train_cnt": 5})
    converted = convert_checkpoint("nerf", path)
    assert converted.model == "refnerf"
    assert converted.kwargs == {"hidden": HID, "bottle_neck_dim": bneck, "ide_level": level}
    model = create_model("refnerf", **converted.kwargs).eval()
    model.load_state_dict(load_upstream("refnerf", path, converted.kwargs), strict=True)
    pts, dirs = _points(gen)
    with torch.no_grad():
        rgb, density, normal = model.field(pts, dirs)
    # the seed's RefNeRF.forward (eval: no bottleneck noise; directions given as unit vectors, see docs)
    enc_x = seed_pe(pts, 10)
    inter = mlp(s, "spa_block2", torch.cat([enc_x, mlp(s, "spa_block1", enc_x, 4)], -1), 4)
    n_ref, diffuse, tint = F.linear(inter, s["norm_col_tint_head.weight"], s["norm_col_tint_head.bias"]).split(3, -1)
    rough, dens = F.linear(inter, s["rho_tau_head.weight"], s["rho_tau_head.bias"]).split(1, -1)
    n_ref = -n_ref / (n_ref.norm(dim=-1, keepdim=True) + 1e-7)
    reflect = dirs - 2.0 * (dirs * n_ref).sum(-1, keepdim=True) * n_ref
    all_in = torch.cat([F.linear(inter, s["bottle_neck.weight"], s["bottle_neck.bias"]),
                        reference_ide(reflect, F.softplus(rough - 1.0), level), (n_ref * dirs).sum(-1, keepdim=True)],
                       -1)
    spec = torch.sigmoid(F.linear(mlp(s, "dir_block2", torch.cat([all_in, mlp(s, "dir_block1", all_in, 4)], -1), 4),
                                  s["spec_rgb_head.0.weight"], s["spec_rgb_head.0.bias"]))
    torch.testing.assert_close(rgb, spec * torch.sigmoid(tint) + torch.sigmoid(diffuse), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(density, dens.squeeze(-1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(normal, n_ref, rtol=1e-5, atol=1e-6)


def test_unknown_nerf_layout_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UpstreamCheckpointError, match="MipNeRF, RefNeRF or ProposalNetwork"):
        convert_checkpoint("nerf", save(tmp_path / "x.pt", {"model": {"w.weight": torch.zeros(2, 2)}}))
    s = upstream_mip(torch.Generator().manual_seed(3))
    s["lin_block1.0.weight"] = torch.zeros(HID, 40)
    with pytest.raises(UpstreamCheckpointError, match="position_flevel") as err:
        convert_checkpoint("nerf", save(tmp_path / "y.pt", {"model": s}))
    assert err.value.key == "lin_block1.0.weight"

"""ANN NeRF baselines of the NeRF re-implementation seed (Enigmatisms/NeRF, ``docs/seed_models.md`` §2).

Each model evaluates its MLP at ``samples`` points per ray between ``near`` and ``far`` (bin midpoints,
no jitter: the render is deterministic) and volume-renders them like the seed's ``NeRF.render``
(``alpha = 1 - exp(-relu(sigma) * delta)``, delta scaled by ``|rays_d|``, last delta 1e10, white
background). Counted per sample point (all synaptic layers see real values, so ``macs`` = ``dense_macs``):

=====================  =======  ===================================================================
zoo name               samples  MACs per point
=====================  =======  ===================================================================
``nerf_mlp``           128      527,872: PE 63 -> 4x256 -> skip (319) -> 3x256, density 256->1,
                                bottleneck 256->256, rgb (256+27)->128->3  (seed ``MipNeRF``)
``mipnerf360_proposal`` 64      212,992: PE 63 -> 4x256 -> 1  (seed ``ProposalNetwork``)
``refnerf``            192      1,071,787: spatial 4+4 layers with skip, heads 9 + 2 + 128, directional
                                (1 + 128 + 38 IDE) 4+4 layers with skip, specular 256->3; plus the IDE's
                                ``[9] @ [9, 19]`` spherical-harmonics product (171)  (seed ``RefNeRF``)
=====================  =======  ===================================================================

The samples per ray are the seed's inference counts (64 proposal samples; 128 fine samples for the
NeRF MLP; 64 + 128 merged = 192 for Ref-NeRF), so ``per_sample`` (per image) = H x W x samples x MACs
per point. The proposal-guided resampling itself is not modelled (sample positions are fixed).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.models.nerf_render import ChunkStats, frequency_encoding, split_views
from snnprof.models.nerf_scene import make_inputs
from snnprof.models.registry import register_model

__all__ = ["NeRFMLP", "ProposalMLP", "RefNeRFMLP", "SampledRender", "ide_coefficients"]

logger = logging.getLogger(__name__)

PAPER = ("Enigmatisms/NeRF (PyTorch re-implementation of NeRF, mip-NeRF 360's proposal network and Ref-NeRF); "
         "B. Mildenhall et al. ECCV 2020; J. T. Barron et al. CVPR 2022; D. Verbin et al. CVPR 2022")


@dataclass
class SampledRender:
    """Output of a point-sampled NeRF render.

    Attributes:
        rgb: composited colour ``[..., 3]`` (``None`` for the density-only proposal network).
        acc: accumulated opacity per ray ``[...]``.
        weights: compositing weight of every sample ``[..., S]``.
        z_vals: sample depths along the rays ``[S]`` (units of ``|rays_d|``).
        stats: one :class:`ChunkStats` per chunk (``points`` = samples evaluated).
    """

    rgb: torch.Tensor | None
    acc: torch.Tensor
    weights: torch.Tensor
    z_vals: torch.Tensor
    stats: list[ChunkStats] = field(default_factory=list)


def _mlp(dims: list[int], final_act: bool = True) -> nn.Sequential:
    """Linear layers ``dims[0] -> dims[1] -> ...``, each followed by its own ReLU (the last one optional)."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        layers.append(nn.Linear(d_in, d_out))
        if final_act or i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _init_weights(module: nn.Module) -> None:
    """The seed's init: truncated normal (std 0.02) weights, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class _SampledField(nn.Module):
    """Shared sampling and volume rendering; subclasses implement :meth:`query`.

    Args:
        samples: points per ray.
        near: nearest sample depth.
        far: farthest sample depth.
        white_bg: composite onto white.
        chunk: rays per chunk.
        position_flevel: positional-encoding frequencies of the points (10 -> 63 features).
    """

    has_rgb = True

    def __init__(self, samples: int, *, near: float, far: float, white_bg: bool, chunk: int,
                 position_flevel: int = 10) -> None:
        super().__init__()
        if samples < 1 or chunk < 1 or not far > near:
            raise ValueError("samples >= 1, chunk >= 1 and far > near are required")
        self.samples, self.near, self.far = int(samples), float(near), float(far)
        self.white_bg, self.chunk = bool(white_bg), int(chunk)
        self.position_dim = 3 + 6 * position_flevel
        self.register_buffer("pos_freq", 2.0 ** torch.arange(position_flevel, dtype=torch.float32), persistent=False)
        self.last_render_stats: list[ChunkStats] = []

    def encode_points(self, pts: torch.Tensor) -> torch.Tensor:
        """``[xyz, sin, cos]`` positional encoding of points ``[..., 3]`` -> ``[..., 63]``."""
        return torch.cat([pts, frequency_encoding(pts, self.pos_freq)], -1)

    def query(self, pts: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(rgb [..., 3] or None, raw density [...])`` at points ``[..., 3]`` seen along unit ``dirs``."""
        raise NotImplementedError

    def forward(self, rays_o: torch.Tensor, rays_d: torch.Tensor, viewdirs: torch.Tensor) -> SampledRender:
        """Render rays ``[R, 3]`` or ``[V, ..., 3]`` chunk by chunk; sets ``last_render_stats``."""
        views_o, views_d, views_v = split_views(rays_o), split_views(rays_d), split_views(viewdirs)
        n_views, n_rays = views_o.shape[:2]
        bins = (torch.arange(self.samples, device=rays_o.device, dtype=rays_o.dtype) + 0.5) / self.samples
        z_vals = self.near + (self.far - self.near) * bins
        rgbs, accs, weights, stats = [], [], [], []
        for view in range(n_views):
            for start in range(0, n_rays, self.chunk):
                part = slice(start, min(start + self.chunk, n_rays))
                rgb, acc, w = self._render(views_o[view, part], views_d[view, part], views_v[view, part], z_vals)
                rgbs.append(rgb)
                accs.append(acc)
                weights.append(w)
                n = int(w.shape[0])
                stats.append(ChunkStats(view, n, n * self.samples, n * self.samples, None, n * self.samples))
        self.last_render_stats = stats
        lead = rays_o.shape[:-1]
        rgb_all = torch.cat(rgbs).reshape(rays_o.shape) if self.has_rgb else None
        return SampledRender(rgb_all, torch.cat(accs).reshape(lead), torch.cat(weights).reshape(*lead, -1),
                             z_vals, stats)

    def _render(self, rays_o: torch.Tensor, rays_d: torch.Tensor, viewdirs: torch.Tensor,
                z_vals: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """One chunk at the shared depths ``z_vals [S]``: ``(rgb [r, 3], acc [r], weights [r, S])``."""
        rgb, acc, weights = self.render_at(rays_o, rays_d, viewdirs, z_vals.expand(rays_o.shape[0], -1))
        return rgb, acc, weights

    def render_at(self, rays_o: torch.Tensor, rays_d: torch.Tensor, viewdirs: torch.Tensor,
                  z_vals: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Render rays ``[R, 3]`` at per-ray sample depths ``z_vals [R, S]`` (sorted, units of ``|rays_d|``).

        What the training loops use for proposal-guided samples. Returns ``(rgb [R, 3] or None,
        acc [R], weights [R, S])``; see :meth:`composite`.
        """
        pts = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_vals.unsqueeze(-1)
        dirs = viewdirs.unsqueeze(1).expand(pts.shape)
        rgb, density = self.query(pts, dirs)
        return self.composite(rgb, density, z_vals, rays_d)

    def composite(self, rgb: torch.Tensor | None, density: torch.Tensor, z_vals: torch.Tensor,
                  rays_d: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """The seed's ``NeRF.render``: ``alpha = 1 - exp(-relu(sigma) delta)``, ``delta`` scaled by ``|rays_d|``.

        Args:
            rgb: colour per sample ``[R, S, 3]`` (``None`` for the proposal network).
            density: raw density per sample ``[R, S]`` (``relu`` applied here).
            z_vals: sample depths ``[R, S]``; the last sample's delta is 1e10.
            rays_d: ray directions ``[R, 3]``.

        Returns:
            ``(rgb [R, 3] or None, acc [R], weights [R, S])``; white background when ``white_bg``.
        """
        depth = z_vals * rays_d.norm(dim=-1, keepdim=True)
        delta = torch.cat([depth[:, 1:] - depth[:, :-1], torch.full_like(depth[:, :1], 1e10)], -1)
        log_keep = torch.log(torch.exp(-F.relu(density) * delta) + 1e-10)
        weights = -torch.expm1(-F.relu(density) * delta) * torch.exp(torch.cumsum(log_keep, -1) - log_keep)
        acc = weights.sum(-1)
        if rgb is None:
            return None, acc, weights
        color = (weights.unsqueeze(-1) * rgb).sum(-2)
        if self.white_bg:
            color = color + (1.0 - acc).unsqueeze(-1)
        return color, acc, weights


class NeRFMLP(_SampledField):
    """The seed's NeRF MLP (``MipNeRF`` class: plain PE, skip connection), 527,872 MACs per point.

    Args:
        hidden: width (256).
        direction_flevel: view-direction PE frequencies (4 -> 27 features).
        samples: points per ray (128, the seed's fine samples).
        near: nearest depth (2).
        far: farthest depth (6).
        white_bg: composite onto white.
        chunk: rays per chunk.
    """

    def __init__(self, *, hidden: int = 256, direction_flevel: int = 4, samples: int = 128, near: float = 2.0,
                 far: float = 6.0, white_bg: bool = True, chunk: int = 1024) -> None:
        super().__init__(samples, near=near, far=far, white_bg=white_bg, chunk=chunk)
        p, d = self.position_dim, 3 + 6 * direction_flevel
        self.lin_block1 = _mlp([p, hidden, hidden, hidden, hidden])
        self.lin_block2 = _mlp([hidden + p, hidden, hidden, 256])
        self.bottle_neck = nn.Linear(256, 256)
        self.opacity_head = nn.Linear(256, 1)
        self.rgb_layer = nn.Sequential(nn.Linear(256 + d, 128), nn.ReLU(), nn.Linear(128, 3), nn.Sigmoid())
        self.register_buffer("dir_freq", 2.0 ** torch.arange(direction_flevel, dtype=torch.float32), persistent=False)
        self.apply(_init_weights)

    def query(self, pts: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Colour and raw opacity of every point."""
        enc_x = self.encode_points(pts)
        enc_r = torch.cat([dirs, frequency_encoding(dirs, self.dir_freq)], -1)
        x = self.lin_block2(torch.cat([enc_x, self.lin_block1(enc_x)], -1))
        opacity = self.opacity_head(x).squeeze(-1)
        rgb = self.rgb_layer(torch.cat([self.bottle_neck(x), enc_r], -1))
        return rgb, opacity


class ProposalMLP(_SampledField):
    """mip-NeRF 360's proposal network as in the seed (``ProposalNetwork``), 212,992 MACs per point.

    Args:
        hidden: width (256, the seed's ``prop_net_width``).
        samples: points per ray (64, the seed's coarse samples).
        near: nearest depth.
        far: farthest depth.
        white_bg: unused (no colour); kept for a uniform signature.
        chunk: rays per chunk.
    """

    has_rgb = False

    def __init__(self, *, hidden: int = 256, samples: int = 64, near: float = 2.0, far: float = 6.0,
                 white_bg: bool = True, chunk: int = 2048) -> None:
        super().__init__(samples, near=near, far=far, white_bg=white_bg, chunk=chunk)
        self.layers = _mlp([self.position_dim, hidden, hidden, hidden, hidden, 1], final_act=False)
        self.apply(_init_weights)

    def query(self, pts: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Raw density of every point (no colour)."""
        del dirs
        return None, self.layers(self.encode_points(pts)).squeeze(-1)


def _sph_harm_coeff(l_deg: int, m: int, k: int) -> float:
    """Coefficient of ``cos^k(theta) sin^m(theta)`` in the normalised spherical harmonic ``Y_l^m``."""
    gbc = math.prod(0.5 * (l_deg + k + m - 1.0) - i for i in range(l_deg)) / math.factorial(l_deg)
    legendre = ((-1) ** m * 2**l_deg * math.factorial(l_deg) / math.factorial(k) / math.factorial(l_deg - k - m)
                * gbc)
    norm = math.sqrt((2.0 * l_deg + 1.0) * math.factorial(l_deg - m) / (4.0 * math.pi * math.factorial(l_deg + m)))
    return norm * legendre


def ide_coefficients(deg_view: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ref-NeRF integrated directional encoding tables: ``(mat [2^(L-1)+1, n], m [n], l [n])``.

    The (m, l) pairs are ``l = 1, 2, 4, ..., 2^(L-1)`` and ``m = 0..l``; ``n = 19`` for ``L = 4``, giving
    an encoding of ``2 n = 38`` features (the seed's ``((1 << L) - 1 + L) << 1``).
    """
    pairs = [(m, 2**i) for i in range(deg_view) for m in range(2**i + 1)]
    mat = torch.zeros(2 ** (deg_view - 1) + 1, len(pairs))
    for col, (m, l_deg) in enumerate(pairs):
        for k in range(l_deg - m + 1):
            mat[k, col] = _sph_harm_coeff(l_deg, m, k)
    return mat, torch.tensor([m for m, _ in pairs]), torch.tensor([float(l_deg) for _, l_deg in pairs])


class RefNeRFMLP(_SampledField):
    """The seed's Ref-NeRF (spatial MLP, reflection, IDE, directional MLP), 1,071,787 MACs per point.

    Args:
        hidden: width (256).
        bottle_neck_dim: bottleneck features (128).
        ide_level: IDE degree L (4 -> 38 features).
        samples: points per ray (192 = 64 proposal + 128 fine samples, merged).
        near: nearest depth.
        far: farthest depth.
        white_bg: composite onto white.
        chunk: rays per chunk.
        bottle_neck_noise: std of the Gaussian noise added to the bottleneck in ``train()`` mode (the
            seed's ``--bottle_neck_noise``, 0.02); never in ``eval()`` mode, so counts do not see it.
    """

    def __init__(self, *, hidden: int = 256, bottle_neck_dim: int = 128, ide_level: int = 4, samples: int = 192,
                 near: float = 2.0, far: float = 6.0, white_bg: bool = True, chunk: int = 512,
                 bottle_neck_noise: float = 0.02) -> None:
        super().__init__(samples, near=near, far=far, white_bg=white_bg, chunk=chunk)
        if bottle_neck_noise < 0:
            raise ValueError(f"bottle_neck_noise must be >= 0, got {bottle_neck_noise}")
        self.bottle_neck_noise = float(bottle_neck_noise)
        p = self.position_dim
        mat, m_idx, l_deg = ide_coefficients(ide_level)
        self.register_buffer("ide_mat", mat, persistent=False)
        self.register_buffer("ide_m", m_idx, persistent=False)
        self.register_buffer("ide_sigma", 0.5 * l_deg * (l_deg + 1), persistent=False)
        dir_in = 1 + bottle_neck_dim + 2 * mat.shape[1]
        self.spa_block1 = _mlp([p, hidden, hidden, hidden, hidden])
        self.spa_block2 = _mlp([hidden + p, hidden, hidden, hidden, hidden])
        self.rho_tau_head = nn.Linear(hidden, 2)
        self.norm_col_tint_head = nn.Linear(hidden, 9)
        self.bottle_neck = nn.Linear(hidden, bottle_neck_dim)
        self.dir_block1 = _mlp([dir_in, hidden, hidden, hidden, hidden])
        self.dir_block2 = _mlp([hidden + dir_in, hidden, hidden, hidden, hidden])
        self.spec_rgb_head = nn.Sequential(nn.Linear(hidden, 3), nn.Sigmoid())
        self.apply(_init_weights)

    def integrated_dir_enc(self, xyz: torch.Tensor, kappa_inv: torch.Tensor) -> torch.Tensor:
        """IDE of unit directions ``[..., 3]`` with roughness ``[..., 1]`` -> ``[..., 2 n]`` (real, imag)."""
        x, y, z = xyz[..., 0:1], xyz[..., 1:2], xyz[..., 2:3]
        powers_z, re, im = [torch.ones_like(z)], [torch.ones_like(x)], [torch.zeros_like(x)]
        for _ in range(self.ide_mat.shape[0] - 1):
            powers_z.append(powers_z[-1] * z)
            re, im = [*re, re[-1] * x - im[-1] * y], [*im, re[-1] * y + im[-1] * x]
        legendre = torch.cat(powers_z, -1) @ self.ide_mat
        atten = torch.exp(-self.ide_sigma * kappa_inv)
        re_m = torch.cat(re, -1).index_select(-1, self.ide_m)
        im_m = torch.cat(im, -1).index_select(-1, self.ide_m)
        return torch.cat([re_m * legendre * atten, im_m * legendre * atten], -1)

    def field(self, pts: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rgb [..., 3], raw density [...], predicted normal [..., 3])`` of points seen along ``dirs``.

        The raw density is the ``rho_tau_head`` output before ``softplus(x + 0.5)``; the normal is the
        negated, normalised ``norm_col_tint_head`` output (the seed's ``RefNeRF.forward``).
        """
        enc_x = self.encode_points(pts)
        inter = self.spa_block2(torch.cat([enc_x, self.spa_block1(enc_x)], -1))
        normal, diffuse, tint = self.norm_col_tint_head(inter).split((3, 3, 3), dim=-1)
        roughness, density = self.rho_tau_head(inter).split((1, 1), dim=-1)
        roughness = F.softplus(roughness - 1.0)
        bottle = self.bottle_neck(inter)
        if self.training and self.bottle_neck_noise > 0:
            bottle = bottle + torch.randn_like(bottle) * self.bottle_neck_noise
        normal = -normal / (normal.norm(dim=-1, keepdim=True) + 1e-7)
        reflect = dirs - 2.0 * (dirs * normal).sum(-1, keepdim=True) * normal
        nv_dot = (normal * dirs).sum(-1, keepdim=True)
        dir_in = torch.cat([bottle, self.integrated_dir_enc(reflect, roughness), nv_dot], -1)
        spec = self.spec_rgb_head(self.dir_block2(torch.cat([dir_in, self.dir_block1(dir_in)], -1)))
        rgb = spec * torch.sigmoid(tint) + torch.sigmoid(diffuse)
        return rgb, density.squeeze(-1), normal

    def query(self, pts: torch.Tensor, dirs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Colour (specular * tint + diffuse) and density (``softplus(raw + 0.5)``) of every point."""
        rgb, density, _ = self.field(pts, dirs)
        return rgb, F.softplus(density + 0.5)


def _run_rgb(model: nn.Module, inputs: dict[str, torch.Tensor], time_steps: int) -> Any:
    """Render every view; returns the images ``[V, H, W, 3]``."""
    del time_steps
    return model(**inputs).rgb


def _run_weights(model: nn.Module, inputs: dict[str, torch.Tensor], time_steps: int) -> Any:
    """Render every view with the proposal network; returns the sample weights ``[V, H, W, S]``."""
    del time_steps
    return model(**inputs).weights


_DEFAULTS = {"batch_size": 1, "time_steps": 1, "image_size": 32}


@register_model("nerf_mlp", make_inputs=make_inputs, run=_run_rgb, step_mode="ann", defaults=_DEFAULTS,
                paper=PAPER, description="NeRF MLP (PE 63, 8x256 with skip, view branch), 128 samples/ray")
def nerf_mlp(**kwargs: Any) -> NeRFMLP:
    """Build the seed's NeRF MLP (see :class:`NeRFMLP`)."""
    return NeRFMLP(**kwargs)


@register_model("mipnerf360_proposal", make_inputs=make_inputs, run=_run_weights, step_mode="ann",
                defaults=_DEFAULTS, paper=PAPER,
                description="mip-NeRF 360 proposal network (PE 63, 4x256 -> density), 64 samples/ray")
def mipnerf360_proposal(**kwargs: Any) -> ProposalMLP:
    """Build the seed's proposal network (see :class:`ProposalMLP`)."""
    return ProposalMLP(**kwargs)


@register_model("refnerf", make_inputs=make_inputs, run=_run_rgb, step_mode="ann", defaults=_DEFAULTS,
                paper=PAPER, description="Ref-NeRF (spatial + directional MLPs, IDE level 4), 192 samples/ray")
def refnerf(**kwargs: Any) -> RefNeRFMLP:
    """Build the seed's Ref-NeRF (see :class:`RefNeRFMLP`)."""
    return RefNeRFMLP(**kwargs)

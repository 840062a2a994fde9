"""SpikingNeRF-T: TensoRF's vector-matrix (VM) decomposition with a spiking feature MLP and TCP.

Per render chunk (``docs/seed_models.md`` §1.2-1.3, TensoRF ``TensorBase.forward``)::

    sample      N = int(|aabb diag| / step) + 1 uniform steps from the box entry (near clamp), step =
                mean voxel edge * step_ratio; points outside the box and the alpha mask are invalid
    density     sigma = softplus(sum_modes sum_c plane_c * line_c + density_shift), alpha = 1 - exp(-sigma dt 25)
    weights     w_i = alpha_i * prod_{j<i}(1 - alpha_j + 1e-10); app_mask = w > 1e-4
    features    basis_mat(plane * line products [N_valid, 144]) -> 27 appearance features
    colour      MLP input [features 27, viewdirs 3, PE(features, fea_pe), PE(viewdirs, view_pe)]
                (150 with fea_pe = view_pe = 2); spiking MLP on [T, B, C] (TCP; "tp" also accepted) |
                ReLU MLP without biases (tensorf_ann, TensoRF ``MLPRender_Fea``)
    render      rgb = sum_i w_i rgb_i + (1 - sum_i w_i) (white background), clamped to [0, 1]

Counting: the seed's "FLOPs" are ``N_valid * in_mlpC * featureC`` (the MLP's first layer, ``rgbnet.layer1``)
and its "SOPs" ``spikes_L1 * featureC + spikes_L2 * 3``; snnprof's ``macs`` additionally contain the basis
matrix (``N_valid * 144 * 27``), which the seed does not count.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.models.common import seeded_generator
from snnprof.models.nerf_color import LIF_TYPES, AnnColorNet, SpikingColorNet, scale_init
from snnprof.models.nerf_grid import PLANE_AXES, AlphaMask, VMField, normalize_coords
from snnprof.models.nerf_packing import LAYOUTS, Packing, TemporalPacker
from snnprof.models.nerf_render import (
    ChunkStats,
    RenderOutput,
    frequency_encoding,
    ray_box_bounds,
    segment_sum,
    split_views,
)
from snnprof.models.nerf_scene import SCENE_BOX, make_inputs, run, scene_factors
from snnprof.models.registry import register_model
from snnprof.models.spikingnerf_d import PAPER as PAPER_D
from snnprof.models.spikingnerf_d import smooth_noise

__all__ = ["INITS", "TensoRF", "mlp_in_features", "spikingnerf_t", "tensorf_ann"]

logger = logging.getLogger(__name__)

#: ``scene`` (synthetic scene, realistic occupancy and activity) or ``tensorf`` (TensoRF's random start).
INITS: tuple[str, ...] = ("scene", "tensorf")

PAPER = PAPER_D.replace("DVGO: C. Sun, M. Sun, H.-T. Chen, CVPR 2022",
                        "TensoRF: A. Chen, Z. Xu, A. Geiger, J. Yu, H. Su, ECCV 2022")

_SIGMA_GAIN = 16.0
_FOG_COMPONENTS = 2
_FOG = 1.0
_SNN_GAIN = 4.0
_ANN_GAIN = 1.4


def _sizes(value: int | Sequence[int], name: str) -> tuple[int, int, int]:
    """``(X, Y, Z)`` from one size or three; each at least 2."""
    sizes = (int(value),) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(sizes) != 3 or min(sizes) < 2:
        raise ValueError(f"{name} must be an integer >= 2 or three of them, got {value!r}")
    return sizes  # type: ignore[return-value]


def mlp_in_features(app_dim: int, view_pe: int, fea_pe: int) -> int:
    """``in_mlpC = 2*view_pe*3 + 2*fea_pe*app_dim + 3 + app_dim`` (150 for 27 features, PE 2/2)."""
    return 2 * view_pe * 3 + 2 * fea_pe * app_dim + 3 + app_dim


class TensoRF(nn.Module):
    """TensoRF VM model with a spiking (``snn``) or ReLU (``ann``) feature MLP.

    ``forward(rays_o, rays_d, viewdirs) -> RenderOutput`` with rays ``[R, 3]`` or ``[V, ..., 3]`` (views
    chunked separately; one image is ``[1, H, W, 3]``); ``last_render_stats`` holds one :class:`ChunkStats`
    per chunk. As in TensoRF, rays are marched along ``viewdirs`` (``rays_d`` is accepted for a uniform
    interface and not used). ``alpha_mask`` is all-true until :meth:`update_alpha_mask` (or ``init="scene"``).

    Args:
        color: ``snn`` or ``ann``.
        layout: SNN temporal layout; the seed's SpikingNeRF-T implements ``tcp`` only.
        tempo_flip: far-to-near ordering of each ray's points.
        grid_size: VM resolution, one for every axis or ``(X, Y, Z)`` (TensoRF's ``gridSize``; lego ends near 300).
        alpha_mask_size: ``(X, Y, Z)`` of the occupancy mask (TensoRF keeps the resolution of its last
            ``updateAlphaMask``; default ``grid_size``).
        density_n_comp: density components per mode (16).
        app_n_comp: appearance components per mode (48).
        app_dim: appearance features (27).
        view_pe: view-direction PE frequencies (2).
        fea_pe: feature PE frequencies (2).
        feature_c: MLP width (128).
        depth: MLP Linear layers (3).
        lif_type: ``lif`` or ``plif``.
        step_ratio: sample step in voxel edges (0.5).
        distance_scale: TensoRF's distance scale (25).
        density_shift: TensoRF's density shift (-10).
        ray_march_weight_thres: ``app_mask`` threshold on the weights (1e-4).
        alpha_mask_thres: threshold of the occupancy mask built by ``init="scene"`` (1e-4).
        bbox: ``(xyz_min, xyz_max)``.
        near: nearest ray parameter.
        far: farthest ray parameter.
        white_bg: composite onto white.
        chunk: rays per render chunk (the seed renders 4096).
        init: one of :data:`INITS`.
        seed: seed of the initialisation (the global RNG is not used).
    """

    def __init__(self, *, color: str = "snn", layout: str = "tcp", tempo_flip: bool = False,
                 grid_size: int | Sequence[int] = 48, alpha_mask_size: Sequence[int] | None = None,
                 density_n_comp: int = 16, app_n_comp: int = 48, app_dim: int = 27, view_pe: int = 2,
                 fea_pe: int = 2, feature_c: int = 128, depth: int = 3, lif_type: str = "lif",
                 step_ratio: float = 0.5, distance_scale: float = 25.0, density_shift: float = -10.0,
                 ray_march_weight_thres: float = 1e-4, alpha_mask_thres: float = 1e-4,
                 bbox: Sequence[Sequence[float]] = SCENE_BOX, near: float = 2.0, far: float = 6.0,
                 white_bg: bool = True, chunk: int = 4096, init: str = "scene", seed: int = 0) -> None:
        super().__init__()
        for name, value, allowed in (("color", color, ("snn", "ann")), ("layout", layout, LAYOUTS),
                                     ("lif_type", lif_type, LIF_TYPES), ("init", init, INITS)):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        sizes = _sizes(grid_size, "grid_size")
        mask_sizes = sizes if alpha_mask_size is None else _sizes(alpha_mask_size, "alpha_mask_size")
        if chunk < 1 or step_ratio <= 0:
            raise ValueError("chunk >= 1 and step_ratio > 0 are required")
        self.color, self.layout = color, layout
        self.density_shift, self.distance_scale = float(density_shift), float(distance_scale)
        self.ray_march_weight_thres, self.alpha_mask_thres = float(ray_march_weight_thres), float(alpha_mask_thres)
        self.near, self.far, self.white_bg, self.chunk = float(near), float(far), bool(white_bg), int(chunk)
        self.step_ratio, self.view_pe, self.fea_pe = float(step_ratio), int(view_pe), int(fea_pe)
        self.register_buffer("xyz_min", torch.tensor(bbox[0], dtype=torch.float32))
        self.register_buffer("xyz_max", torch.tensor(bbox[1], dtype=torch.float32))
        gen = seeded_generator(seed)
        self.grid_size = sizes
        self.density_field = VMField(density_n_comp, self.grid_size, reduce=True, generator=gen)
        self.app_field = VMField(app_n_comp, self.grid_size, reduce=False, generator=gen)
        self.basis_mat = nn.Linear(3 * app_n_comp, app_dim, bias=False)
        self.alpha_mask = AlphaMask(torch.ones(mask_sizes), self.xyz_min, self.xyz_max)
        self.in_mlpc = mlp_in_features(app_dim, view_pe, fea_pe)
        self.register_buffer("fea_freq", 2.0 ** torch.arange(self.fea_pe, dtype=torch.float32), persistent=False)
        self.register_buffer("view_freq", 2.0 ** torch.arange(self.view_pe, dtype=torch.float32), persistent=False)
        if color == "snn":
            self.packer = TemporalPacker(layout, tempo_flip)
            self.render_module: nn.Module = SpikingColorNet(self.in_mlpc, feature_c, depth, lif_type)
        else:
            self.render_module = AnnColorNet(self.in_mlpc, feature_c, depth, bias=False)
        self.last_render_stats: list[ChunkStats] = []
        if init == "scene":
            self._init_scene(gen)

    # ----------------------------------------------------------------- geometry
    @property
    def step_size(self) -> float:
        """Sample spacing along a ray (world units): mean voxel edge times ``step_ratio``."""
        extent = (self.xyz_max - self.xyz_min).tolist()
        units = [e / (n - 1) for e, n in zip(extent, self.grid_size, strict=True)]
        return sum(units) / len(units) * self.step_ratio

    @property
    def n_samples(self) -> int:
        """Samples per ray: ``int(|aabb diagonal| / step_size) + 1``."""
        return int(float((self.xyz_max - self.xyz_min).norm()) / self.step_size) + 1

    def sigma(self, xyz: torch.Tensor) -> torch.Tensor:
        """Density at world points ``[N, 3]``: ``softplus(VM density feature + density_shift)``."""
        coords = normalize_coords(xyz, self.xyz_min, self.xyz_max)
        return F.softplus(self.density_field(coords) + self.density_shift)

    # ----------------------------------------------------------------- initialisation
    @torch.no_grad()
    def _init_scene(self, gen: torch.Generator) -> None:
        """Density factors = the scene's primitives (+ smooth fog); appearance and MLP with real activity."""
        lo, hi = self.xyz_min.tolist(), self.xyz_max.tolist()
        width = 1.5 * float((self.xyz_max - self.xyz_min).mean()) / self.grid_size[0]
        used = [0, 0, 0]
        for line_axis, plane, line in scene_factors(self.grid_size, lo, hi, width):
            mode = next(m for m, (_, axis) in enumerate(PLANE_AXES) if axis == line_axis)
            comp = used[mode]
            used[mode] += 1
            self.density_field.planes[mode][0, comp] = plane * _SIGMA_GAIN**0.5
            self.density_field.lines[mode][0, comp, :, 0] = line * _SIGMA_GAIN**0.5
        for mode in range(3):
            for comp in range(used[mode], min(used[mode] + _FOG_COMPONENTS, self.density_field.n_comp)):
                plane = self.density_field.planes[mode]
                noise = smooth_noise((plane.shape[2], plane.shape[3], 1), 1, gen)[0, 0, :, :, 0]
                plane[0, comp] = noise * _FOG
                self.density_field.lines[mode][0, comp, :, 0] = 1.0
        for param in self.app_field.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
        scale_init(self.basis_mat, 1.0, gen)
        scale_init(self.render_module, _SNN_GAIN if self.color == "snn" else _ANN_GAIN, gen)
        self.update_alpha_mask()

    def param_groups(self, lr_grid: float = 0.02, lr_network: float = 1e-3) -> list[dict[str, Any]]:
        """Adam groups with TensoRF's learning rates: factors 0.02, basis matrix and MLP 1e-3."""
        grids = [*self.density_field.parameters(), *self.app_field.parameters()]
        network = [*self.basis_mat.parameters(), *self.render_module.parameters()]
        return [{"params": grids, "lr": lr_grid, "name": "grid"},
                {"params": network, "lr": lr_network, "name": "network"}]

    @torch.no_grad()
    def upsample_volume_grid(self, grid_size: int | Sequence[int]) -> None:
        """Resample every factor to ``grid_size`` (per axis or ``(X, Y, Z)``; TensoRF's upsampling schedule)."""
        self.grid_size = _sizes(grid_size, "grid_size")
        self.density_field.scale_grid(self.grid_size)
        self.app_field.scale_grid(self.grid_size)

    @torch.no_grad()
    def update_alpha_mask(self) -> int:
        """Rebuild the occupancy mask from the current density (TensoRF ``updateAlphaMask``); voxels kept."""
        occupied = self._dense_occupancy()
        self.alpha_mask = AlphaMask(occupied, self.xyz_min, self.xyz_max).to(self.xyz_min.device)
        return int(occupied.sum())

    @torch.no_grad()
    def _dense_occupancy(self) -> torch.Tensor:
        """TensoRF ``updateAlphaMask``: alpha over one step, 3x3x3 max-pooled, >= ``alpha_mask_thres``."""
        axes = [torch.linspace(float(self.xyz_min[a]), float(self.xyz_max[a]), self.grid_size[a]) for a in range(3)]
        pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3).to(self.xyz_min.device)
        alpha = -torch.expm1(-self.sigma(pts) * self.step_size).reshape(self.grid_size)
        alpha = F.max_pool3d(alpha[None, None], kernel_size=3, padding=1, stride=1)[0, 0]
        return (alpha >= self.alpha_mask_thres).float().cpu()

    # ----------------------------------------------------------------- rendering
    def forward(self, rays_o: torch.Tensor, rays_d: torch.Tensor, viewdirs: torch.Tensor) -> RenderOutput:
        """Render rays ``[R, 3]`` or ``[V, ..., 3]``; sets ``last_render_stats``."""
        del rays_d
        views_o, views_v = split_views(rays_o), split_views(viewdirs)
        n_views, n_rays = views_o.shape[:2]
        parts: list[tuple[torch.Tensor, ...]] = []
        stats: list[ChunkStats] = []
        for view in range(n_views):
            for start in range(0, n_rays, self.chunk):
                stop = min(start + self.chunk, n_rays)
                *tensors, chunk_stats = self.render_chunk(views_o[view, start:stop], views_v[view, start:stop], view)
                tensors[-1] = tensors[-1] + (view * n_rays + start)
                parts.append(tuple(tensors))
                stats.append(chunk_stats)
        self.last_render_stats = stats
        rgb, last, weights, raw, ray_id = (torch.cat([p[i] for p in parts]) for i in range(5))
        return RenderOutput(rgb.reshape(rays_o.shape), last.reshape(rays_o.shape[:-1]), weights, raw, ray_id, stats)

    def render_chunk(self, rays_o: torch.Tensor, viewdirs: torch.Tensor, view: int = 0) -> tuple[Any, ...]:
        """Render one chunk ``[r, 3]``: ``(rgb, bg_weight, weights, raw_rgb, ray_id, ChunkStats)``."""
        n_rays, n_samples = rays_o.shape[0], self.n_samples
        t_min, _ = ray_box_bounds(rays_o, viewdirs, self.xyz_min, self.xyz_max, near=self.near, far=self.far)
        z_vals = t_min.unsqueeze(-1) + self.step_size * torch.arange(n_samples, device=rays_o.device)
        pts = rays_o.unsqueeze(1) + viewdirs.unsqueeze(1) * z_vals.unsqueeze(-1)
        valid = ((pts >= self.xyz_min) & (pts <= self.xyz_max)).all(-1)
        sampled = int(valid.sum())
        valid[valid.clone()] = self.alpha_mask(pts[valid])
        sigma = pts.new_zeros(valid.shape)
        sigma[valid] = self.sigma(pts[valid])
        dists = torch.cat([z_vals[:, 1:] - z_vals[:, :-1], torch.zeros_like(z_vals[:, :1])], -1)
        log_keep = torch.log(torch.exp(-sigma * dists * self.distance_scale) + 1e-10)
        transmit = torch.exp(torch.cumsum(log_keep, -1) - log_keep)
        weights = -torch.expm1(-sigma * dists * self.distance_scale) * transmit
        bg_weight = transmit[:, -1] * torch.exp(log_keep[:, -1])
        app_mask = weights > self.ray_march_weight_thres
        ray_id, step_id = app_mask.nonzero(as_tuple=True)
        rgb, packing = self._colour(pts[app_mask], viewdirs[ray_id], ray_id, step_id)
        w_valid = weights[app_mask]
        marched = segment_sum(w_valid.unsqueeze(-1) * rgb, ray_id, n_rays)
        if self.white_bg:
            marched = marched + (1.0 - weights.sum(-1)).unsqueeze(-1)
        stats = ChunkStats.of(view, (n_rays, sampled, int(valid.sum()), None, int(ray_id.numel())), packing,
                              self.in_mlpc)
        return marched.clamp(0, 1), bg_weight, w_valid, rgb, ray_id, stats

    def _colour(self, pts: torch.Tensor, viewdirs: torch.Tensor, ray_id: torch.Tensor,
                step_id: torch.Tensor) -> tuple[torch.Tensor, Packing | None]:
        """Colours ``[N_valid, 3]`` of the app-masked points and the SNN packing (``None`` for the ANN)."""
        features = self.basis_mat(self.app_field(normalize_coords(pts, self.xyz_min, self.xyz_max)))
        parts = [features, viewdirs]
        if self.fea_pe > 0:
            parts.append(frequency_encoding(features, self.fea_freq))
        if self.view_pe > 0:
            parts.append(frequency_encoding(viewdirs, self.view_freq))
        mlp_in = torch.cat(parts, -1)
        if self.color == "ann":
            return torch.sigmoid(self.render_module(mlp_in)), None
        packing = self.packer(ray_id, step_id, mlp_in)
        if packing.points == 0:
            return mlp_in.new_zeros(0, 3), packing
        with packing.valid_slots():  # the SNN's [T, B] padding slots do not count as valid updates
            return torch.sigmoid(self.render_module(mlp_in, packing)), packing


_DEFAULTS = {"batch_size": 1, "time_steps": 1, "image_size": 32}


@register_model(
    "spikingnerf_t", make_inputs=make_inputs, run=run, step_mode="multi", defaults=_DEFAULTS, paper=PAPER,
    description="SpikingNeRF-T: TensoRF VM decomposition + spiking feature MLP 150-128-128-3 (LIF), TCP",
)
def spikingnerf_t(layout: str = "tcp", **kwargs: Any) -> TensoRF:
    """Build SpikingNeRF-T (see :class:`TensoRF` for every keyword argument)."""
    return TensoRF(color="snn", layout=layout, **kwargs)


@register_model(
    "tensorf_ann", make_inputs=make_inputs, run=run, step_mode="ann", defaults=_DEFAULTS, paper=PAPER,
    description="TensoRF (ANN baseline of SpikingNeRF-T): same VM factors, ReLU feature MLP 150-128-128-3",
)
def tensorf_ann(**kwargs: Any) -> TensoRF:
    """Build the TensoRF ANN baseline (see :class:`TensoRF`; spiking options do not apply)."""
    for key in ("layout", "tempo_flip", "lif_type"):
        if key in kwargs:
            raise ValueError(f"{key} does not apply to tensorf_ann (no spiking layers)")
    return TensoRF(color="ann", **kwargs)

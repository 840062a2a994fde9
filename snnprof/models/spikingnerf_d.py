"""SpikingNeRF-D (Yao et al., arXiv 2309.10987): DVGO's dense voxel grids with a spiking colour MLP.

Per render chunk of rays (``docs/seed_models.md`` §1.1-1.3, DVGO's ``render_utils``)::

    sample      uniform steps of stepsize * voxel_size from the bbox entry (near clamp), in-box points
    mask 1      mask_cache (occupancy cache, nearest voxel)
    density     DenseGrid(1) trilinear -> alpha = 1 - (1 + exp(density + shift)) ** (-interval)
    mask 2      alpha > fast_color_thres
    weights     w_i = alpha_i * prod_{j<i}(1 - alpha_j), rays stop once transmittance < 1e-3
    mask 3      weights > fast_color_thres
    colour      k0 DenseGrid(12) + view PE (3 + 2*3*4) = 39 features per point
                spiking MLP on [T, B, 39] (layout "tcp" | "tp", tempo_flip) | ReLU MLP (dvgo_ann)
    render      rgb = sum_i w_i * sigmoid(logits_i) + alphainv_last * bg

Counting identities (tested exactly in ``tests/nerf``): the seed's ``--op_count`` "FLOPs" of a render
equal ``macs`` = ``M * 39 * 128`` (M = points after mask 3; only the first layer sees real values),
its "SOPs" equal ``sops`` = ``spikes(lif1) * 128 + spikes(lif2) * 3``; for ``dvgo_ann`` ``macs`` =
``M * 21,760``. ``model.last_render_stats`` holds T, B, M and the padding per chunk of the last call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.models.common import seeded_generator
from snnprof.models.nerf_color import LIF_TYPES, AnnColorNet, SpikingColorNet, scale_init
from snnprof.models.nerf_grid import DenseGrid, MaskGrid
from snnprof.models.nerf_packing import LAYOUTS, TemporalPacker
from snnprof.models.nerf_render import (
    ChunkStats,
    RenderOutput,
    composite_segments,
    frequency_encoding,
    sample_dvgo,
    segment_sum,
    split_views,
)
from snnprof.models.nerf_scene import SCENE_BOX, make_inputs, occupancy, run
from snnprof.models.registry import register_model

__all__ = ["COLOR_HEADS", "INITS", "DirectVoxGO", "dvgo_ann", "smooth_noise", "spikingnerf_d"]

logger = logging.getLogger(__name__)

#: Colour heads: spiking MLP, ReLU MLP, or DVGO's coarse stage (sigmoid of a 3-channel grid).
COLOR_HEADS: tuple[str, ...] = ("snn", "ann", "grid")
#: Initialisations: the synthetic scene (profiling), or DVGO's training start (empty grids).
INITS: tuple[str, ...] = ("scene", "dvgo")

PAPER = ("Y. Yao, Q. Hu, T. Zhou, Z. Liu, Z. Mo, J. Zhu, Z. Zhuge, J. Cheng. SpikingNeRF: Making bio-inspired "
         "neural networks see through the real world. arXiv:2309.10987 (SpiNeRF, Front. Neurosci. 2025); "
         "DVGO: C. Sun, M. Sun, H.-T. Chen, CVPR 2022")

# Synthetic-scene initialisation (init="scene"): density = GAIN * occupancy - OFFSET + FOG * noise.
_DENSITY_GAIN = 30.0
_DENSITY_OFFSET = 14.0
_FOG = 5.0
_SNN_GAIN = 4.0
_ANN_GAIN = 1.4


def smooth_noise(size: Sequence[int], channels: int, generator: torch.Generator, cells: int = 6) -> torch.Tensor:
    """Smooth random field ``[1, C, X, Y, Z]``: ``N(0, 1)`` on a ``cells^3`` lattice, trilinearly upsampled."""
    coarse = torch.randn(1, channels, cells, cells, cells, generator=generator)
    return F.interpolate(coarse, size=tuple(size), mode="trilinear", align_corners=True)


def _grid_points(world_size: Sequence[int], xyz_min: torch.Tensor, xyz_max: torch.Tensor) -> torch.Tensor:
    """World coordinates of the voxel corners of a grid ``[X, Y, Z, 3]`` (``align_corners`` layout)."""
    axes = [torch.linspace(float(xyz_min[a]), float(xyz_max[a]), int(world_size[a])) for a in range(3)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1)


class DirectVoxGO(nn.Module):
    """DVGO fine stage with a spiking (``snn``), ReLU (``ann``) or grid (``grid``, coarse) colour head.

    ``forward(rays_o, rays_d, viewdirs) -> RenderOutput``; rays ``[R, 3]`` (one batch) or ``[V, ..., 3]``
    (V views, each chunked separately, as the seed renders image by image; one image is ``[1, H, W, 3]``).
    After every call ``last_render_stats`` holds one :class:`ChunkStats` per chunk (plain Python numbers,
    not buffers, so ``state_dict()`` never changes). Train ``param_groups()``; see ``docs/spikingnerf.md``.

    Args:
        color: colour head, one of :data:`COLOR_HEADS`.
        layout: SNN temporal layout, ``tcp`` or ``tp`` (``snn`` only).
        tempo_flip: the seed's far-to-near ablation (``snn`` only).
        num_voxels: voxels of the grids (DVGO ``num_voxels``; the seed uses 160**3).
        num_voxels_base: voxels defining ``voxel_size_ratio`` (default ``num_voxels``).
        bbox: ``(xyz_min, xyz_max)`` of the grids.
        alpha_init: alpha of an empty voxel; sets the density shift ``log(1/(1-a) - 1)``.
        fast_color_thres: threshold of masks 2 and 3 (1e-4).
        mask_cache_thres: alpha threshold of the occupancy cache built by ``init="scene"``.
        stepsize: ray step in voxels (0.5).
        rgbnet_dim: channels of the feature grid ``k0`` (12); ``grid`` uses 3.
        rgbnet_width: hidden width of the colour MLP (128).
        rgbnet_depth: Linear layers of the colour MLP (3).
        viewbase_pe: frequencies of the view-direction encoding (4 -> 27 view features).
        lif_type: ``lif`` or ``plif``.
        tau: LIF time constant.
        near: nearest ray parameter.
        bg: background colour (1.0 = white).
        chunk: rays per render chunk (the seed renders 8192).
        init: ``scene`` (synthetic scene, realistic occupancy and activity) or ``dvgo`` (training start).
        seed: seed of the ``scene`` initialisation (grids and MLP weights; the global RNG is not used).
    """

    def __init__(self, *, color: str = "snn", layout: str = "tcp", tempo_flip: bool = False,
                 num_voxels: int = 48**3, num_voxels_base: int | None = None,
                 bbox: Sequence[Sequence[float]] = SCENE_BOX, alpha_init: float = 1e-2,
                 fast_color_thres: float = 1e-4, mask_cache_thres: float = 1e-3, stepsize: float = 0.5,
                 rgbnet_dim: int = 12, rgbnet_width: int = 128, rgbnet_depth: int = 3, viewbase_pe: int = 4,
                 lif_type: str = "lif", tau: float = 2.0, near: float = 2.0, bg: float = 1.0, chunk: int = 8192,
                 init: str = "scene", seed: int = 0) -> None:
        super().__init__()
        _check_choice("color", color, COLOR_HEADS)
        _check_choice("layout", layout, LAYOUTS)
        _check_choice("lif_type", lif_type, LIF_TYPES)
        _check_choice("init", init, INITS)
        if num_voxels < 8 or chunk < 1 or not 0 < alpha_init < 1 or stepsize <= 0:
            raise ValueError("num_voxels >= 8, chunk >= 1, 0 < alpha_init < 1 and stepsize > 0 are required")
        self.color, self.layout, self.tempo_flip = color, layout, bool(tempo_flip)
        self.fast_color_thres, self.mask_cache_thres = float(fast_color_thres), float(mask_cache_thres)
        self.stepsize, self.near, self.bg, self.chunk = float(stepsize), float(near), float(bg), int(chunk)
        self.register_buffer("xyz_min", torch.tensor(bbox[0], dtype=torch.float32))
        self.register_buffer("xyz_max", torch.tensor(bbox[1], dtype=torch.float32))
        self.register_buffer("act_shift", torch.tensor([math.log(1 / (1 - alpha_init) - 1)]))
        self.register_buffer("viewfreq", 2.0 ** torch.arange(viewbase_pe, dtype=torch.float32), persistent=False)
        self.num_voxels_base = int(num_voxels_base or num_voxels)
        self.num_voxels = int(num_voxels)
        size = self._world_size(self.num_voxels)
        self.density = DenseGrid(1, size, self.xyz_min, self.xyz_max)
        self.k0 = DenseGrid(3 if color == "grid" else rgbnet_dim, size, self.xyz_min, self.xyz_max)
        self.mask_cache = MaskGrid(torch.ones(size, dtype=torch.bool), self.xyz_min, self.xyz_max)
        self.dim0 = (3 + 3 * viewbase_pe * 2) + rgbnet_dim
        self.rgbnet: nn.Module | None = None
        if color == "snn":
            self.packer = TemporalPacker(layout, tempo_flip)
            self.rgbnet = SpikingColorNet(self.dim0, rgbnet_width, rgbnet_depth, lif_type, tau)
        elif color == "ann":
            self.rgbnet = AnnColorNet(self.dim0, rgbnet_width, rgbnet_depth, bias=True)
        self.last_render_stats: list[ChunkStats] = []
        if init == "scene":
            self._init_scene(seed)

    # ----------------------------------------------------------------- geometry
    def _world_size(self, num_voxels: int) -> tuple[int, int, int]:
        """Voxels per axis for ``num_voxels`` cubic voxels in the box (DVGO ``_set_grid_resolution``)."""
        extent = self.xyz_max - self.xyz_min
        voxel = float((extent.prod() / num_voxels) ** (1 / 3))
        x, y, z = (int(v) for v in (extent / voxel).long().tolist())
        return x, y, z

    @property
    def voxel_size(self) -> float:
        """Edge of a voxel of the current grid (world units)."""
        return float(((self.xyz_max - self.xyz_min).prod() / self.num_voxels) ** (1 / 3))

    @property
    def voxel_size_ratio(self) -> float:
        """DVGO's ``voxel_size_ratio``: ``voxel_size / voxel_size_base`` (1 unless progressively scaled)."""
        base = float(((self.xyz_max - self.xyz_min).prod() / self.num_voxels_base) ** (1 / 3))
        return self.voxel_size / base

    @property
    def interval(self) -> float:
        """DVGO's alpha interval of a render: ``stepsize * voxel_size_ratio``."""
        return self.stepsize * self.voxel_size_ratio

    def log_transmittance(self, density: torch.Tensor, interval: float | None = None) -> torch.Tensor:
        """``log(1 - alpha) = -interval * softplus(density + shift)`` (finite even where alpha rounds to 1).

        Args:
            density: raw density.
            interval: DVGO's ``interval``; default :attr:`interval` (renders). The occupancy cache and
                ``dense_alpha`` use ``voxel_size_ratio`` (DVGO's ``activate_density`` default).
        """
        return -(self.interval if interval is None else interval) * F.softplus(density + self.act_shift)

    @torch.no_grad()
    def dense_alpha(self) -> torch.Tensor:
        """Alpha of every voxel of the density grid ``[X, Y, Z]`` (interval ``voxel_size_ratio``, as DVGO)."""
        return -torch.expm1(self.log_transmittance(self.density.grid[0, 0], self.voxel_size_ratio))

    # ----------------------------------------------------------------- initialisation
    @torch.no_grad()
    def _init_scene(self, seed: int) -> None:
        """Fill the grids with the synthetic scene and draw MLP weights with realistic activity."""
        gen = seeded_generator(seed)
        size = self.density.world_size
        pts = _grid_points(size, self.xyz_min, self.xyz_max)
        occ = occupancy(pts, width=1.5 * self.voxel_size).clamp(max=1.5)
        fog = smooth_noise(size, 1, gen)[0, 0]
        self.density.grid.copy_((_DENSITY_GAIN * occ - _DENSITY_OFFSET + _FOG * fog)[None, None])
        self.k0.grid.copy_(smooth_noise(size, self.k0.channels, gen))
        alpha = F.max_pool3d(self.dense_alpha()[None, None], kernel_size=3, padding=1, stride=1)[0, 0]
        self.mask_cache.mask.copy_(alpha >= self.mask_cache_thres)
        if self.rgbnet is not None:
            scale_init(self.rgbnet, _SNN_GAIN if self.color == "snn" else _ANN_GAIN, gen)

    # ----------------------------------------------------------------- training helpers
    def param_groups(self, lr_density: float = 0.1, lr_k0: float = 0.1,
                     lr_rgbnet: float = 1e-3) -> list[dict[str, Any]]:
        """Adam parameter groups with the seed's learning rates (density 0.1, k0 0.1, rgbnet 1e-3)."""
        groups = [{"params": [self.density.grid], "lr": lr_density, "name": "density"},
                  {"params": [self.k0.grid], "lr": lr_k0, "name": "k0"}]
        if self.rgbnet is not None:
            groups.append({"params": list(self.rgbnet.parameters()), "lr": lr_rgbnet, "name": "rgbnet"})
        return groups

    @torch.no_grad()
    def scale_volume_grid(self, num_voxels: int) -> None:
        """DVGO's progressive scaling: resample density and k0 to ``num_voxels`` and rebuild the cache there.

        The new occupancy cache is the old one looked up at the new voxels, and-ed with the dilated alpha of
        the resampled density above ``fast_color_thres`` (DVGO ``scale_volume_grid``, grids up to 256^3).
        """
        self.num_voxels = int(num_voxels)
        size = self._world_size(self.num_voxels)
        self.density.scale_volume_grid(size)
        self.k0.scale_volume_grid(size)
        if math.prod(size) > 256**3:
            return
        pts = _grid_points(size, self.xyz_min, self.xyz_max).to(self.xyz_min.device)
        alpha = F.max_pool3d(self.dense_alpha()[None, None], kernel_size=3, padding=1, stride=1)[0, 0]
        mask = self.mask_cache(pts.reshape(-1, 3)).reshape(size) & (alpha > self.fast_color_thres)
        self.mask_cache = MaskGrid(mask, self.xyz_min, self.xyz_max)

    def set_grid_resolution(self, num_voxels: int) -> None:
        """Set ``num_voxels`` of grids already at that resolution (a resumed progressively scaled run).

        Raises:
            ValueError: the density grid does not have ``num_voxels``' world size.
        """
        size = self._world_size(int(num_voxels))
        if size != self.density.world_size:
            raise ValueError(f"the grids are {self.density.world_size}, {num_voxels} voxels give {size}")
        self.num_voxels = int(num_voxels)

    def resizable_state_keys(self) -> tuple[str, ...]:
        """State-dict entries whose shape follows the grid resolution (progressive scaling changes them)."""
        return ("density.grid", "k0.grid", "mask_cache.mask")

    @torch.no_grad()
    def update_occupancy_cache(self) -> int:
        """Clear cache voxels whose dilated alpha (interval ``voxel_size_ratio``) is at most ``fast_color_thres``.

        Returns:
            Voxels kept.
        """
        pts = _grid_points(self.mask_cache.mask.shape, self.xyz_min, self.xyz_max).to(self.xyz_min.device)
        density = self.density(pts.reshape(-1, 3)).reshape(1, 1, *self.mask_cache.mask.shape)
        alpha = -torch.expm1(self.log_transmittance(density, self.voxel_size_ratio))
        alpha = F.max_pool3d(alpha, kernel_size=3, padding=1, stride=1)
        self.mask_cache.mask &= alpha[0, 0] > self.fast_color_thres
        return int(self.mask_cache.mask.sum())

    @torch.no_grad()
    def mask_from_coarse(self, coarse: DirectVoxGO, thres: float | None = None) -> None:
        """Set the occupancy cache from a coarse model: its dilated alpha >= ``thres`` at this grid's voxels."""
        alpha = F.max_pool3d(coarse.dense_alpha()[None, None], kernel_size=3, padding=1, stride=1)[0, 0]
        cache = MaskGrid(alpha >= (self.mask_cache_thres if thres is None else thres), coarse.xyz_min,
                         coarse.xyz_max).to(self.xyz_min.device)
        size = self.density.world_size
        pts = _grid_points(size, self.xyz_min, self.xyz_max).to(self.xyz_min.device)
        self.mask_cache = MaskGrid(cache(pts.reshape(-1, 3)).reshape(size), self.xyz_min, self.xyz_max)

    # ----------------------------------------------------------------- rendering
    def forward(self, rays_o: torch.Tensor, rays_d: torch.Tensor, viewdirs: torch.Tensor) -> RenderOutput:
        """Render rays ``[R, 3]`` or ``[V, ..., 3]``; sets ``last_render_stats``."""
        views_o, views_d, views_v = split_views(rays_o), split_views(rays_d), split_views(viewdirs)
        n_views, n_rays = views_o.shape[:2]
        parts: list[tuple[torch.Tensor, ...]] = []
        stats: list[ChunkStats] = []
        for view in range(n_views):
            for start in range(0, n_rays, self.chunk):
                stop = min(start + self.chunk, n_rays)
                *tensors, chunk_stats = self.render_chunk(
                    views_o[view, start:stop], views_d[view, start:stop], views_v[view, start:stop], view)
                tensors[-1] = tensors[-1] + (view * n_rays + start)
                parts.append(tuple(tensors))
                stats.append(chunk_stats)
        self.last_render_stats = stats
        rgb, last, weights, raw, ray_id = (torch.cat([p[i] for p in parts]) for i in range(5))
        return RenderOutput(rgb.reshape(rays_o.shape), last.reshape(rays_o.shape[:-1]), weights, raw, ray_id, stats)

    def render_chunk(self, rays_o: torch.Tensor, rays_d: torch.Tensor, viewdirs: torch.Tensor,
                     view: int = 0) -> tuple[Any, ...]:
        """Render one chunk ``[r, 3]``: ``(rgb, alphainv_last, weights, raw_rgb, ray_id, ChunkStats)``."""
        n_rays = rays_o.shape[0]
        pts, ray_id, step_id = sample_dvgo(rays_o, rays_d, self.xyz_min, self.xyz_max, near=self.near,
                                           stepdist=self.stepsize * self.voxel_size)
        sampled = int(ray_id.numel())
        keep = self.mask_cache(pts)
        pts, ray_id, step_id = pts[keep], ray_id[keep], step_id[keep]
        after_cache = int(ray_id.numel())
        log_t = self.log_transmittance(self.density(pts).squeeze(-1))
        after_alpha = None
        if self.fast_color_thres > 0:
            keep = -torch.expm1(log_t) > self.fast_color_thres
            pts, ray_id, step_id, log_t = pts[keep], ray_id[keep], step_id[keep], log_t[keep]
            after_alpha = int(ray_id.numel())
        weights, alphainv_last = composite_segments(log_t, ray_id, n_rays)
        if self.fast_color_thres > 0:
            keep = weights > self.fast_color_thres
            pts, ray_id, step_id, weights = pts[keep], ray_id[keep], step_id[keep], weights[keep]
        rgb, packing = self._colour(pts, ray_id, step_id, viewdirs)
        marched = segment_sum(weights.unsqueeze(-1) * rgb, ray_id, n_rays) + alphainv_last.unsqueeze(-1) * self.bg
        funnel = (n_rays, sampled, after_cache, after_alpha, int(ray_id.numel()))
        stats = ChunkStats.of(view, funnel, packing, self.dim0 if self.rgbnet is not None else 3)
        return marched, alphainv_last, weights, rgb, ray_id, stats

    def _colour(self, pts: torch.Tensor, ray_id: torch.Tensor, step_id: torch.Tensor,
                viewdirs: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Point colours ``[M, 3]`` and the SNN packing (``None`` for the ANN and grid heads)."""
        k0 = self.k0(pts)
        if self.rgbnet is None:
            return torch.sigmoid(k0), None
        view_emb = torch.cat([viewdirs, frequency_encoding(viewdirs, self.viewfreq)], -1)
        feat = torch.cat([k0, view_emb[ray_id]], -1)
        if self.color == "ann":
            return torch.sigmoid(self.rgbnet(feat)), None
        packing = self.packer(ray_id, step_id, feat)
        if packing.points == 0:
            return feat.new_zeros(0, 3), packing
        with packing.valid_slots():  # the SNN's [T, B] padding slots do not count as valid updates
            return torch.sigmoid(self.rgbnet(feat, packing)), packing


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


_DEFAULTS = {"batch_size": 1, "time_steps": 1, "image_size": 32}


@register_model(
    "spikingnerf_d", make_inputs=make_inputs, run=run, step_mode="multi", defaults=_DEFAULTS, paper=PAPER,
    description="SpikingNeRF-D: DVGO voxel grids + spiking colour MLP 39-128-128-3 (LIF), ray samples as time "
                "(TCP/TP)",
)
def spikingnerf_d(layout: str = "tcp", tempo_flip: bool = False, **kwargs: Any) -> DirectVoxGO:
    """Build SpikingNeRF-D (see :class:`DirectVoxGO` for every keyword argument)."""
    return DirectVoxGO(color="snn", layout=layout, tempo_flip=tempo_flip, **kwargs)


@register_model(
    "dvgo_ann", make_inputs=make_inputs, run=run, step_mode="ann", defaults=_DEFAULTS, paper=PAPER,
    description="DVGO (ANN baseline of SpikingNeRF-D): same voxel grids, ReLU colour MLP 39-128-128-3",
)
def dvgo_ann(**kwargs: Any) -> DirectVoxGO:
    """Build the DVGO ANN baseline (see :class:`DirectVoxGO`; ``layout``/``tempo_flip`` do not apply)."""
    for key in ("layout", "tempo_flip", "lif_type", "tau"):
        if key in kwargs:
            raise ValueError(f"{key} does not apply to dvgo_ann (no spiking layers)")
    return DirectVoxGO(color="ann", **kwargs)

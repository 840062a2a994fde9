"""Reference training loops of the grid NeRFs: SpikingNeRF-D / DVGO and SpikingNeRF-T / TensoRF.

Both train on random ray batches of the ``train`` split of a Blender-layout scene and evaluate the first
``eval_views`` views of ``test`` (``docs/seed_models.md`` §1.5, §1.7; shared parts in
:mod:`~snnprof.reference_impls.nerf_common`):

* ``spikingnerf_d`` (TCP or TP, from the model kwargs) and ``dvgo_ann`` -- DVGO's two stages
  (``run.py scene_rep_reconstruction``). **Coarse** (the first ``coarse_iters`` steps): a trainer-owned
  DVGO with a 3-channel colour grid (no MLP), alpha init 1e-6, per-voxel learning rate of the density
  (views seeing each voxel / max; voxels seen by at most 2 views leave the occupancy cache), loss
  ``MSE + 0.01 entropy(alphainv_last) + 0.1 rgbper``. **Fine** (the rest): the zoo model, starting at
  ``num_voxels / 2^len(pg_scale)`` voxels; occupancy cache from the coarse density, rays restricted to
  those crossing the cache (``in_maskcache``), masked Adam on the grids (zero-gradient voxels untouched),
  loss ``MSE + 0.001 entropy + 0.01 rgbper``; at each fine step in ``pg_scale`` the grids double
  (``scale_volume_grid``, the cache rebuilt at the new resolution), the optimiser is rebuilt at the
  initial rates and ``act_shift`` drops by ``decay_after_scale``. Both stages: the occupancy cache is
  refreshed when ``(step + cache_update_every / 2) % cache_update_every == 0`` (1-based stage steps;
  DVGO's ``(global_step + 500) % 1000``), ``MaskedAdam`` (betas 0.9/0.99), learning rates density 0.1,
  k0 0.1, rgbnet 1e-3, each decayed per step by ``0.1 ** (1 / lr_decay_steps)`` from the stage start or
  the last rebuild. The spiking MLP trains by BPTT through each ray's points (SpikingJelly surrogate).
* ``spikingnerf_t`` / ``tensorf_ann`` -- TensoRF's loop: Adam (0.9/0.99), factors 0.02, basis + MLP 1e-3,
  decayed to ``lr_decay_target_ratio`` over ``lr_decay_iters`` steps, ``MSE + L1 * density_L1`` (L1 weight
  8e-5, 4e-5 after the first alpha-mask update), alpha-mask updates at ``alpha_mask_updates``, rays
  outside the box dropped at the start and rays missing the alpha mask at the second update.

Not reproduced (``docs/nerf_training.md``): TensoRF's ``upsamp_list`` and both seeds' bounding-box
shrinking. ``evaluate()`` returns ``psnr``, ``ssim``, ``psnr_constant_baseline`` and ``stage`` (0 coarse,
1 fine) and writes the renders as PNG to ``render_dir/step<N>/r_<i>.png``.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from snnprof.data.blender import BlenderViews, RaySet
from snnprof.errors import ConfigError
from snnprof.models.nerf_grid import interp_grid
from snnprof.models.nerf_metrics import mse_to_psnr
from snnprof.models.nerf_render import sample_dvgo, segment_sum
from snnprof.models.spikingnerf_d import DirectVoxGO
from snnprof.models.spikingnerf_t import TensoRF
from snnprof.reference_impls.nerf_common import (
    MaskedAdam,
    NeRFLoop,
    NeRFSettings,
    NonNegativeInt,
    PositiveInt,
    lr_scale,
    render_stats,
)
from snnprof.reference_impls.training import register_trainer
from snnprof.validation import NonNegativeFloat, PositiveFloat

__all__ = ["DVGOSettings", "DVGOTrainer", "TensoRFSettings", "TensoRFTrainer", "dvgo_loss", "voxel_view_counts"]

logger = logging.getLogger(__name__)

_RAY_CHUNK = 8192


class DVGOSettings(NeRFSettings):
    """``[train]`` of the DVGO loop (defaults: the SpikingNeRF-D / DVGO seed's)."""

    batch_rays: PositiveInt = 8192
    coarse_iters: NonNegativeInt = 5000
    coarse_num_voxels: PositiveInt = 100**3
    lr_density: PositiveFloat = 0.1
    lr_k0: PositiveFloat = 0.1
    lr_rgbnet: PositiveFloat = 1e-3
    lr_decay_steps: PositiveFloat = 20000.0
    weight_entropy_coarse: NonNegativeFloat = 0.01
    weight_rgbper_coarse: NonNegativeFloat = 0.1
    weight_entropy: NonNegativeFloat = 0.001
    weight_rgbper: NonNegativeFloat = 0.01
    cache_update_every: NonNegativeInt = 1000
    pervoxel_lr: bool = True
    coarse_alpha_init: PositiveFloat = 1e-6
    coarse_fast_color_thres: PositiveFloat = 1e-7
    pg_scale: list[PositiveInt] = [1000, 2000, 3000, 4000]
    decay_after_scale: NonNegativeFloat = 1.0


class TensoRFSettings(NeRFSettings):
    """``[train]`` of the TensoRF loop (defaults: TensoRF's lego config)."""

    batch_rays: PositiveInt = 4096
    lr_grid: PositiveFloat = 0.02
    lr_network: PositiveFloat = 1e-3
    lr_decay_target_ratio: PositiveFloat = 0.1
    lr_decay_iters: NonNegativeInt = 0
    l1_weight_initial: NonNegativeFloat = 8e-5
    l1_weight_rest: NonNegativeFloat = 4e-5
    alpha_mask_updates: list[Annotated[int, Field(ge=0)]] = [2000, 4000]


def dvgo_loss(out: Any, target: torch.Tensor, w_entropy: float, w_rgbper: float) -> tuple[torch.Tensor, float]:
    """DVGO's loss ``MSE + w_entropy * H(alphainv_last) + w_rgbper * sum_i w_i |rgb_i - c|^2 / R``; returns (loss, MSE).

    Args:
        out: a :class:`~snnprof.models.nerf_render.RenderOutput` of ``R`` rays ``[R, 3]``.
        target: colours ``[R, 3]``.
        w_entropy: weight of the background entropy (binary entropy of the transmittance left).
        w_rgbper: weight of the per-point colour loss (weights detached, as DVGO).
    """
    mse = F.mse_loss(out.rgb, target)
    loss = mse
    if w_entropy > 0:
        pout = out.alphainv_last.clamp(1e-6, 1 - 1e-6)
        loss = loss + w_entropy * -(pout * torch.log(pout) + (1 - pout) * torch.log(1 - pout)).mean()
    if w_rgbper > 0 and out.ray_id.numel():
        rgbper = (out.raw_rgb - target[out.ray_id]).pow(2).sum(-1)
        loss = loss + w_rgbper * (rgbper * out.weights.detach()).sum() / target.shape[0]
    return loss, float(mse.detach())


def voxel_view_counts(model: DirectVoxGO, views: BlenderViews) -> torch.Tensor:
    """DVGO ``voxel_count_views``: per density voxel, the training views whose ray samples touch it (``> 1``)."""
    grid = model.density.grid
    count = torch.zeros_like(grid)
    size = torch.tensor(model.density.world_size, dtype=torch.float32, device=grid.device)
    for index in range(len(views)):
        rays = {k: v.reshape(-1, 3).to(grid.device) for k, v in views[index][0].items()}
        ones = torch.ones_like(grid, requires_grad=True)
        for start in range(0, rays["rays_o"].shape[0], _RAY_CHUNK):
            part = slice(start, start + _RAY_CHUNK)
            pts, _, _ = sample_dvgo(rays["rays_o"][part], rays["rays_d"][part], model.xyz_min, model.xyz_max,
                                    near=model.near, stepdist=model.stepsize * model.voxel_size)
            pos = (pts - model.xyz_min) / (model.xyz_max - model.xyz_min) * (size - 1)
            interp_grid(ones[0], pos).sum().backward()
        count += (ones.grad > 1).float()
    return count


def _refresh_cache(step: int, every: int) -> bool:
    """DVGO's ``(global_step + 500) % 1000 == 0`` for ``every = 1000``; ``step`` is the 0-based stage step."""
    return every > 0 and (step + 1 + every // 2) % every == 0


# --------------------------------------------------------------------------- DVGO / SpikingNeRF-D


@register_trainer("spikingnerf_d", "dvgo_ann")
class DVGOTrainer(NeRFLoop):
    """DVGO's coarse + fine training of SpikingNeRF-D (TCP/TP) and its ANN baseline (a :class:`Trainer`)."""

    settings_model = DVGOSettings

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device | str) -> None:
        if not isinstance(model, DirectVoxGO) or model.color == "grid":
            raise ConfigError(cfg.path, "model.name", "the DVGO loop trains spikingnerf_d / dvgo_ann models")
        super().__init__(model, cfg, device)
        s = self.s
        if s.coarse_iters >= self.total_steps():
            raise ConfigError(cfg.path, "train.coarse_iters", f"expected fewer than epochs * steps_per_epoch = "
                                                              f"{self.total_steps()} steps (the fine stage needs some)")
        self.final_voxels = int(model.num_voxels)
        fine_steps = self.total_steps() - s.coarse_iters
        self.pg_scale = sorted(p for p in set(s.pg_scale) if p <= fine_steps)
        if len(self.pg_scale) < len(set(s.pg_scale)):
            logger.warning("dvgo: pg_scale steps after the %d fine steps are dropped (the grids end at num_voxels)",
                           fine_steps)
        self.coarse = DirectVoxGO(color="grid", num_voxels=s.coarse_num_voxels, init="dvgo",
                                  bbox=(model.xyz_min.tolist(), model.xyz_max.tolist()), alpha_init=s.coarse_alpha_init,
                                  fast_color_thres=s.coarse_fast_color_thres, stepsize=model.stepsize,
                                  near=model.near, bg=model.bg, chunk=model.chunk).to(self.device)  # fmt: skip
        self.coarse_opt = MaskedAdam(self.coarse.param_groups(s.lr_density, s.lr_k0))
        if s.pervoxel_lr:
            count = voxel_view_counts(self.coarse, self.train_views)
            self.coarse_opt.set_pervoxel_lr(count)
            self.coarse.mask_cache.mask[count[0, 0] <= 2] = False
        self.fine_opt: MaskedAdam | None = None
        self.fine_keep: torch.Tensor | None = None
        self.fine_rays: RaySet | None = None
        self.lr_origin = 0

    def stage(self) -> int:  # noqa: D102
        return 0 if self.last_step <= self.s.coarse_iters and self.fine_opt is None else 1

    def render_model(self) -> nn.Module:  # noqa: D102
        return self.coarse if self.stage() == 0 else self.model

    def _voxels_at(self, local: int) -> int:
        """Fine-stage voxels before 0-based fine step ``local`` (DVGO: ``num_voxels / 2^rest``)."""
        rest = sum(1 for p in self.pg_scale if p > local)
        return int(self.final_voxels / 2**rest)

    def _rays_in_cache(self) -> torch.Tensor:
        """DVGO ``in_maskcache``: training rays with at least one sample inside the fine occupancy cache."""
        model, rays = self.model, self.train_rays
        keep = torch.zeros(len(rays), dtype=torch.bool)
        with torch.no_grad():
            for start in range(0, len(rays), _RAY_CHUNK):
                o = rays.rays_o[start:start + _RAY_CHUNK].to(self.device)
                d = rays.rays_d[start:start + _RAY_CHUNK].to(self.device)
                pts, ray_id, _ = sample_dvgo(o, d, model.xyz_min, model.xyz_max, near=model.near,
                                             stepdist=model.stepsize * model.voxel_size)
                hits = segment_sum(model.mask_cache(pts).float(), ray_id, o.shape[0])
                keep[start:start + o.shape[0]] = (hits > 0).cpu()
        return keep

    def _fine_optimizer(self) -> MaskedAdam:
        """A fresh masked Adam at the initial rates (DVGO rebuilds it at every ``pg_scale`` step)."""
        groups = self.model.param_groups(self.s.lr_density, self.s.lr_k0, self.s.lr_rgbnet)
        for group in groups:
            group["skip_zero_grad"] = group["name"] in ("density", "k0")
        return MaskedAdam(groups)

    def _start_fine(self, keep: torch.Tensor | None = None) -> None:
        """Fine-stage set-up: smallest grids and occupancy cache from the coarse model (fresh runs), rays, optimiser."""
        if keep is None:
            if self.pg_scale:
                self.model.scale_volume_grid(self._voxels_at(0))
            self.model.mask_from_coarse(self.coarse)
            keep = self._rays_in_cache()
            if not bool(keep.any()):
                logger.warning("dvgo: no training ray crosses the occupancy cache; the fine stage uses all rays")
                keep = torch.ones_like(keep)
        self.fine_keep = keep
        self.fine_rays = self.train_rays.subset(keep)
        self.fine_opt = self._fine_optimizer()
        logger.info("dvgo fine stage: %d of %d training rays cross the occupancy cache", int(keep.sum()), len(keep))

    def _fine_schedule(self, local: int) -> None:
        """Cache refresh, then progressive scaling (grids x2, optimiser rebuilt, ``act_shift`` lowered)."""
        s = self.s
        if _refresh_cache(local, s.cache_update_every):
            self.model.update_occupancy_cache()
        if local + 1 in self.pg_scale:
            self.model.scale_volume_grid(self._voxels_at(local + 1))
            self.fine_opt = self._fine_optimizer()
            self.lr_origin = local
            with torch.no_grad():
                self.model.act_shift -= s.decay_after_scale

    def train_step(self, step: int) -> dict[str, float]:
        """One step of the coarse (``step < coarse_iters``) or fine stage."""
        s = self.s
        self.last_step = step + 1
        if step < s.coarse_iters:
            model, local, rays = self.coarse, step, self.train_rays
            if _refresh_cache(local, s.cache_update_every):
                self.coarse.update_occupancy_cache()
            opt, origin = self.coarse_opt, 0
            weights = (s.weight_entropy_coarse, s.weight_rgbper_coarse)
        else:
            if self.fine_opt is None:
                self._start_fine()
            local = step - s.coarse_iters
            self._fine_schedule(local)
            assert self.fine_opt is not None and self.fine_rays is not None
            model, opt, rays, origin = self.model, self.fine_opt, self.fine_rays, self.lr_origin
            weights = (s.weight_entropy, s.weight_rgbper)
        for group in opt.param_groups:
            lr_scale(group, 0.1 ** ((local - origin) / s.lr_decay_steps))
        model.train()
        inputs, target = self.batch(step, rays)
        out = model(**inputs)
        loss, mse = dvgo_loss(out, target, *weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach()), "psnr": mse_to_psnr(mse), "lr": float(opt.param_groups[0]["lr"]),
                "stage": float(step >= s.coarse_iters), **render_stats(model, target.shape[0])}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """Coarse model and optimiser, fine optimiser, ray subset and grid resolution, step."""
        return {"coarse": self.coarse.state_dict(), "coarse_opt": self.coarse_opt.state_dict(),
                "fine_opt": self.fine_opt.state_dict() if self.fine_opt is not None else {},
                "fine_keep": self.fine_keep if self.fine_keep is not None else torch.zeros(0, dtype=torch.bool),
                "last_step": self.last_step, "num_voxels": int(self.model.num_voxels),
                "lr_origin": self.lr_origin}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (the model, its grids and occupancy cache come with the model)."""
        self.coarse.load_state_dict(state["coarse"])
        self.coarse_opt.load_state_dict(state["coarse_opt"])
        self.last_step = int(state["last_step"])
        self.lr_origin = int(state.get("lr_origin", 0))
        self.model.set_grid_resolution(int(state.get("num_voxels", self.final_voxels)))
        if state["fine_keep"].numel():
            self._start_fine(state["fine_keep"].to(torch.bool))
            assert self.fine_opt is not None
            self.fine_opt.load_state_dict(state["fine_opt"])


# --------------------------------------------------------------------------- TensoRF / SpikingNeRF-T


@register_trainer("spikingnerf_t", "tensorf_ann")
class TensoRFTrainer(NeRFLoop):
    """TensoRF's loop for SpikingNeRF-T and its ANN baseline (a :class:`Trainer`)."""

    settings_model = TensoRFSettings

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device | str) -> None:
        if not isinstance(model, TensoRF):
            raise ConfigError(cfg.path, "model.name", "the TensoRF loop trains spikingnerf_t / tensorf_ann models")
        super().__init__(model, cfg, device)
        s = self.s
        self.decay_iters = s.lr_decay_iters or self.total_steps()
        self.optimizer = torch.optim.Adam(model.param_groups(s.lr_grid, s.lr_network), betas=(0.9, 0.99))
        self.keep = self._rays_hitting(alpha_mask=False)
        if not bool(self.keep.any()):
            raise ConfigError(cfg.path, "model.kwargs", "no training ray crosses the model's bounding box (bbox)")
        self.kept_rays = self.train_rays.subset(self.keep)

    def _rays_hitting(self, alpha_mask: bool) -> torch.Tensor:
        """TensoRF ``filtering_rays``: rays entering the box (``alpha_mask``: with a sample inside the mask)."""
        model, rays = self.model, self.train_rays
        keep = torch.zeros(len(rays), dtype=torch.bool)
        steps = model.step_size * torch.arange(model.n_samples, device=self.device)
        with torch.no_grad():
            for start in range(0, len(rays), _RAY_CHUNK):
                o = rays.rays_o[start:start + _RAY_CHUNK].to(self.device)
                d = rays.viewdirs[start:start + _RAY_CHUNK].to(self.device)
                vec = torch.where(d == 0, torch.full_like(d, 1e-6), d)
                rate_a, rate_b = (model.xyz_max - o) / vec, (model.xyz_min - o) / vec
                t_min = torch.minimum(rate_a, rate_b).amax(-1).clamp(min=model.near, max=model.far)
                t_max = torch.maximum(rate_a, rate_b).amin(-1).clamp(min=model.near, max=model.far)
                hit = t_max > t_min
                if alpha_mask:
                    pts = o.unsqueeze(1) + d.unsqueeze(1) * (t_min.unsqueeze(-1) + steps).unsqueeze(-1)
                    inside = ((pts >= model.xyz_min) & (pts <= model.xyz_max)).all(-1)
                    inside[inside.clone()] = model.alpha_mask(pts[inside])
                    hit = inside.any(-1)
                keep[start:start + o.shape[0]] = hit.cpu()
        return keep

    def _l1_weight(self, step: int) -> float:
        updates = self.s.alpha_mask_updates
        return self.s.l1_weight_rest if updates and step >= min(updates) else self.s.l1_weight_initial

    def train_step(self, step: int) -> dict[str, float]:
        """One TensoRF step (alpha-mask updates and ray filtering at the scheduled steps)."""
        s, model = self.s, self.model
        self.last_step = step + 1
        updates = sorted(set(s.alpha_mask_updates))
        if step in updates and step > 0:
            model.update_alpha_mask()
            if len(updates) > 1 and step == updates[1]:
                keep = self._rays_hitting(alpha_mask=True)
                if bool(keep.any()):
                    self.keep, self.kept_rays = keep, self.train_rays.subset(keep)
                else:
                    logger.warning("tensorf: no training ray crosses the alpha mask; the rays are kept")
        for group in self.optimizer.param_groups:
            lr_scale(group, s.lr_decay_target_ratio ** (step / self.decay_iters))
        model.train()
        inputs, target = self.batch(step, self.kept_rays)
        out = model(**inputs)
        mse = F.mse_loss(out.rgb, target)
        l1 = sum(p.abs().mean() for p in (*model.density_field.planes, *model.density_field.lines))
        loss = mse + self._l1_weight(step) * l1
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), "psnr": mse_to_psnr(float(mse.detach())),
                "lr": float(self.optimizer.param_groups[0]["lr"]), **render_stats(model, target.shape[0])}

    def state_dict(self) -> dict[str, Any]:
        """Optimiser, ray subset and step (the alpha mask is a model buffer)."""
        return {"optimizer": self.optimizer.state_dict(), "keep": self.keep, "last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.keep = state["keep"].to(torch.bool)
        self.kept_rays = self.train_rays.subset(self.keep)
        self.last_step = int(state["last_step"])

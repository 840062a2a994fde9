"""Reference NeRF training loops: SpikingNeRF-D / DVGO, SpikingNeRF-T / TensoRF and the NeRF MLP.

All loops train on random ray batches of the ``train`` split of a Blender-layout scene and evaluate
the first ``eval_views`` views of ``test`` (``docs/seed_models.md`` §1.5, §1.7, §2):

* ``spikingnerf_d`` (TCP or TP, from the model kwargs) and ``dvgo_ann`` -- DVGO's two stages. **Coarse**
  (the first ``coarse_iters`` steps): a trainer-owned DVGO with a 3-channel colour grid (no MLP), alpha
  init 1e-6, per-voxel learning rate of the density (views seeing each voxel / max), loss ``MSE + 0.01
  entropy(alphainv_last) + 0.1 rgbper``. **Fine** (the rest): the zoo model, occupancy cache from the
  coarse density, rays restricted to those crossing the cache (``in_maskcache``), masked Adam on the
  grids (zero-gradient voxels untouched), the cache refreshed every ``cache_update_every`` steps, loss
  ``MSE + 0.001 entropy + 0.01 rgbper``. Both stages: ``MaskedAdam`` (betas 0.9/0.99), learning rates
  density 0.1, k0 0.1, rgbnet 1e-3, each decayed per step by ``0.1 ** (1 / lr_decay_steps)`` from the
  stage start. The spiking MLP trains by BPTT through each ray's points (SpikingJelly surrogate).
* ``spikingnerf_t`` / ``tensorf_ann`` -- TensoRF's loop: Adam (0.9/0.99), factors 0.02, basis + MLP 1e-3,
  decayed to ``lr_decay_target_ratio`` over ``lr_decay_iters`` steps, ``MSE + L1 * density_L1`` (L1 weight
  8e-5, 4e-5 after the first alpha-mask update), alpha-mask updates at ``alpha_mask_updates``, rays
  outside the box dropped at the start and rays missing the alpha mask at the second update.
* ``nerf_mlp`` -- the NeRF re-implementation seed's loop: rays of one random training image per step,
  Adam (0.9/0.999), ``lr = 1.5e-4 * batch_rays / 512``, linear warm-up from ``min_ratio * lr`` over
  ``warmup_steps``, then ``lr * max(0.1 ** ((t - warmup) / lr_decay_steps), min_ratio)``; MSE.

Not reproduced (documented in ``docs/nerf_training.md``): progressive grid scaling (DVGO ``pg_scale``,
TensoRF ``upsamp_list``) and bounding-box shrinking, because ``snnprof train`` checkpoints the model at
the shapes its config builds; the mip-NeRF 360 proposal network of the NeRF seed.

``evaluate()`` returns ``psnr``, ``ssim`` (dB / unitless, mean over the evaluated views; SSIM needs
11x11 pixels), ``psnr_constant_baseline`` (PSNR of an image filled with the mean training colour) and
``stage`` (0 coarse, 1 fine), and writes the renders as PNG to ``render_dir/step<N>/r_<i>.png`` (the
ground truth once to ``render_dir/target/``). ``[train]`` keys are listed in ``docs/nerf_training.md``;
an unknown key or a bad value raises ``ConfigError(cfg.path, "train.<key>", ...)``.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.data.blender import BlenderViews, RaySet, load_blender, ray_batch, write_png
from snnprof.errors import ConfigError
from snnprof.models.nerf_grid import interp_grid
from snnprof.models.nerf_metrics import mse_to_psnr, psnr, ssim
from snnprof.models.nerf_render import sample_dvgo, segment_sum
from snnprof.models.spikingnerf_d import DirectVoxGO
from snnprof.models.spikingnerf_t import TensoRF
from snnprof.reference_impls.training import register_trainer

__all__ = [
    "DVGOTrainer",
    "MaskedAdam",
    "NeRFTrainer",
    "TensoRFTrainer",
    "dvgo_loss",
    "load_views",
    "parse_train",
    "voxel_view_counts",
]

logger = logging.getLogger(__name__)

_SSIM_WINDOW = 11
_RAY_CHUNK = 8192

# key -> (kind, default); kinds: int (>= 1), int0 (>= 0), float (> 0), float0 (>= 0), bool, str, ints.
_COMMON: dict[str, tuple[str, Any]] = {
    "epochs": ("int", 1), "steps_per_epoch": ("int", 100), "eval_views": ("int", 4), "render_dir": ("str", None),
    "image_size": ("int", 64), "train_views": ("int", 40), "test_views": ("int", 8), "scene_objects": ("int0", 4),
}  # fmt: skip
_DVGO: dict[str, tuple[str, Any]] = {
    "batch_rays": ("int", 8192), "coarse_iters": ("int0", 5000), "coarse_num_voxels": ("int", 100**3),
    "lr_density": ("float", 0.1), "lr_k0": ("float", 0.1), "lr_rgbnet": ("float", 1e-3),
    "lr_decay_steps": ("float", 20000.0), "weight_entropy_coarse": ("float0", 0.01),
    "weight_rgbper_coarse": ("float0", 0.1), "weight_entropy": ("float0", 0.001), "weight_rgbper": ("float0", 0.01),
    "cache_update_every": ("int0", 1000), "pervoxel_lr": ("bool", True), "coarse_alpha_init": ("float", 1e-6),
    "coarse_fast_color_thres": ("float", 1e-7),
}  # fmt: skip
_TENSORF: dict[str, tuple[str, Any]] = {
    "batch_rays": ("int", 4096), "lr_grid": ("float", 0.02), "lr_network": ("float", 1e-3),
    "lr_decay_target_ratio": ("float", 0.1), "lr_decay_iters": ("int0", 0), "l1_weight_initial": ("float0", 8e-5),
    "l1_weight_rest": ("float0", 4e-5), "alpha_mask_updates": ("ints", [2000, 4000]),
}  # fmt: skip
_NERF: dict[str, tuple[str, Any]] = {
    "batch_rays": ("int", 1024), "lr": ("float", 0.0), "warmup_steps": ("int0", 500),
    "lr_decay_steps": ("float", 100000.0), "min_ratio": ("float", 0.01), "weight_init": ("str", "seed"),
}  # fmt: skip
_EXPECT = {"int": "an integer >= 1", "int0": "an integer >= 0", "float": "a number > 0", "float0": "a number >= 0",
           "bool": "true or false", "str": "a string", "ints": "an array of integers >= 0"}  # fmt: skip


def _valid(kind: str, value: Any) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "ints":
        return isinstance(value, list) and all(_valid("int0", v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind.startswith("int") and
                                                                         not isinstance(value, int)):
        return False
    return value >= 0 if kind.endswith("0") else value > 0 if kind == "float" else value >= 1


def parse_train(table: dict[str, Any], path: Any, schema: dict[str, tuple[str, Any]]) -> SimpleNamespace:
    """Validate ``[train]`` against the common keys plus ``schema``; unknown keys and bad values raise.

    Raises:
        ConfigError: ``train.<key>`` naming the key and what was expected.
    """
    keys = {**_COMMON, **schema}
    for key, value in table.items():
        if key not in keys:
            raise ConfigError(path, f"train.{key}", f"unknown key; allowed: {', '.join(keys)}")
        if not _valid(keys[key][0], value):
            raise ConfigError(path, f"train.{key}", f"expected {_EXPECT[keys[key][0]]}, got {value!r}")
    values = {k: table.get(k, default) for k, (_, default) in keys.items()}
    for key, (kind, _) in keys.items():
        if kind.startswith("float") and values[key] is not None:
            values[key] = float(values[key])
    return SimpleNamespace(**values)


# --------------------------------------------------------------------------- data


def load_views(cfg: Any, s: SimpleNamespace) -> tuple[BlenderViews, BlenderViews]:
    """``(train, test)`` views: ``[input] path`` with reader ``blender``, or a generated synthetic scene."""
    if cfg.input.source == "dataset":
        if cfg.input.reader != "blender":
            raise ConfigError(cfg.path, "input.reader", f"the NeRF loops read 'blender', got {cfg.input.reader!r}")
        kwargs = dict(cfg.input.kwargs)
        if "split" in kwargs:
            raise ConfigError(cfg.path, "input.kwargs.split", "the loop reads the train and test splits itself")
        try:
            return load_blender(cfg.input.path, "train", **kwargs), load_blender(cfg.input.path, "test", **kwargs)
        except TypeError as err:
            raise ConfigError(cfg.path, "input.kwargs", f"bad reader option ({err})") from None
    from snnprof.data.synthetic_scene import SceneSpec, write_blender_scene

    spec = SceneSpec(image_size=s.image_size, train_views=s.train_views, test_views=s.test_views,
                     objects=s.scene_objects, seed=int(cfg.input.seed))  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="snnprof-nerf-") as tmp:
        root = write_blender_scene(Path(tmp) / "scene", spec)
        return load_blender(root, "train"), load_blender(root, "test")


# --------------------------------------------------------------------------- optimiser and losses


class MaskedAdam(torch.optim.Optimizer):
    """DVGO's ``MaskedAdam``: Adam with a per-voxel learning rate and optional zero-gradient skipping.

    A parameter shaped like the per-voxel rates (the density grid) gets ``lr * per_lr`` per voxel; a group
    with ``skip_zero_grad`` updates only the elements whose gradient is non-zero (moments included).

    Args:
        params: parameter groups (``skip_zero_grad`` per group, default False).
        lr: learning rate.
        betas: Adam betas (DVGO: 0.9, 0.99).
        eps: Adam epsilon.
    """

    def __init__(self, params: Any, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.99),
                 eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "skip_zero_grad": False})
        self.per_lr: torch.Tensor | None = None

    def set_pervoxel_lr(self, count: torch.Tensor) -> None:
        """Per-voxel rates ``count / max(count)`` for parameters shaped like ``count``."""
        self.per_lr = count.float() / count.max().clamp(min=1)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # noqa: D102
        del closure
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad, state = param.grad, self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(param), torch.zeros_like(param)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                step_size = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                new_m, new_v = m * beta1 + (1 - beta1) * grad, v * beta2 + (1 - beta2) * grad * grad
                update = step_size * new_m / (new_v.sqrt() + group["eps"])
                if self.per_lr is not None and param.shape == self.per_lr.shape:
                    update = update * self.per_lr.to(param.device)
                elif group["skip_zero_grad"]:
                    keep = grad != 0
                    new_m, new_v = torch.where(keep, new_m, m), torch.where(keep, new_v, v)
                    update = torch.where(keep, update, torch.zeros_like(update))
                m.copy_(new_m)
                v.copy_(new_v)
                param.sub_(update)


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


def _lr_scale(group: dict[str, Any], factor: float) -> None:
    group.setdefault("initial_lr", group["lr"])
    group["lr"] = group["initial_lr"] * factor


def _render_stats(model: nn.Module, rays: int) -> dict[str, float]:
    """Mean valid points per ray and mean SNN time steps per chunk of the last render."""
    stats = getattr(model, "last_render_stats", [])
    out = {"points_per_ray": sum(c.points for c in stats) / max(rays, 1)}
    steps = [c.time_steps for c in stats if c.time_steps is not None]
    if steps:
        out["time_steps"] = sum(steps) / len(steps)
    return out


# --------------------------------------------------------------------------- shared loop


class _NeRFTrainer:
    """Data, evaluation, PNG output and count inputs shared by the NeRF loops."""

    schema: dict[str, tuple[str, Any]] = {}

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device | str) -> None:
        self.s = parse_train(dict(cfg.train), cfg.path, self.schema)
        self.cfg, self.model, self.device = cfg, model, torch.device(device)
        self.seed = int(cfg.input.seed)
        self.train_views, self.test_views = load_views(cfg, self.s)
        self.train_rays = RaySet.from_views(self.train_views)
        n_eval = min(self.s.eval_views, len(self.test_views))
        self.eval_rays = {k: v.to(self.device) for k, v in self.test_views.rays(list(range(n_eval))).items()}
        self.eval_images = self.test_views.images[:n_eval]
        constant = self.train_rays.mean_color().expand_as(self.eval_images)
        self.baseline_psnr = psnr(constant, self.eval_images)
        default_dir = Path("runs") / Path(cfg.path).stem / "renders"
        self.render_dir = None if self.s.render_dir == "" else Path(self.s.render_dir or default_dir)
        self.last_step = 0
        logger.info("nerf: %d train rays, %d test views; constant-colour PSNR %.2f dB", len(self.train_rays),
                    len(self.test_views), self.baseline_psnr)

    def steps_per_epoch(self) -> int:
        """Steps between evaluations (``[train] steps_per_epoch``)."""
        return int(self.s.steps_per_epoch)

    def total_steps(self) -> int:
        """``epochs * steps_per_epoch``."""
        return int(self.s.epochs) * self.steps_per_epoch()

    def end_epoch(self, epoch: int) -> None:
        """Nothing: the learning rates follow the step."""
        del epoch

    def _batch(self, step: int, rays: RaySet | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        pool = self.train_rays if rays is None else rays
        return ray_batch(pool, step, self.s.batch_rays, self.seed, self.device)

    def render_model(self) -> nn.Module:
        """The model whose renders are evaluated (the coarse model during DVGO's coarse stage)."""
        return self.model

    def stage(self) -> int:
        """0 during a coarse stage, 1 otherwise."""
        return 1

    def evaluate(self) -> dict[str, float]:
        """PSNR/SSIM of the evaluated test views, the constant-colour baseline; renders saved as PNG."""
        model = self.render_model()
        was_training = model.training
        model.eval()
        with torch.no_grad():
            pred = model(**self.eval_rays).rgb.detach().float().cpu().clamp(0, 1)
        model.train(was_training)
        out = {"psnr": psnr(pred, self.eval_images), "psnr_constant_baseline": self.baseline_psnr,
               "stage": float(self.stage())}  # fmt: skip
        out["ssim"] = ssim(pred, self.eval_images) if min(pred.shape[1:3]) >= _SSIM_WINDOW else math.nan
        self._save_pngs(pred)
        return out

    def _save_pngs(self, pred: torch.Tensor) -> None:
        if self.render_dir is None:
            return
        target_dir = self.render_dir / "target"
        for i in range(pred.shape[0]):
            write_png(self.render_dir / f"step{self.last_step:06d}" / f"r_{i}.png", pred[i])
            if not (target_dir / f"r_{i}.png").is_file():
                write_png(target_dir / f"r_{i}.png", self.eval_images[i])

    def count_inputs(self) -> dict[str, torch.Tensor]:
        """Rays of the first ``[input] batch_size`` test views, each ``[V, H, W, 3]``."""
        n = min(int(self.cfg.input.batch_size), len(self.test_views))
        return {k: v.to(self.device) for k, v in self.test_views.rays(list(range(n))).items()}


# --------------------------------------------------------------------------- DVGO / SpikingNeRF-D


@register_trainer("spikingnerf_d", "dvgo_ann")
class DVGOTrainer(_NeRFTrainer):
    """DVGO's coarse + fine training of SpikingNeRF-D (TCP/TP) and its ANN baseline (a :class:`Trainer`)."""

    schema = _DVGO

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device | str) -> None:
        if not isinstance(model, DirectVoxGO) or model.color == "grid":
            raise ConfigError(cfg.path, "model.name", "the DVGO loop trains spikingnerf_d / dvgo_ann models")
        super().__init__(model, cfg, device)
        s = self.s
        if s.coarse_iters >= self.total_steps():
            raise ConfigError(cfg.path, "train.coarse_iters", f"expected fewer than epochs * steps_per_epoch = "
                                                              f"{self.total_steps()} steps (the fine stage needs some)")
        self.coarse = DirectVoxGO(color="grid", num_voxels=s.coarse_num_voxels, init="dvgo",
                                  bbox=(model.xyz_min.tolist(), model.xyz_max.tolist()), alpha_init=s.coarse_alpha_init,
                                  fast_color_thres=s.coarse_fast_color_thres, stepsize=model.stepsize,
                                  near=model.near, bg=model.bg, chunk=model.chunk).to(self.device)  # fmt: skip
        self.coarse_opt = MaskedAdam(self.coarse.param_groups(s.lr_density, s.lr_k0))
        if s.pervoxel_lr:
            self.coarse_opt.set_pervoxel_lr(voxel_view_counts(self.coarse, self.train_views))
        self.fine_opt: MaskedAdam | None = None
        self.fine_keep: torch.Tensor | None = None
        self.fine_rays: RaySet | None = None

    def stage(self) -> int:  # noqa: D102
        return 0 if self.last_step <= self.s.coarse_iters and self.fine_opt is None else 1

    def render_model(self) -> nn.Module:  # noqa: D102
        return self.coarse if self.stage() == 0 else self.model

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

    def _start_fine(self, keep: torch.Tensor | None = None) -> None:
        """Fine-stage set-up: occupancy cache from the coarse model (fresh runs), ray subset, optimiser."""
        if keep is None:
            self.model.mask_from_coarse(self.coarse)
            keep = self._rays_in_cache()
            if not bool(keep.any()):
                logger.warning("dvgo: no training ray crosses the occupancy cache; the fine stage uses all rays")
                keep = torch.ones_like(keep)
        self.fine_keep = keep
        self.fine_rays = self.train_rays.subset(keep)
        groups = self.model.param_groups(self.s.lr_density, self.s.lr_k0, self.s.lr_rgbnet)
        for group in groups:
            group["skip_zero_grad"] = group["name"] in ("density", "k0")
        self.fine_opt = MaskedAdam(groups)
        logger.info("dvgo fine stage: %d of %d training rays cross the occupancy cache", int(keep.sum()), len(keep))

    def train_step(self, step: int) -> dict[str, float]:
        """One step of the coarse (``step < coarse_iters``) or fine stage."""
        s = self.s
        self.last_step = step + 1
        if step < s.coarse_iters:
            model, opt, local, rays = self.coarse, self.coarse_opt, step, self.train_rays
            weights = (s.weight_entropy_coarse, s.weight_rgbper_coarse)
        else:
            if self.fine_opt is None:
                self._start_fine()
            assert self.fine_opt is not None and self.fine_rays is not None
            model, opt, local, rays = self.model, self.fine_opt, step - s.coarse_iters, self.fine_rays
            weights = (s.weight_entropy, s.weight_rgbper)
            if s.cache_update_every and local > 0 and local % s.cache_update_every == 0:
                self.model.update_occupancy_cache()
        for group in opt.param_groups:
            _lr_scale(group, 0.1 ** (local / s.lr_decay_steps))
        model.train()
        inputs, target = self._batch(step, rays)
        out = model(**inputs)
        loss, mse = dvgo_loss(out, target, *weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": float(loss.detach()), "psnr": mse_to_psnr(mse), "lr": float(opt.param_groups[0]["lr"]),
                "stage": float(step >= s.coarse_iters), **_render_stats(model, target.shape[0])}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """Coarse model and optimiser, fine optimiser and ray subset (once the fine stage began), step."""
        return {"coarse": self.coarse.state_dict(), "coarse_opt": self.coarse_opt.state_dict(),
                "fine_opt": self.fine_opt.state_dict() if self.fine_opt is not None else {},
                "fine_keep": self.fine_keep if self.fine_keep is not None else torch.zeros(0, dtype=torch.bool),
                "last_step": self.last_step}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (the model's occupancy cache comes with the model)."""
        self.coarse.load_state_dict(state["coarse"])
        self.coarse_opt.load_state_dict(state["coarse_opt"])
        self.last_step = int(state["last_step"])
        if state["fine_keep"].numel():
            self._start_fine(state["fine_keep"].to(torch.bool))
            assert self.fine_opt is not None
            self.fine_opt.load_state_dict(state["fine_opt"])


# --------------------------------------------------------------------------- TensoRF / SpikingNeRF-T


@register_trainer("spikingnerf_t", "tensorf_ann")
class TensoRFTrainer(_NeRFTrainer):
    """TensoRF's loop for SpikingNeRF-T and its ANN baseline (a :class:`Trainer`)."""

    schema = _TENSORF

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
            _lr_scale(group, s.lr_decay_target_ratio ** (step / self.decay_iters))
        model.train()
        inputs, target = self._batch(step, self.kept_rays)
        out = model(**inputs)
        mse = F.mse_loss(out.rgb, target)
        l1 = sum(p.abs().mean() for p in (*model.density_field.planes, *model.density_field.lines))
        loss = mse + self._l1_weight(step) * l1
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach()), "psnr": mse_to_psnr(float(mse.detach())),
                "lr": float(self.optimizer.param_groups[0]["lr"]), **_render_stats(model, target.shape[0])}

    def state_dict(self) -> dict[str, Any]:
        """Optimiser, ray subset and step (the alpha mask is a model buffer)."""
        return {"optimizer": self.optimizer.state_dict(), "keep": self.keep, "last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.keep = state["keep"].to(torch.bool)
        self.kept_rays = self.train_rays.subset(self.keep)
        self.last_step = int(state["last_step"])


# --------------------------------------------------------------------------- NeRF MLP


@register_trainer("nerf_mlp")
class NeRFTrainer(_NeRFTrainer):
    """The NeRF re-implementation seed's loop for the point-sampled ``nerf_mlp`` (a :class:`Trainer`)."""

    schema = _NERF

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device | str) -> None:
        super().__init__(model, cfg, device)
        if self.s.weight_init not in ("seed", "torch"):
            raise ConfigError(cfg.path, "train.weight_init", f"expected 'seed' or 'torch', got {self.s.weight_init!r}")
        if self.s.weight_init == "torch":
            for module in model.modules():
                if isinstance(module, nn.Linear):
                    module.reset_parameters()
        self.base_lr = self.s.lr or 1.5e-4 * self.s.batch_rays / 512
        self.optimizer = torch.optim.Adam(model.parameters(), lr=self.base_lr, betas=(0.9, 0.999))

    def lr_at(self, step: int) -> float:
        """The seed's ``DecayLrScheduler``: warm-up from ``min_ratio * lr``, then decay floored at ``min_ratio``."""
        s = self.s
        if step < s.warmup_steps:
            ratio = step / s.warmup_steps
            return self.base_lr * (s.min_ratio * (1.0 - ratio) + ratio)
        return self.base_lr * max(0.1 ** ((step - s.warmup_steps) / s.lr_decay_steps), s.min_ratio)

    def train_step(self, step: int) -> dict[str, float]:
        """One step on ``batch_rays`` random rays of one random training image."""
        self.last_step = step + 1
        pixels = self.train_views.height * self.train_views.width
        gen = torch.Generator().manual_seed((self.seed * 7_919 + step) % (2**63))
        view = int(torch.randint(len(self.train_views), (1,), generator=gen))
        rays = self.train_rays
        one_view = RaySet(*(t[view * pixels:(view + 1) * pixels] for t in (rays.rays_o, rays.rays_d, rays.viewdirs,
                                                                           rays.rgb)))  # fmt: skip
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        self.model.train()
        inputs, target = self._batch(step, one_view)
        mse = F.mse_loss(self.model(**inputs).rgb, target)
        self.optimizer.zero_grad(set_to_none=True)
        mse.backward()
        self.optimizer.step()
        return {"loss": float(mse.detach()), "psnr": mse_to_psnr(float(mse.detach())), "lr": self.lr_at(step)}

    def state_dict(self) -> dict[str, Any]:
        """Optimiser and step."""
        return {"optimizer": self.optimizer.state_dict(), "last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.last_step = int(state["last_step"])

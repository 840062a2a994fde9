"""Shared parts of the NeRF training loops: ``[train]`` tables, data, masked Adam, evaluation and PNGs.

The loops themselves are in :mod:`snnprof.reference_impls.nerf_train` (DVGO / SpikingNeRF-D, TensoRF /
SpikingNeRF-T) and :mod:`snnprof.reference_impls.nerf_mlp_train` (the NeRF re-implementation seed's
NeRF MLP and Ref-NeRF with the proposal network). ``[train]`` keys are listed in
``docs/nerf_training.md``; each loop's table is a :class:`~snnprof.validation.StrictModel` and an
unknown key or a bad value raises ``ConfigError(cfg.path, "train.<key>", "expected ...")``.
"""

from __future__ import annotations

import logging
import math
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypeVar

import torch
from pydantic import Field
from torch import nn

from snnprof.data.blender import BlenderViews, RaySet, load_blender, ray_batch, write_png
from snnprof.errors import ConfigError
from snnprof.models.nerf_metrics import psnr, ssim
from snnprof.validation import StrictModel, validate

__all__ = [
    "MaskedAdam",
    "NeRFLoop",
    "NeRFSettings",
    "load_views",
    "lr_scale",
    "parse_train",
    "render_stats",
]

logger = logging.getLogger(__name__)

S = TypeVar("S", bound="NeRFSettings")

#: An integer >= 0.
NonNegativeInt = Annotated[int, Field(ge=0)]
#: An integer >= 1.
PositiveInt = Annotated[int, Field(gt=0)]

_SSIM_WINDOW = 11


class NeRFSettings(StrictModel):
    """``[train]`` keys of every NeRF loop (evaluation interval, output, synthetic scene)."""

    epochs: PositiveInt = 1
    steps_per_epoch: PositiveInt = 100
    eval_views: PositiveInt = 4
    render_dir: str | None = None
    image_size: PositiveInt = 64
    train_views: PositiveInt = 40
    test_views: PositiveInt = 8
    scene_objects: NonNegativeInt = 4


def parse_train(table: dict[str, Any], path: Any, model: type[S]) -> S:
    """Validate ``[train]`` against ``model`` (a :class:`NeRFSettings` subclass).

    Raises:
        ConfigError: ``train.<key>: expected ...`` (unknown key, wrong type, out of range).
    """
    return validate(model, table, path=path, prefix="train")


def load_views(cfg: Any, s: NeRFSettings) -> tuple[BlenderViews, BlenderViews]:
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


def lr_scale(group: dict[str, Any], factor: float) -> None:
    """Set a parameter group's rate to ``factor`` times its initial rate (kept in ``initial_lr``)."""
    group.setdefault("initial_lr", group["lr"])
    group["lr"] = group["initial_lr"] * factor


def render_stats(model: nn.Module, rays: int) -> dict[str, float]:
    """Mean valid points per ray and mean SNN time steps per chunk of the last render."""
    stats = getattr(model, "last_render_stats", [])
    out = {"points_per_ray": sum(c.points for c in stats) / max(rays, 1)}
    steps = [c.time_steps for c in stats if c.time_steps is not None]
    if steps:
        out["time_steps"] = sum(steps) / len(steps)
    return out


class NeRFLoop:
    """Data, evaluation, PNG output and count inputs shared by the NeRF loops.

    Subclasses set ``settings_model`` (their ``[train]`` table) and implement ``train_step``,
    ``state_dict`` and ``load_state_dict``; they may override :meth:`render_eval`.
    """

    settings_model: type[NeRFSettings] = NeRFSettings

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device | str) -> None:
        self.s: Any = parse_train(dict(cfg.train), cfg.path, self.settings_model)
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

    def batch(self, step: int, rays: RaySet | None = None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``batch_rays`` training rays drawn from ``(seed, step)`` only (a resumed run draws the same)."""
        pool = self.train_rays if rays is None else rays
        return ray_batch(pool, step, self.s.batch_rays, self.seed, self.device)

    def render_model(self) -> nn.Module:
        """The model whose renders are evaluated (the coarse model during DVGO's coarse stage)."""
        return self.model

    def stage(self) -> int:
        """0 during a coarse stage, 1 otherwise."""
        return 1

    def render_eval(self) -> torch.Tensor:
        """Renders ``[V, H, W, 3]`` of the evaluated views (no gradient; the model in eval mode)."""
        return self.render_model()(**self.eval_rays).rgb

    def evaluate(self) -> dict[str, float]:
        """PSNR/SSIM of the evaluated test views, the constant-colour baseline; renders saved as PNG."""
        model = self.render_model()
        was_training = model.training
        model.eval()
        with torch.no_grad():
            pred = self.render_eval().detach().float().cpu().clamp(0, 1)
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

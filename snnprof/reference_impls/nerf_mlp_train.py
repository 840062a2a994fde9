"""The NeRF re-implementation seed's training loop (Enigmatisms/NeRF ``train.py``): NeRF MLP and Ref-NeRF.

Per step (``docs/seed_models.md`` §2; sampling and losses in :mod:`~snnprof.reference_impls.nerf_proposal`):
``batch_rays`` random rays of one random training image; with ``proposal = true`` (the seed) a
trainer-owned mip-NeRF 360 proposal network (:class:`~snnprof.models.nerf_baselines.ProposalMLP`,
``proposal_width``) is evaluated at ``coarse_samples`` stratified depths, its blurred weights are
inverse-transform sampled into ``fine_samples + 1`` depths, and the zoo model renders

* ``nerf_mlp``: the first ``fine_samples`` of them;
* ``refnerf``: them merged with the proposal depths (``coarse + fine`` samples), its density gradient
  giving the normals of the predicted-normal loss.

``loss = MSE + proposal_weight * ProposalLoss + normal_weight * normal_loss + backface_weight *
backface_loss`` (the last two Ref-NeRF only; seed weights 1, 4e-4, 0.1); Ref-NeRF steps also report
``normal_misalignment`` (the normal loss per unit weight, a diagnostic). The density normals are constants
as in the seed's ``get_grad``; ``density_normal_grad = true`` differentiates them (Ref-NeRF's official
code), so the normal loss also trains the density. One Adam (0.9, 0.999) over
both networks, ``lr = 1.5e-4 * batch_rays / 512`` unless ``lr`` is set, the seed's ``DecayLrScheduler``
(linear warm-up from ``min_ratio * lr`` over ``warmup_steps``, then ``lr * max(0.1 ** ((t - warmup) /
lr_decay_steps), min_ratio)``); gradient clipping off (the seed's default). ``proposal = false`` trains
the zoo model alone at its fixed bin-midpoint samples (MSE only).

Every random draw of a step comes from a generator seeded by ``(seed, step)``, so a resumed run repeats
the uninterrupted one. ``evaluate()`` renders the test views the same way with deterministic samples
(bin centres, evenly spaced cdf levels); ``count_inputs`` feeds the zoo runner (fixed samples).
The proposal network's weights are in ``checkpoint.pt`` under ``trainer.proposal`` (a state dict of
``mipnerf360_proposal`` with ``hidden = proposal_width``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.data.blender import RaySet
from snnprof.errors import ConfigError
from snnprof.models.nerf_baselines import NeRFMLP, ProposalMLP, RefNeRFMLP
from snnprof.models.nerf_metrics import mse_to_psnr
from snnprof.reference_impls.nerf_common import NeRFLoop, NeRFSettings, NonNegativeInt, PositiveInt
from snnprof.reference_impls.nerf_proposal import (
    backface_loss,
    density_normals,
    interval_bounds,
    inverse_sample,
    max_blur,
    merge_depths,
    normal_loss,
    normal_misalignment,
    proposal_loss,
    proposal_weights,
    stratified_depths,
)
from snnprof.reference_impls.training import register_trainer
from snnprof.validation import NonNegativeFloat, PositiveFloat

__all__ = ["NeRFMLPSettings", "NeRFTrainer"]

logger = logging.getLogger(__name__)

_EVAL_CHUNK = 1024


class NeRFMLPSettings(NeRFSettings):
    """``[train]`` of the NeRF MLP / Ref-NeRF loop (defaults: the seed's ``get_parser``)."""

    batch_rays: PositiveInt = 1024
    lr: NonNegativeFloat = 0.0
    warmup_steps: NonNegativeInt = 500
    lr_decay_steps: PositiveFloat = 100000.0
    min_ratio: PositiveFloat = 0.01
    weight_init: Literal["seed", "torch"] = "seed"
    proposal: bool = True
    coarse_samples: PositiveInt = 64
    fine_samples: PositiveInt = 128
    proposal_width: PositiveInt = 256
    proposal_weight: NonNegativeFloat = 1.0
    normal_weight: NonNegativeFloat = 4e-4
    backface_weight: NonNegativeFloat = 0.1
    density_normal_grad: bool = False


def _one_view(rays: RaySet, view: int, pixels: int) -> RaySet:
    """The rays of training view ``view`` (``pixels`` rays per view)."""
    part = slice(view * pixels, (view + 1) * pixels)
    return RaySet(rays.rays_o[part], rays.rays_d[part], rays.viewdirs[part], rays.rgb[part])


@register_trainer("nerf_mlp", "refnerf")
class NeRFTrainer(NeRFLoop):
    """The NeRF re-implementation seed's loop for ``nerf_mlp`` and ``refnerf`` (a :class:`Trainer`)."""

    settings_model = NeRFMLPSettings

    def __init__(self, model: nn.Module, cfg: Any, device: torch.device | str) -> None:
        if not isinstance(model, NeRFMLP | RefNeRFMLP):
            raise ConfigError(cfg.path, "model.name", "the NeRF MLP loop trains nerf_mlp / refnerf models")
        super().__init__(model, cfg, device)
        s = self.s
        self.ref = isinstance(model, RefNeRFMLP)
        self._misalignment = 0.0
        self.proposal: ProposalMLP | None = None
        nets: list[nn.Module] = [model]
        if s.proposal:
            self.proposal = ProposalMLP(hidden=s.proposal_width, samples=s.coarse_samples, near=model.near,
                                        far=model.far).to(self.device)
            nets.append(self.proposal)
        if s.weight_init == "torch":
            for net in nets:
                for module in net.modules():
                    if isinstance(module, nn.Linear):
                        module.reset_parameters()
        self.base_lr = s.lr or 1.5e-4 * s.batch_rays / 512
        params = [p for net in nets for p in net.parameters()]
        self.optimizer = torch.optim.Adam(params, lr=self.base_lr, betas=(0.9, 0.999))

    def lr_at(self, step: int) -> float:
        """The seed's ``DecayLrScheduler``: warm-up from ``min_ratio * lr``, then decay floored at ``min_ratio``."""
        s = self.s
        if step < s.warmup_steps:
            ratio = step / s.warmup_steps
            return self.base_lr * (s.min_ratio * (1.0 - ratio) + ratio)
        return self.base_lr * max(0.1 ** ((step - s.warmup_steps) / s.lr_decay_steps), s.min_ratio)

    # ------------------------------------------------------------------------------------- rendering
    def _proposal_depths(self, rays_o: torch.Tensor, rays_d: torch.Tensor, gen: torch.Generator | None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z_coarse, proposal weights (blurred), z_fine [R, N + 1], cdf-bin index of z_fine)``."""
        assert self.proposal is not None
        s, det = self.s, gen is None
        z_c = stratified_depths(rays_o.shape[0], s.coarse_samples, self.model.near, self.model.far, generator=gen,
                                device=rays_o.device, jitter=not det)
        pts = rays_o.unsqueeze(1) + rays_d.unsqueeze(1) * z_c.unsqueeze(-1)
        _, raw = self.proposal.query(pts, pts)  # density only: the directions are not used
        w_prop = max_blur(proposal_weights(F.softplus(raw), z_c, rays_d))
        z_f, idx = inverse_sample(w_prop, z_c, s.fine_samples + 1, generator=gen, deterministic=det)
        return z_c, w_prop, z_f, idx

    def render_rays(self, rays: dict[str, torch.Tensor], gen: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Proposal-guided render ``[R, 3]`` and the loss terms (``proposal``, ``normal``, ``backface``)."""
        o, d, v = rays["rays_o"], rays["rays_d"], rays["viewdirs"]
        z_c, w_prop, z_f, idx = self._proposal_depths(o, d, gen)
        terms: dict[str, torch.Tensor] = {}
        if self.ref:
            z, idx = merge_depths(z_c, z_f, idx)
            pts = (o.unsqueeze(1) + d.unsqueeze(1) * z.unsqueeze(-1)).requires_grad_(torch.is_grad_enabled())
            dirs = v.unsqueeze(1).expand(pts.shape)
            rgb, raw, normal = self.model.field(pts, dirs)
            color, _, weights = self.model.composite(rgb, F.softplus(raw + 0.5), z, d)
            if torch.is_grad_enabled():
                n_density = density_normals(raw, pts, differentiable=self.s.density_normal_grad)
                terms["normal"] = normal_loss(weights, n_density, normal)
                terms["backface"] = backface_loss(weights, normal, dirs)
                self._misalignment = float(normal_misalignment(weights.detach(), n_density.detach(), normal.detach()))
        else:
            color, _, weights = self.model.render_at(o, d, v, z_f[..., :-1])
        terms["proposal"] = proposal_loss(interval_bounds(w_prop, idx), weights.detach())
        return color, terms

    def render_eval(self) -> torch.Tensor:  # noqa: D102
        if self.proposal is None:
            return super().render_eval()
        self.proposal.eval()
        flat = {k: t.reshape(-1, 3) for k, t in self.eval_rays.items()}
        parts = [self.render_rays({k: t[i:i + _EVAL_CHUNK] for k, t in flat.items()})[0]
                 for i in range(0, flat["rays_o"].shape[0], _EVAL_CHUNK)]
        self.proposal.train()
        return torch.cat(parts).reshape(self.eval_rays["rays_o"].shape)

    # ------------------------------------------------------------------------------------- training
    def train_step(self, step: int) -> dict[str, float]:
        """One step on ``batch_rays`` random rays of one random training image."""
        s = self.s
        self.last_step = step + 1
        gen = torch.Generator().manual_seed((self.seed * 7_919 + step) % (2**63))
        view = int(torch.randint(len(self.train_views), (1,), generator=gen))
        pool = _one_view(self.train_rays, view, self.train_views.height * self.train_views.width)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(step)
        self.model.train()
        inputs, target = self.batch(step, pool)
        if self.proposal is None:
            color, terms = self.model(**inputs).rgb, {}
        else:
            color, terms = self.render_rays(inputs, gen)
        mse = F.mse_loss(color, target)
        weights = {"proposal": s.proposal_weight, "normal": s.normal_weight, "backface": s.backface_weight}
        loss = mse + sum(weights[k] * v for k, v in terms.items())
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        out = {"loss": float(loss.detach()), "mse": float(mse.detach()), "psnr": mse_to_psnr(float(mse.detach())),
               "lr": self.lr_at(step)}
        if self.ref and self.proposal is not None:
            out["normal_misalignment"] = self._misalignment
        return out | {f"{k}_loss": float(v.detach()) for k, v in terms.items()}

    def state_dict(self) -> dict[str, Any]:
        """Optimiser, proposal network and step."""
        proposal = self.proposal.state_dict() if self.proposal is not None else {}
        return {"optimizer": self.optimizer.state_dict(), "proposal": proposal, "last_step": self.last_step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output."""
        self.optimizer.load_state_dict(state["optimizer"])
        if self.proposal is not None:
            self.proposal.load_state_dict(state["proposal"])
        self.last_step = int(state["last_step"])

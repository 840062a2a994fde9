"""Proposal-guided sampling and the extra losses of the NeRF re-implementation seed (Enigmatisms/NeRF).

Pure tensor functions, written from the seed's equations (``train.py``, ``nerf/addtional.py``,
``nerf/utils.py``, ``nerf/nerf_base.py``, ``nerf/ref_model.py``; ``docs/seed_models.md`` §2). Depths are in
units of ``|rays_d|`` (camera rays with z = -1), as in the seed. Per training step::

    z_c      = stratified_depths(R, P, near, far)                 # P proposal samples per ray
    w_prop   = max_blur(proposal_weights(softplus(prop(x(z_c))), z_c, rays_d), 0.01)
    z_f, idx = inverse_sample(w_prop, z_c, N + 1)                 # sorted; idx = lower cdf bin per sample
    mip-NeRF: render the first N of z_f;  Ref-NeRF: merge_depths(z_c, z_f, idx) (P + N samples)
    loss     = MSE + proposal_loss(interval_bounds(w_prop, idx), w_nerf.detach())
               [+ 4e-4 (normal_loss(w, n_density, n_pred) + 0.1 * 0) + 0.1 backface_loss(w, n_pred, d)]

``proposal_loss`` is mip-NeRF 360's ``sum relu(w - bound)^2 / (w + 1e-8)`` (a sum over rays and
intervals, as in the seed), where ``bound`` sums the proposal weights over the cdf bins a NeRF interval
spans (``getBounds``). Ref-NeRF's ``normal_loss`` (``WeightedNormalLoss(size_average=True)``) is
``mean w (1 - n_density . n_pred)`` with ``n_density = -grad(raw density) / max(|grad|, 1e-5)``
(no gradient through it); ``backface_loss`` (orientation) is ``mean w relu(n_pred . d)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "backface_loss",
    "density_normals",
    "interval_bounds",
    "inverse_sample",
    "max_blur",
    "merge_depths",
    "normal_loss",
    "normal_misalignment",
    "proposal_loss",
    "proposal_weights",
    "stratified_depths",
]

#: The seed's ``maxBlurFilter`` offset.
BLUR_ALPHA = 0.01


def stratified_depths(rays: int, samples: int, near: float, far: float, *, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu", jitter: bool = True) -> torch.Tensor:
    """The seed's ``validSampler`` depths ``[R, P]``: ``linspace(near, far - res, P) + U(0, res)``.

    ``res = (far - near) / P``.
    ``jitter = False`` puts every sample at its bin centre (deterministic evaluation).
    """
    res = (far - near) / samples
    base = torch.linspace(near, far - res, samples, device=device)
    if not jitter:
        return (base + 0.5 * res).expand(rays, samples).clone()
    return base + torch.rand(rays, samples, generator=generator).to(device) * res


def proposal_weights(density: torch.Tensor, z_vals: torch.Tensor, rays_d: torch.Tensor) -> torch.Tensor:
    """``ProposalNetwork.get_weights``: ``alpha_i prod_{j<i} (exp(-relu(sigma_j) delta_j) + 1e-10)`` ``[R, P]``.

    ``delta`` is the depth difference times ``|rays_d|``, the last one 1e10.
    """
    depth = z_vals * rays_d.norm(dim=-1, keepdim=True)
    delta = torch.cat([depth[:, 1:] - depth[:, :-1], torch.full_like(depth[:, :1], 1e10)], -1)
    keep = torch.exp(-F.relu(density) * delta)
    trans = torch.cumprod(torch.cat([torch.ones_like(keep[:, :1]), keep + 1e-10], -1), -1)[:, :-1]
    return (1.0 - keep) * trans


def max_blur(weights: torch.Tensor, alpha: float = BLUR_ALPHA) -> torch.Tensor:
    """mip-NeRF 360's ``maxBlurFilter``: mean of the two neighbour maxima, plus ``alpha`` ``[R, P]``."""
    maxi = torch.maximum(weights[..., :-1], weights[..., 1:])
    front = torch.cat([weights[..., :1], maxi], -1)
    rear = torch.cat([maxi, weights[..., -1:]], -1)
    return 0.5 * (front + rear) + alpha


def inverse_sample(weights: torch.Tensor, z_vals: torch.Tensor, samples: int, *,
                   generator: torch.Generator | None = None, deterministic: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The seed's ``inverseSample(..., sort=True)`` (``sample_pdf`` on the bin midpoints, inner weights).

    Args:
        weights: proposal weights ``[R, P]`` (detached here).
        z_vals: their depths ``[R, P]``.
        samples: N, depths to draw per ray.
        generator: RNG of the uniform draws.
        deterministic: ``u = linspace(0, 1, N)`` instead of uniform draws.

    Returns:
        ``(depths [R, N] sorted, lower cdf-bin index of each [R, N])``.
    """
    bins = 0.5 * (z_vals[..., 1:] + z_vals[..., :-1])
    w = weights.detach()[..., 1:-1] + 1e-5
    cdf = torch.cumsum(w / w.sum(-1, keepdim=True), -1)
    cdf = torch.cat([torch.zeros_like(cdf[..., :1]), cdf], -1)
    shape = (*cdf.shape[:-1], samples)
    if deterministic:
        u = torch.linspace(0.0, 1.0, samples, device=cdf.device).expand(shape).contiguous()
    else:
        u = torch.rand(shape, generator=generator).to(cdf.device)
    inds = torch.searchsorted(cdf, u, right=True)
    below = (inds - 1).clamp(min=0)
    above = inds.clamp(max=cdf.shape[-1] - 1)
    cdf_lo, cdf_hi = cdf.gather(-1, below), cdf.gather(-1, above)
    bin_lo, bin_hi = bins.gather(-1, below), bins.gather(-1, above)
    denom = cdf_hi - cdf_lo
    denom = torch.where(denom < 1e-5, torch.ones_like(denom), denom)
    depths = bin_lo + (u - cdf_lo) / denom * (bin_hi - bin_lo)
    depths, order = torch.sort(depths, -1)
    return depths, below.gather(-1, order)


def merge_depths(coarse: torch.Tensor, fine: torch.Tensor, fine_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``NeRF.coarseFineMerge`` with indices: sorted ``cat(fine, coarse)`` minus the last depth.

    Returns ``(depths [R, N + P - 1], bin index of every merged depth [R, N + P])``: a fine depth keeps
    its cdf-bin index, coarse depth ``j`` gets ``j`` (the seed's bookkeeping for ``interval_bounds``).
    """
    depths, order = torch.sort(torch.cat([fine, coarse], -1), -1)
    coarse_idx = torch.arange(coarse.shape[-1], device=coarse.device).expand_as(coarse)
    idx = torch.cat([fine_idx, coarse_idx], -1).gather(-1, order)
    return depths[..., :-1], idx


def interval_bounds(weights: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``getBounds``: ``sum(weights[idx_i .. idx_{i+1}])`` per consecutive index pair ``[R, K - 1]``."""
    sat = torch.cat([torch.zeros_like(weights[:, :1]), torch.cumsum(weights, -1)], -1)
    return sat.gather(-1, idx[:, 1:] + 1) - sat.gather(-1, idx[:, :-1])


def proposal_loss(bounds: torch.Tensor, nerf_weights: torch.Tensor) -> torch.Tensor:
    """``ProposalLoss``: ``sum relu(w - bound)^2 / (w + 1e-8)`` (NeRF weights detached by the caller)."""
    return (F.relu(nerf_weights - bounds) ** 2 / (nerf_weights + 1e-8)).sum()


def density_normals(raw_density: torch.Tensor, pts: torch.Tensor, *, differentiable: bool = False) -> torch.Tensor:
    """``-RefNeRF.get_grad``: ``-grad(sigma) / max(|grad|, 1e-5)`` at ``pts``.

    Args:
        raw_density: raw (pre-activation) density ``[...]`` computed from ``pts``.
        pts: sample points ``[..., 3]`` with ``requires_grad``.
        differentiable: keep the graph of the gradient (``create_graph``), so a loss on the normals also
            trains the density (Ref-NeRF's official code); ``False`` is the seed's ``get_grad``, whose
            normals are constants.
    """
    (grad,) = torch.autograd.grad(raw_density, pts, torch.ones_like(raw_density), retain_graph=True,
                                  create_graph=differentiable)
    return -grad / grad.norm(dim=-1, keepdim=True).clamp(min=1e-5)


def normal_loss(weights: torch.Tensor, density_normal: torch.Tensor, pred_normal: torch.Tensor) -> torch.Tensor:
    """``WeightedNormalLoss(size_average=True)``: ``mean w (1 - n_density . n_pred)``."""
    return (weights * (1.0 - (density_normal * pred_normal).sum(-1))).mean()


def normal_misalignment(weights: torch.Tensor, density_normal: torch.Tensor, pred_normal: torch.Tensor) -> torch.Tensor:
    """``sum w (1 - n_density . n_pred) / sum w``: the normal loss per unit weight (a diagnostic, not a loss).

    The normal loss also grows with the weights themselves (opacity forming during training); this ratio
    isolates how well the predicted normals follow the density gradient (0 = aligned, 2 = opposite).
    """
    misaligned = (weights * (1.0 - (density_normal * pred_normal).sum(-1))).sum()
    return misaligned / weights.sum().clamp(min=1e-12)


def backface_loss(weights: torch.Tensor, pred_normal: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """``BackFaceLoss`` (orientation): ``mean w relu(n_pred . d)``."""
    return (weights * F.relu((pred_normal * dirs).sum(-1))).mean()

"""Shared pieces of the radiance-field renderers: ray sampling, compositing, encodings, outputs.

Everything is plain torch arithmetic that the profiler counts as elementwise ops (no ``cumprod``,
``searchsorted`` or other op without a counting rule), and differentiable for training.

Conventions: rays are ``rays_o``/``rays_d`` ``[R, 3]`` in world units; ``viewdirs`` are the unit
directions. Points along a ray are sorted near to far; a point list carries ``ray_id`` (index of its
ray in the chunk, non-decreasing) and ``step_id`` (the i-th sample along the ray, before masking).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "ChunkStats",
    "RenderOutput",
    "composite_segments",
    "frequency_encoding",
    "ray_box_bounds",
    "sample_dvgo",
    "segment_sum",
    "split_views",
]

logger = logging.getLogger(__name__)

#: DVGO's early ray termination: a ray stops once its transmittance falls below this.
TRANSMITTANCE_STOP = 1e-3


@dataclass(frozen=True)
class ChunkStats:
    """Per-chunk statistics of one render (plain Python numbers; what ``snnprof compare`` shows).

    Attributes:
        view: index of the view (image) the chunk belongs to.
        rays: rays in the chunk.
        sampled: sample points inside the bounding box.
        after_cache: points left after the occupancy cache (DVGO ``mask_cache`` / TensoRF alpha mask).
        after_alpha: points left after the ``alpha > fast_color_thres`` mask (``None`` if not applied).
        points: M, points that reach the colour MLP (after the ``weights > thres`` mask).
        time_steps: T of the SNN input tensor ``[T, B, C]`` (``None`` for ANN colour heads).
        batch: B of the SNN input tensor.
        zero_elements: zeros of the seed's ``[T, B, C]`` tensor (``None`` for ANN colour heads).
        channels: C, MLP input features per point.
    """

    view: int
    rays: int
    sampled: int
    after_cache: int
    after_alpha: int | None
    points: int
    time_steps: int | None = None
    batch: int | None = None
    zero_elements: int | None = None
    channels: int = 0

    @classmethod
    def of(cls, view: int, funnel: tuple[int, int, int, int | None, int], packing: Any,
           channels: int) -> ChunkStats:
        """Statistics of a chunk from its mask funnel and the SNN packing (``None`` for ANN heads).

        Args:
            view: view index.
            funnel: ``(rays, sampled, after_cache, after_alpha, points)``.
            packing: a :class:`~snnprof.models.nerf_packing.Packing` (T, B, zeros) or ``None``.
            channels: MLP input features per point.
        """
        if packing is None:
            return cls(view, *funnel, channels=channels)
        return cls(view, *funnel, packing.time_steps, packing.batch, packing.zero_elements, channels)

    @property
    def padding_fraction(self) -> float | None:
        """``1 - M / (T * B)``: share of the SNN tensor's rows that are zero padding."""
        if self.time_steps is None or self.batch is None:
            return None
        rows = self.time_steps * self.batch
        return 1.0 - self.points / rows if rows else 0.0

    @property
    def sparsity(self) -> float | None:
        """The seed's ``sparsity``: zeros of ``[T, B, C]`` over its numel."""
        if self.zero_elements is None or self.time_steps is None or self.batch is None:
            return None
        numel = self.time_steps * self.batch * self.channels
        return self.zero_elements / numel if numel else 0.0

    def to_dict(self) -> dict[str, int | float | None]:
        """JSON-ready dict (counts as ints, fractions as floats)."""
        return {
            "view": self.view, "rays": self.rays, "sampled": self.sampled, "after_cache": self.after_cache,
            "after_alpha": self.after_alpha, "points": self.points, "time_steps": self.time_steps,
            "batch": self.batch, "zero_elements": self.zero_elements, "channels": self.channels,
            "padding_fraction": self.padding_fraction, "sparsity": self.sparsity,
        }


@dataclass
class RenderOutput:
    """What a radiance-field model returns for a set of rays.

    Attributes:
        rgb: composited colour per ray, shaped like the rays (``[..., 3]``, in [0, 1] before clamping).
        alphainv_last: transmittance left after the last point of each ray ``[...]`` (background weight).
        weights: compositing weight of each point that reached the colour MLP ``[M]``.
        raw_rgb: colour of each of those points ``[M, 3]``.
        ray_id: flat index (C order over the rays' leading dims) of each point's ray ``[M]``.
        stats: one :class:`ChunkStats` per render chunk, in order.
    """

    rgb: torch.Tensor
    alphainv_last: torch.Tensor
    weights: torch.Tensor
    raw_rgb: torch.Tensor
    ray_id: torch.Tensor
    stats: list[ChunkStats] = field(default_factory=list)


def split_views(rays: torch.Tensor) -> torch.Tensor:
    """Rays as ``[V, R, 3]``: ``[R, 3]`` is one view; ``[V, ..., 3]`` has V views of flattened rays."""
    if rays.dim() < 2 or rays.shape[-1] != 3:
        raise ValueError(f"rays must have shape [..., 3] with at least 2 dims, got {tuple(rays.shape)}")
    if rays.dim() == 2:
        return rays.unsqueeze(0)
    return rays.reshape(rays.shape[0], -1, 3)


def ray_box_bounds(rays_o: torch.Tensor, rays_d: torch.Tensor, xyz_min: torch.Tensor, xyz_max: torch.Tensor, *,
                   near: float, far: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit ray parameters of the box, clamped to ``[near, far]`` (DVGO ``infer_t_minmax``).

    Args:
        rays_o: origins ``[R, 3]``.
        rays_d: directions ``[R, 3]`` (not necessarily unit; ``t`` is in units of ``|rays_d|``).
        xyz_min: lower box corner ``[3]``.
        xyz_max: upper box corner ``[3]``.
        near: smallest ``t``.
        far: largest ``t``.

    Returns:
        ``(t_min, t_max)``, each ``[R]``; ``t_max <= t_min`` for rays missing the box.
    """
    vec = torch.where(rays_d == 0, torch.full_like(rays_d, 1e-6), rays_d)
    rate_a = (xyz_max - rays_o) / vec
    rate_b = (xyz_min - rays_o) / vec
    t_min = torch.minimum(rate_a, rate_b).amax(-1).clamp(max=far).clamp(min=near)
    t_max = torch.maximum(rate_a, rate_b).amin(-1).clamp(max=far).clamp(min=near)
    return t_min, t_max


def sample_dvgo(rays_o: torch.Tensor, rays_d: torch.Tensor, xyz_min: torch.Tensor, xyz_max: torch.Tensor, *,
                near: float, stepdist: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DVGO's ``sample_pts_on_rays``: uniform steps of ``stepdist`` from the box entry, points in the box.

    ``t`` is in units of ``|rays_d|``, so the in-box length is ``(t_max - t_min) |d|`` world units and a ray
    gets ``max(ceil((t_max - t_min) |d| / stepdist), 1)`` steps (DVGO's ``infer_n_samples``), point ``i``
    at ``o + d t_min + (d / |d|) stepdist i``; points outside the box are dropped (far = infinity).

    Args:
        rays_o: origins ``[R, 3]``.
        rays_d: directions ``[R, 3]`` (not necessarily unit: Blender camera rays have z = -1).
        xyz_min: lower box corner.
        xyz_max: upper box corner.
        near: smallest ray parameter.
        stepdist: step length in world units (``stepsize * voxel_size``).

    Returns:
        ``(points [P, 3], ray_id [P], step_id [P])``, sorted by ray then step.
    """
    t_min, t_max = ray_box_bounds(rays_o, rays_d, xyz_min, xyz_max, near=near, far=1e9)
    norm = rays_d.norm(dim=-1)
    n_steps = torch.ceil((t_max - t_min) * norm / stepdist).clamp(min=1).long()
    ray_id = torch.repeat_interleave(torch.arange(rays_o.shape[0], device=rays_o.device), n_steps)
    starts = torch.cumsum(n_steps, 0) - n_steps
    step_id = torch.arange(ray_id.numel(), device=rays_o.device) - starts[ray_id]
    origin = rays_o + rays_d * t_min.unsqueeze(-1)
    unit = rays_d / norm.unsqueeze(-1)
    pts = origin[ray_id] + unit[ray_id] * (step_id.unsqueeze(-1) * stepdist)
    inside = ((pts >= xyz_min) & (pts <= xyz_max)).all(-1)
    return pts[inside], ray_id[inside], step_id[inside]


def segment_sum(values: torch.Tensor, ray_id: torch.Tensor, n_rays: int) -> torch.Tensor:
    """Sum ``values [M, ...]`` per ray into ``[n_rays, ...]`` (torch_scatter ``segment_coo`` sum)."""
    out = values.new_zeros((n_rays, *values.shape[1:]))
    return out.index_add(0, ray_id, values)


def composite_segments(log_transmit: torch.Tensor, ray_id: torch.Tensor,
                       n_rays: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Compositing weights of points grouped by ray (DVGO ``Alphas2Weights`` with early termination).

    With ``l_i = log(1 - alpha_i)`` and the points of a ray in order, ``T_i = exp(sum_{j<i} l_j)``
    and ``w_i = T_i * alpha_i``. As in DVGO's kernel a ray stops after the point that takes its
    transmittance below 1e-3 (later points get weight 0) and ``alphainv_last`` is the transmittance
    at the stop. Sums run in float64 so per-ray differences of the global cumulative sum stay exact.

    Args:
        log_transmit: ``log(1 - alpha)`` per point ``[M]`` (<= 0; finite).
        ray_id: ray of each point ``[M]``, non-decreasing.
        n_rays: rays in the chunk.

    Returns:
        ``(weights [M], alphainv_last [n_rays])`` in the dtype of ``log_transmit``.
    """
    dtype = log_transmit.dtype
    logs = log_transmit.double()
    cum = torch.cumsum(logs, 0)
    per_ray = segment_sum(logs, ray_id, n_rays)
    before_ray = torch.cumsum(per_ray, 0) - per_ray
    excl = cum - logs - before_ray[ray_id]
    transmit = torch.exp(excl)
    active = transmit >= TRANSMITTANCE_STOP
    weights = torch.where(active, transmit * -torch.expm1(logs), torch.zeros_like(transmit))
    alphainv_last = torch.exp(segment_sum(torch.where(active, logs, torch.zeros_like(logs)), ray_id, n_rays))
    return weights.to(dtype), alphainv_last.to(dtype)


def frequency_encoding(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """``[sin(x * f), cos(x * f)]`` for every frequency, grouped per coordinate (DVGO's ``viewfreq``).

    Args:
        x: inputs ``[..., D]``.
        freqs: frequencies ``[F]``.

    Returns:
        ``[..., 2 * D * F]``: all sines (``x_0 f_0, x_0 f_1, ..., x_D f_F``) then all cosines.
    """
    emb = (x.unsqueeze(-1) * freqs).flatten(-2)
    return torch.cat([emb.sin(), emb.cos()], -1)

"""SpikingNeRF's temporal layouts: each ray's surviving sample points become the SNN's time axis.

After the masks, a render chunk holds ``M`` valid points, sorted by ray and then by step, with
``ray_id [M]`` (ray index inside the chunk) and ``step_id [M]`` (the i-th step along the ray, counted
before masking). The spiking colour MLP runs on a zero-padded tensor ``[T, B, C]``; where each point
lands is the layout (``docs/seed_models.md`` §1.2):

* **TP** (temporal padding, ``condensing=False``): ``T = max(step_id) - min(step_id) + 1`` and
  ``B = max(ray_id) - min(ray_id) + 1`` over the chunk; a point keeps its true step, so gaps, leading
  and trailing steps and rays without points are all-zero rows.
* **TCP** (temporal condensing-and-padding): rays without points are dropped (``B`` = rays with points),
  each ray's points are packed to consecutive steps from ``t = 0`` and ``T`` = the most points on one ray.
* ``tempo_flip``: the seed right-aligns, flips the tensor in time before the SNN and flips back after;
  the net effect computed here directly is ``t -> T - 1 - t`` for TP and, for TCP, each ray's points
  left-aligned in far-to-near order.

:class:`TemporalPacker` computes the placement; :class:`TempoLinear` is the first synaptic layer: an
``nn.Linear`` (counted by the engine's Linear rule) that multiplies only the ``M`` valid points
(``M * in * out`` MACs, the seed's "FLOPs"; crossbar frames ``M``) and scatters the currents into the
zero tensor ``[T, B, out]``. The packer's index bookkeeping is counted as elementwise ops (a few per
point, plus one per feature element to count the seed's ``sparsity``).
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from snnprof.counting.slots import valid_slots

__all__ = ["LAYOUTS", "Packing", "TempoLinear", "TemporalPacker", "pack_points"]

logger = logging.getLogger(__name__)

#: Temporal layouts of SpikingNeRF.
LAYOUTS: tuple[str, ...] = ("tcp", "tp")


@dataclass(frozen=True)
class Packing:
    """Where each valid point sits in the SNN input tensor ``[T, B, C]``.

    Attributes:
        t_idx: time step of each point ``[M]`` (long).
        b_idx: column (ray slot) of each point ``[M]`` (long).
        time_steps: T, rows of the tensor (0 when the chunk has no valid point).
        batch: B, columns of the tensor.
        layout: ``tcp`` or ``tp``.
        tempo_flip: whether the seed's ``tempo_flip`` ordering was applied.
        zero_elements: zeros of the seed's input tensor ``[T, B, C]`` (padding rows plus exact zeros
            of the valid features), or ``None`` when no features were given.
        channels: C, features per point (0 when unknown).
    """

    t_idx: torch.Tensor
    b_idx: torch.Tensor
    time_steps: int
    batch: int
    layout: str
    tempo_flip: bool = False
    zero_elements: int | None = None
    channels: int = 0

    @property
    def points(self) -> int:
        """M, valid points placed in the tensor."""
        return int(self.t_idx.numel())

    @property
    def padding_fraction(self) -> float:
        """Fraction of the ``T * B`` rows that are zero padding: ``1 - M / (T * B)`` (0 when empty)."""
        rows = self.time_steps * self.batch
        return 1.0 - self.points / rows if rows else 0.0

    def valid_mask(self) -> torch.Tensor:
        """Bool ``[T, B]``: true at the slots that hold a point, false at the zero padding."""
        mask = torch.zeros(self.time_steps, self.batch, dtype=torch.bool, device=self.t_idx.device)
        mask[self.t_idx, self.b_idx] = True
        return mask

    def valid_slots(self) -> AbstractContextManager[None]:
        """:func:`snnprof.valid_slots` of this packing (the mask is built only while profiling)."""
        return valid_slots(self.valid_mask)

    @property
    def sparsity(self) -> float | None:
        """The seed's ``sparsity``: zeros of ``[T, B, C]`` over its numel (``None`` without features)."""
        numel = self.time_steps * self.batch * self.channels
        if self.zero_elements is None or not numel:
            return None
        return self.zero_elements / numel


def _pack_tp(ray_id: torch.Tensor, step_id: torch.Tensor,
             tempo_flip: bool) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """TP placement: true step and ray offsets inside the chunk's ranges."""
    t0, b0 = step_id.min(), ray_id.min()
    steps = int(step_id.max() - t0) + 1
    rays = int(ray_id.max() - b0) + 1
    t_idx = step_id - t0
    if tempo_flip:
        t_idx = steps - 1 - t_idx
    return t_idx, ray_id - b0, steps, rays


def _pack_tcp(ray_id: torch.Tensor, tempo_flip: bool) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """TCP placement: non-empty rays only, points packed from ``t = 0`` (reversed with ``tempo_flip``)."""
    counts_all = torch.bincount(ray_id)
    counts = counts_all[counts_all != 0]
    b_idx = torch.repeat_interleave(torch.arange(counts.numel(), device=ray_id.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    pos = torch.arange(ray_id.numel(), device=ray_id.device) - starts[b_idx]
    t_idx = counts[b_idx] - 1 - pos if tempo_flip else pos
    return t_idx, b_idx, int(counts.max()), int(counts.numel())


def pack_points(ray_id: torch.Tensor, step_id: torch.Tensor, layout: str, tempo_flip: bool = False,
                feat: torch.Tensor | None = None) -> Packing:
    """Place the chunk's valid points in the SNN input tensor.

    Args:
        ray_id: ray index of each valid point ``[M]``, non-decreasing (points sorted by ray, then step).
        step_id: step index along its ray, counted before masking ``[M]``.
        layout: ``tcp`` or ``tp``.
        tempo_flip: apply the seed's ``tempo_flip`` ordering.
        feat: the points' input features ``[M, C]`` (only used to count the seed's ``sparsity``).

    Returns:
        The :class:`Packing`.

    Raises:
        ValueError: unknown layout.

    Example:
        >>> ray = torch.tensor([0, 0, 0, 1]); step = torch.tensor([10, 11, 40, 12])
        >>> p = pack_points(ray, step, "tp"); (p.time_steps, p.batch)
        (31, 2)
        >>> p = pack_points(ray, step, "tcp"); (p.time_steps, p.batch, p.t_idx.tolist())
        (3, 2, [0, 1, 2, 0])
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    ray_id, step_id = ray_id.long(), step_id.long()
    if ray_id.numel() == 0:
        empty = ray_id.new_zeros(0)
        return Packing(empty, empty, 0, 0, layout, tempo_flip, 0 if feat is not None else None,
                       int(feat.shape[-1]) if feat is not None else 0)
    if layout == "tp":
        t_idx, b_idx, steps_i, rays_i = _pack_tp(ray_id, step_id, tempo_flip)
    else:
        t_idx, b_idx, steps_i, rays_i = _pack_tcp(ray_id, tempo_flip)
    zeros, channels = None, 0
    if feat is not None:
        channels = int(feat.shape[-1])
        zeros = (steps_i * rays_i - ray_id.numel()) * channels + feat.numel() - int(torch.count_nonzero(feat))
    return Packing(t_idx, b_idx, steps_i, rays_i, layout, tempo_flip, zeros, channels)


class TemporalPacker(nn.Module):
    """Module wrapper of :func:`pack_points` (so the profiler sees a zero-cost data-movement layer).

    Args:
        layout: ``tcp`` or ``tp``.
        tempo_flip: apply the seed's ``tempo_flip`` ordering.
    """

    def __init__(self, layout: str = "tcp", tempo_flip: bool = False) -> None:
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.layout = layout
        self.tempo_flip = bool(tempo_flip)

    def forward(self, ray_id: torch.Tensor, step_id: torch.Tensor, feat: torch.Tensor | None = None) -> Packing:
        """Placement of the valid points (see :func:`pack_points`)."""
        return pack_points(ray_id, step_id, self.layout, self.tempo_flip, feat)

    def extra_repr(self) -> str:
        """Layout and flip, for ``print(model)``."""
        return f"layout={self.layout}, tempo_flip={self.tempo_flip}"


class TempoLinear(nn.Linear):
    """Bias-free linear layer on the valid points, scattered into the SNN tensor ``[T, B, out]``.

    Equal to applying ``Linear(in, out, bias=False)`` to the zero-padded ``[T, B, in]`` tensor (padding
    rows give zero current), but only the ``M`` valid rows are multiplied: the engine's ``nn.Linear``
    rule sees the ``[M, in]`` input and counts ``M * in * out`` MACs.

    Args:
        in_features: C, features per point (39 for SpikingNeRF-D).
        out_features: width of the layer (128).
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features, bias=False)

    def forward(self, feat: torch.Tensor, packing: Packing) -> torch.Tensor:  # type: ignore[override]
        """Currents ``[T, B, out]`` from point features ``feat [M, in]`` placed by ``packing``."""
        currents = F.linear(feat, self.weight)
        out = currents.new_zeros(packing.time_steps, packing.batch, self.out_features)
        return out.index_put((packing.t_idx, packing.b_idx), currents)

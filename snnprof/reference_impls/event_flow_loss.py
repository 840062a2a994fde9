r"""event_flow's self-supervised loss and metric: contrast maximisation with Charbonnier smoothness, and AEE.

Re-implementation of ``tudelft/event_flow`` ``loss/flow.py`` (``EventWarping``, ``AEE``;
``docs/seed_models.md`` section 4.3).

**Contrast maximisation** over the passes accumulated since the last update: every event (its
timestamp normalised to [0, 1] within its pass, plus the pass index) is warped with the flow
predicted at its pixel, ``x' = x + (t_ref - t) * flow * flow_scaling``, forward to ``t_ref = passes``
and backward to ``t_ref = 0``, and splatted bilinearly into per-polarity images of events and of
timestamps (``t`` forward, ``passes - t`` backward). The loss of each direction is
:math:`\sum (\bar t_+^2 + \bar t_-^2) / N_{px}` with :math:`\bar t` the per-pixel average timestamp
divided by ``passes`` and :math:`N_{px}` the pixels hit by any warped event, summed over the batch.

**Smoothness**: Charbonnier :math:`\sqrt{d^2 + 10^{-6}}` of flow differences along x, y, both
diagonals and time (between passes), each masked by the pixels with events, summed, divided by the
5 components and the passes, weighted by ``flow_regul_weight`` (0.001). The seed's code takes
``d = d_x + d_y`` (the two flow components' differences added before squaring): ``smoothness =
"code"`` (default); ``"paper"`` applies the penalty to each component separately.

The total is averaged over the flow outputs (4 for the U-Nets).

**AEE**: ``flow * flow_scaling * dt_gt / dt_input`` against ground truth, mean end-point error over
pixels with events and non-zero ground truth; outliers: error > 3 px and > 5 % of the magnitude.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

__all__ = ["SMOOTHNESS", "EventWarping", "FlowErrors", "average_endpoint_error", "warp_and_splat"]

logger = logging.getLogger(__name__)

SMOOTHNESS: tuple[str, ...] = ("code", "paper")
_EPS = 1e-9
_CHARBONNIER_EPS = 1e-6


def _gather_flow(flow: torch.Tensor, events: torch.Tensor, width: int) -> torch.Tensor:
    """Flow ``(y, x)`` at every event's pixel: ``[B, N, 2]`` from ``flow [B, 2, H, W]`` and events ``[B, N, 4]``."""
    idx = (events[:, :, 1] * width + events[:, :, 2]).long()
    flat = flow.reshape(flow.shape[0], 2, -1)
    fy = torch.gather(flat[:, 1], 1, idx)
    fx = torch.gather(flat[:, 0], 1, idx)
    return torch.stack([fy, fx], dim=2)


def warp_and_splat(
    events: torch.Tensor, flow: torch.Tensor, tref: float, resolution: tuple[int, int], scaling: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Warp events to ``tref`` and return their bilinear splat indices and weights.

    Args:
        events: ``[B, N, 4]`` (ts, y, x, p).
        flow: ``[B, N, 2]`` per-event flow (y, x) in network units.
        tref: reference time (in passes).
        resolution: ``(H, W)``.
        scaling: ``flow_scaling`` (pixels per unit of flow and pass).

    Returns:
        ``idx [B, 4N]`` flat pixel indices and ``weights [B, 4N]`` (0 for corners off the image).
    """
    height, width = resolution
    warped = events[:, :, 1:3] + (tref - events[:, :, 0:1]) * flow * scaling
    top_left = torch.floor(warped)
    corners = [top_left + torch.tensor(off, dtype=warped.dtype, device=warped.device)
               for off in ((0, 0), (0, 1), (1, 0), (1, 1))]
    idx = torch.cat(corners, dim=1)
    weights = (1 - (warped.repeat(1, 4, 1) - idx).abs()).clamp_min(0).prod(dim=2)
    inside = (idx[:, :, 0] >= 0) & (idx[:, :, 0] < height) & (idx[:, :, 1] >= 0) & (idx[:, :, 1] < width)
    weights = weights * inside
    flat = (idx[:, :, 0] * width + idx[:, :, 1]) * inside
    return flat.long(), weights


def _splat(idx: torch.Tensor, values: torch.Tensor, pixels: int) -> torch.Tensor:
    """Scatter-add ``values [B, M]`` at ``idx [B, M]`` into ``[B, pixels]``."""
    return values.new_zeros((idx.shape[0], pixels)).scatter_add_(1, idx, values)


def _timestamp_loss(
    idx: torch.Tensor, weights: torch.Tensor, stamps: torch.Tensor, pol4: torch.Tensor, *, pixels: int, passes: int
) -> torch.Tensor:
    """Sum over the batch of the per-sample ``sum(avg ts^2) / hit pixels`` (both polarities)."""
    total = weights.new_zeros(idx.shape[0])
    hit = weights.new_zeros((idx.shape[0], pixels))
    for pol in (pol4[:, :, 0], pol4[:, :, 1]):
        count = _splat(idx, weights * pol, pixels)
        ts_img = _splat(idx, weights * stamps * pol, pixels) / (count + _EPS) / passes
        total = total + (ts_img**2).sum(dim=1)
        hit = hit + count
    return (total / (hit > 0).sum(dim=1).clamp_min(1)).sum()


def _charbonnier(dx: torch.Tensor, dy: torch.Tensor, mode: str) -> torch.Tensor:
    """Penalty of the flow differences ``dx`` (x component) and ``dy`` (y component)."""
    if mode == "code":
        return torch.sqrt((dx + dy) ** 2 + _CHARBONNIER_EPS)
    return torch.sqrt(dx**2 + _CHARBONNIER_EPS) + torch.sqrt(dy**2 + _CHARBONNIER_EPS)


def _smoothness(fx: torch.Tensor, fy: torch.Tensor, mask: torch.Tensor | None, mode: str) -> torch.Tensor:
    """Charbonnier smoothness of flow maps ``[B, P, H, W]`` over x, y, diagonals and time."""
    slices = (
        ((..., slice(None), slice(None, -1)), (..., slice(None), slice(1, None))),  # dx
        ((..., slice(None, -1), slice(None)), (..., slice(1, None), slice(None))),  # dy
        ((..., slice(None, -1), slice(None, -1)), (..., slice(1, None), slice(1, None))),  # down-right
        ((..., slice(1, None), slice(None, -1)), (..., slice(None, -1), slice(1, None))),  # up-right
        ((slice(None), slice(None, -1)), (slice(None), slice(1, None))),  # time
    )
    total = fx.new_zeros(())
    for a, b in slices:
        penalty = _charbonnier(fx[a] - fx[b], fy[a] - fy[b], mode)
        if mask is not None:
            penalty = penalty * mask[a] * mask[b]
        total = total + penalty.sum()
    return total / len(slices) / fx.shape[1]


class EventWarping:
    """Accumulates passes (events and predicted flows) and computes the seed's training loss.

    Args:
        resolution: ``(H, W)``.
        flow_scaling: pixels per unit of flow and pass (seed: ``max(resolution)``).
        weight: ``flow_regul_weight`` of the smoothness term.
        mask_smoothness: mask the smoothness by the event pixels (seed: ``mask_output``).
        smoothness: ``"code"`` or ``"paper"`` (see module docstring).
    """

    def __init__(
        self, resolution: tuple[int, int], flow_scaling: float | None = None, weight: float = 0.001,
        mask_smoothness: bool = True, smoothness: str = "code",
    ) -> None:
        if smoothness not in SMOOTHNESS:
            raise ValueError(f"smoothness must be one of {SMOOTHNESS}, got {smoothness!r}")
        self.resolution = (int(resolution[0]), int(resolution[1]))
        self.flow_scaling = float(flow_scaling if flow_scaling else max(self.resolution))
        self.weight, self.mask_smoothness, self.smoothness = float(weight), bool(mask_smoothness), smoothness
        self.reset()

    def reset(self) -> None:
        """Forget the accumulated passes (after each update)."""
        self.passes = 0
        self._events: list[torch.Tensor] = []
        self._pol: list[torch.Tensor] = []
        self._masks: list[torch.Tensor] = []
        self._flows: list[list[torch.Tensor]] = []

    @property
    def num_events(self) -> int:
        """Event slots accumulated (padding included), per sample."""
        return sum(e.shape[1] for e in self._events)

    def add_pass(
        self, flows: list[torch.Tensor], events: torch.Tensor, pol_mask: torch.Tensor, event_mask: torch.Tensor
    ) -> None:
        """Associate one pass's events with its flow predictions.

        Args:
            flows: flow outputs ``[B, 2, H, W]`` (x, y) of the pass.
            events: ``[B, N, 4]`` (ts in [0, 1], y, x, p).
            pol_mask: ``[B, N, 2]``.
            event_mask: ``[B, 1, H, W]``.
        """
        shifted = events.clone()
        shifted[:, :, 0] += self.passes
        self._events.append(shifted)
        self._pol.append(pol_mask)
        self._masks.append(event_mask)
        self._flows.append(list(flows))
        self.passes += 1

    def __call__(self) -> torch.Tensor:
        """The loss of the accumulated passes (a scalar with gradient)."""
        if not self.passes:
            raise RuntimeError("no passes accumulated")
        events, pol = torch.cat(self._events, dim=1), torch.cat(self._pol, dim=1)
        pol4 = pol.repeat(1, 4, 1)
        stamps = events[:, :, 0].repeat(1, 4)
        mask = torch.cat(self._masks, dim=1) if self.mask_smoothness else None
        pixels = self.resolution[0] * self.resolution[1]
        width = self.resolution[1]
        loss = events.new_zeros(())
        outputs = len(self._flows[0])
        for i in range(outputs):
            ev_flow = torch.cat([_gather_flow(f[i], e, width) for f, e in zip(self._flows, self._events,
                                                                               strict=True)], dim=1)
            fw_idx, fw_w = warp_and_splat(events, ev_flow, self.passes, self.resolution, self.flow_scaling)
            bw_idx, bw_w = warp_and_splat(events, ev_flow, 0.0, self.resolution, self.flow_scaling)
            fw = _timestamp_loss(fw_idx, fw_w, stamps, pol4, pixels=pixels, passes=self.passes)
            bw = _timestamp_loss(bw_idx, bw_w, self.passes - stamps, pol4, pixels=pixels, passes=self.passes)
            fx = torch.cat([f[i][:, 0:1] for f in self._flows], dim=1)
            fy = torch.cat([f[i][:, 1:2] for f in self._flows], dim=1)
            loss = loss + fw + bw + self.weight * _smoothness(fx, fy, mask, self.smoothness)
        return loss / outputs


@dataclass(frozen=True)
class FlowErrors:
    """Per-sample flow errors of one pass.

    Attributes:
        aee: average end-point error, pixels (``[B]``; 0 where ``valid`` is 0).
        outliers: fraction of valid pixels with error > 3 px and > 5 % of the magnitude (``[B]``).
        valid: valid pixels (events and non-zero ground truth) per sample (``[B]``).
    """

    aee: torch.Tensor
    outliers: torch.Tensor
    valid: torch.Tensor


def average_endpoint_error(
    flow: torch.Tensor, gtflow: torch.Tensor, event_mask: torch.Tensor, dt_input: torch.Tensor,
    dt_gt: torch.Tensor, *, flow_scaling: float,
) -> FlowErrors:
    """The seed's AEE of one pass.

    Args:
        flow: predicted flow ``[B, 2, H, W]`` in network units (per pass, ``/ flow_scaling`` px).
        gtflow: ground truth ``[B, 2, H, W]``, pixels over ``dt_gt``.
        event_mask: ``[B, 1, H, W]``.
        dt_input: time spanned by the pass, seconds (``[B]``).
        dt_gt: ground-truth interval, seconds (``[B]``).
        flow_scaling: pixels per unit of flow.
    """
    ratio = torch.where(dt_input > 0, dt_gt / dt_input.clamp_min(_EPS), torch.zeros_like(dt_gt))
    pred = flow * flow_scaling * ratio.to(flow.dtype).view(-1, 1, 1, 1)
    error = (pred - gtflow).pow(2).sum(1).sqrt()
    magnitude = pred.pow(2).sum(1).sqrt()
    mask = event_mask[:, 0].bool() & ~((gtflow[:, 0] == 0) & (gtflow[:, 1] == 0)) & (dt_input > 0).view(-1, 1, 1)
    valid = mask.flatten(1).sum(1)
    error = error * mask
    aee = error.flatten(1).sum(1) / (valid + _EPS)
    outliers = ((error > 3.0) & (error > 0.05 * magnitude) & mask).flatten(1).sum(1) / (valid + _EPS)
    return FlowErrors(aee, outliers, valid)

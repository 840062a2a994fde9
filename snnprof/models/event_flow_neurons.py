r"""Spiking neurons of the event_flow optical-flow networks (Hagenaars et al., NeurIPS 2021, and its fork).

One call is one time step (one forward pass over an event window). Every neuron takes the total
input current ``I`` of the step (``[B, C, H, W]``), its previous state stacked along a new leading
axis (``state[0] = v`` membrane, ``state[1] = z`` previous spikes, ``state[2]`` a trace or adaptive
threshold where the model has one) and returns ``(z_out, new_state)``. All leaks and thresholds
are per channel (shape ``[C, 1, 1]``) and learnable unless stated.

Models (``docs/seed_models.md`` section 4):

* :class:`LIF` (``tudelft/event_flow`` ``ConvLIF``, the NeurIPS paper's neuron):
  :math:`\lambda = \sigma(\ell)`, :math:`v' = \lambda v (1 - z) + (1 - \lambda) I` (hard reset, ``z``
  detached) or :math:`v' = \lambda v + (1 - \lambda) I - z\theta` (soft), :math:`z' = H(v' - \theta)`,
  :math:`\theta \ge 0.01`; :math:`\ell \sim N(-4, 0.1)`, :math:`\theta \sim N(0.8, 0.1)`.
* :class:`LeakyLIF` (the seed fork's snnTorch ``snn.Leaky``, also what its ONNX ``LIF`` op computes):
  :math:`m = \mathrm{clip}(\beta, 0, 1) v + I`, :math:`z' = H(m - \theta)`, :math:`v' = m (1 - z')`
  (reset to zero) or :math:`m - z'\theta`; :math:`\beta \sim U(0, 1)`, :math:`\theta \sim U(0, 0.8)`.
  Gradients flow through the membrane across passes (BPTT until ``detach_states()``).
* :class:`ForkLeakyLIF` (the fork as it trains): the same update (plus snnTorch's carried reset term),
  the membrane detached after every pass and kept across the network's ``reset_states()``.
* :class:`PLIF`: LIF with a presynaptic trace :math:`p' = \lambda_p p + (1 - \lambda_p) P` (``P`` the
  average-pooled mean absolute input) subtracted from the current: :math:`I - \sigma(a) p'`.
* :class:`ALIF`: adaptive threshold :math:`t' = \lambda_t t + (1 - \lambda_t) z`,
  :math:`\theta = \theta_0 + \theta_1 t'`, soft reset by the previous threshold.
* :class:`XLIF`: ALIF whose threshold adapts to the presynaptic trace instead of its own spikes.

``H`` is the Heaviside step (``x > 0``); while autograd records, its gradient is the arctan
surrogate ``1 / (1 + w x^2)`` (``w = 10`` in tudelft, ``w = pi^2`` for snnTorch's ``atan(alpha=2)``).

Counting: importing this module registers one rule for :class:`EventFlowNeuron` (and so every
subclass): spikes = nonzero outputs, one update per output element, ``flops_per_update`` elementwise
ops per update (a per-class estimate stated on each class).
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import torch
from torch import nn

from snnprof.counting import Cost, NeuronActivity, register_rule

__all__ = [
    "ALIF",
    "LIF",
    "NEURON_TYPES",
    "PLIF",
    "XLIF",
    "ArctanSpike",
    "EventFlowNeuron",
    "ForkLeakyLIF",
    "LeakyLIF",
    "spike_fn",
]

logger = logging.getLogger(__name__)


class ArctanSpike(torch.autograd.Function):
    """Heaviside step ``x > 0`` whose backward pass is the arctan surrogate ``1 / (1 + width * x^2)``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, width: float) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(x)
        ctx.width = float(width)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        (x,) = ctx.saved_tensors
        return grad_output / (1.0 + ctx.width * x * x), None


def spike_fn(x: torch.Tensor, width: float) -> torch.Tensor:
    """Spikes ``H(x)`` (1.0 where ``x > 0``), with the arctan surrogate gradient while autograd records.

    Without gradient tracking the step is plain tensor arithmetic (``Greater`` + ``Cast`` in ONNX).

    Args:
        x: membrane potential minus threshold.
        width: surrogate width ``w`` (dimensionless).
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return ArctanSpike.apply(x, width)
    return (x > 0).to(x.dtype)


def _per_channel(module: nn.Module, name: str, values: torch.Tensor, learn: bool) -> None:
    """Register ``values`` (``[C, 1, 1]``) as a parameter (``learn``) or a buffer called ``name``."""
    if learn:
        module.register_parameter(name, nn.Parameter(values))
    else:
        module.register_buffer(name, values)


def _normal(channels: int, mean_std: tuple[float, float]) -> torch.Tensor:
    """``N(mean, std)`` per channel, shape ``[C, 1, 1]`` (global RNG, like the seed)."""
    mean, std = float(mean_std[0]), float(mean_std[1])
    return torch.randn(channels, 1, 1) * std + mean


def _uniform(channels: int, low_high: tuple[float, float]) -> torch.Tensor:
    """``U(low, high)`` per channel, shape ``[C, 1, 1]``."""
    return torch.empty(channels, 1, 1).uniform_(float(low_high[0]), float(low_high[1]))


class EventFlowNeuron(nn.Module):
    """Base class of the event_flow neurons (one time step per call, explicit stacked state).

    Attributes:
        channels: neurons per pixel (C).
        flops_per_update: elementwise ops of one neuron update (estimate used by the counting rule).
        state_size: tensors stacked in the state (``v``, ``z`` and possibly a trace/threshold).
        uses_trace: whether :meth:`forward` needs the pooled presynaptic input ``trace_input``.
        carries_membrane: the membrane survives the network's ``reset_states()`` (the fork's snnTorch).
    """

    flops_per_update: ClassVar[int] = 5
    state_size: ClassVar[int] = 2
    uses_trace: ClassVar[bool] = False
    carries_membrane: ClassVar[bool] = False

    def __init__(self, channels: int, act_width: float = 10.0) -> None:
        super().__init__()
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        self.channels = int(channels)
        self.act_width = float(act_width)

    def initial_state(self, current: torch.Tensor) -> torch.Tensor:
        """Zero state ``[state_size, *current.shape]`` (what the seed builds when ``prev_state`` is None)."""
        return current.new_zeros((self.state_size, *current.shape))

    def forward(
        self, current: torch.Tensor, state: torch.Tensor, trace_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step: ``(spikes, new_state)``; subclasses implement it."""
        raise NotImplementedError


class LIF(EventFlowNeuron):
    """tudelft ``ConvLIF`` dynamics: sigmoid leak, ``(1 - leak)`` input scaling, hard or soft reset.

    6 ops per update (leak, reset gate, input scaling, add, compare).

    Args:
        channels: neurons per pixel.
        leak: ``(mean, std)`` of the leak parameter ``l`` (leak = sigmoid(l)).
        thresh: ``(mean, std)`` of the threshold.
        learn_leak: leak is a parameter (else a buffer).
        learn_thresh: threshold is a parameter (else a buffer).
        hard_reset: ``v * leak * (1 - z)`` (else subtract ``z * thresh``).
        detach: detach the previous spikes in the reset.
        act_width: arctan surrogate width.
    """

    flops_per_update = 6

    def __init__(
        self,
        channels: int,
        *,
        leak: tuple[float, float] = (-4.0, 0.1),
        thresh: tuple[float, float] = (0.8, 0.1),
        learn_leak: bool = True,
        learn_thresh: bool = True,
        hard_reset: bool = True,
        detach: bool = True,
        act_width: float = 10.0,
    ) -> None:
        super().__init__(channels, act_width)
        _per_channel(self, "leak", _normal(channels, leak), learn_leak)
        _per_channel(self, "thresh", _normal(channels, thresh), learn_thresh)
        self.hard_reset = bool(hard_reset)
        self.detach = bool(detach)

    def extra_repr(self) -> str:  # noqa: D102
        return f"channels={self.channels}, hard_reset={self.hard_reset}, act_width={self.act_width}"

    def forward(
        self, current: torch.Tensor, state: torch.Tensor, trace_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step; ``state = [v, z]``. Returns ``(z', [v', z'])``."""
        del trace_input
        v, z = state[0], state[1]
        thresh = self.thresh.clamp_min(0.01)
        leak = torch.sigmoid(self.leak)
        if self.detach:
            z = z.detach()
        if self.hard_reset:
            v_out = v * leak * (1 - z) + (1 - leak) * current
        else:
            v_out = v * leak + (1 - leak) * current - z * thresh
        z_out = spike_fn(v_out - thresh, self.act_width)
        return z_out, torch.stack([v_out, z_out])


class LeakyLIF(EventFlowNeuron):
    """The seed fork's neuron (snnTorch ``Leaky``, ``reset_delay=False``), equal to its ONNX ``LIF`` op.

    ``m = clip(beta, 0, 1) * v + I``; ``z = H(m - thresh)``; ``v' = m * (1 - z)`` (reset to zero) or
    ``m - z * thresh`` (subtract). 5 ops per update (leak, add, compare, reset). The state keeps the
    spikes too (``[v, z]``) because recurrent layers convolve the previous spikes.

    Args:
        channels: neurons per pixel.
        leak: ``(low, high)`` of the uniform initial ``beta``.
        thresh: ``(low, high)`` of the uniform initial threshold (clamped at 0.01 in the forward).
        learn_leak: ``beta`` is a parameter (else a buffer).
        learn_thresh: threshold is a parameter (else a buffer).
        hard_reset: reset to zero (else subtract the threshold).
        act_width: arctan surrogate width (``pi^2`` = snnTorch ``atan(alpha=2)``).
    """

    flops_per_update = 5

    def __init__(
        self,
        channels: int,
        *,
        leak: tuple[float, float] = (0.0, 1.0),
        thresh: tuple[float, float] = (0.0, 0.8),
        learn_leak: bool = True,
        learn_thresh: bool = True,
        hard_reset: bool = True,
        act_width: float = math.pi**2,
    ) -> None:
        super().__init__(channels, act_width)
        _per_channel(self, "beta", _uniform(channels, leak), learn_leak)
        _per_channel(self, "threshold", _uniform(channels, thresh), learn_thresh)
        self.hard_reset = bool(hard_reset)

    def extra_repr(self) -> str:  # noqa: D102
        return f"channels={self.channels}, hard_reset={self.hard_reset}"

    def forward(
        self, current: torch.Tensor, state: torch.Tensor, trace_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step; ``state = [v, z]`` (``z`` unused by the neuron itself). Returns ``(z', [v', z'])``."""
        del trace_input
        thresh = self.threshold.clamp_min(0.01)
        mem = self.beta.clamp(0, 1) * state[0] + current
        z_out = spike_fn(mem - thresh, self.act_width)
        v_out = mem * (1 - z_out) if self.hard_reset else mem - z_out * thresh
        return z_out, torch.stack([v_out, z_out])


class ForkLeakyLIF(LeakyLIF):
    """The seed fork's neuron as it trains: snnTorch ``Leaky`` (0.9.4) inside ``SNNtorch_ConvLIF``.

    Per pass, with ``r = H(v - thresh)`` (snnTorch's detached ``mem_reset`` of the carried membrane)::

        m  = clip(beta, 0, 1) * (1 - r) * v + I          (reset to zero; subtract: beta v + I - r thresh)
        z  = H(m - thresh)
        v' = m - (z - r) * m                             (subtract: m - (z - r) * thresh)

    and the membrane leaves the pass **detached** (the fork calls ``lif.detach_hidden()``, an in-place
    ``mem.detach_()``, after every forward), so gradients cross passes only through the previous spikes
    of the recurrent convs, until the loop's ``detach_states()``. ``carries_membrane``: the network's
    ``reset_states()`` keeps ``v`` and zeroes the spikes, as the fork's ``reset_states()`` (``prev_state =
    None``) leaves snnTorch's internal membrane in place; a pass with another input shape starts from zero
    (snnTorch re-initialises a membrane of the wrong shape). With ``v <= thresh`` (always, from rest)
    ``r = 0`` and the update equals :class:`LeakyLIF`'s. 9 ops per update.
    """

    flops_per_update = 9
    carries_membrane: ClassVar[bool] = True

    def forward(
        self, current: torch.Tensor, state: torch.Tensor, trace_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step; ``state = [v, z]``. Returns ``(z', [v'.detach(), z'])``."""
        del trace_input
        thresh = self.threshold.clamp_min(0.01)
        v = state[0]
        reset = (v - thresh > 0).to(v.dtype).detach()
        beta = self.beta.clamp(0, 1)
        mem = beta * (1 - reset) * v + current if self.hard_reset else beta * v + current - reset * thresh
        z_out = spike_fn(mem - thresh, self.act_width)
        v_out = mem - (z_out - reset) * (mem if self.hard_reset else thresh)
        return z_out, torch.stack([v_out.detach(), z_out])


class PLIF(EventFlowNeuron):
    """tudelft ``ConvPLIF``: LIF with a presynaptic-trace current subtracted (state ``[v, z, pt]``).

    11 ops per update (trace decay/add 3, trace current 2, LIF 6).

    Args:
        channels: neurons per pixel.
        leak_v: ``(mean, std)`` of the membrane leak parameter.
        leak_pt: ``(mean, std)`` of the trace leak parameter.
        add_pt: ``(mean, std)`` of the trace gain parameter (gain = sigmoid).
        thresh: ``(mean, std)`` of the threshold.
        learn_leak: leaks and gain are parameters (else buffers).
        learn_thresh: threshold is a parameter.
        hard_reset: hard (else soft) reset.
        detach: detach the previous spikes in the reset.
        act_width: arctan surrogate width.
    """

    flops_per_update = 11
    state_size = 3
    uses_trace = True

    def __init__(
        self,
        channels: int,
        *,
        leak_v: tuple[float, float] = (-4.0, 0.1),
        leak_pt: tuple[float, float] = (-4.0, 0.1),
        add_pt: tuple[float, float] = (-2.0, 0.1),
        thresh: tuple[float, float] = (0.8, 0.0),
        learn_leak: bool = True,
        learn_thresh: bool = True,
        hard_reset: bool = True,
        detach: bool = True,
        act_width: float = 10.0,
    ) -> None:
        super().__init__(channels, act_width)
        _per_channel(self, "leak_v", _normal(channels, leak_v), learn_leak)
        _per_channel(self, "leak_pt", _normal(channels, leak_pt), learn_leak)
        _per_channel(self, "add_pt", _normal(channels, add_pt), learn_leak)
        _per_channel(self, "thresh", _normal(channels, thresh), learn_thresh)
        self.hard_reset = bool(hard_reset)
        self.detach = bool(detach)

    def forward(
        self, current: torch.Tensor, state: torch.Tensor, trace_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step; ``trace_input`` = pooled mean |input| ``[B, 1, H, W]``. Returns ``(z', [v', z', pt'])``."""
        if trace_input is None:
            raise ValueError("PLIF needs the pooled presynaptic input (trace_input)")
        v, z, pt = state[0], state[1], state[2]
        thresh = self.thresh.clamp_min(0.01)
        leak_v, leak_pt = torch.sigmoid(self.leak_v), torch.sigmoid(self.leak_pt)
        pt_out = pt * leak_pt + (1 - leak_pt) * trace_input
        if self.detach:
            z = z.detach()
        drive = current - torch.sigmoid(self.add_pt) * pt_out
        if self.hard_reset:
            v_out = v * leak_v * (1 - z) + (1 - leak_v) * drive
        else:
            v_out = v * leak_v + (1 - leak_v) * drive - z * thresh
        z_out = spike_fn(v_out - thresh, self.act_width)
        return z_out, torch.stack([v_out, z_out, pt_out])


class _AdaptiveBase(EventFlowNeuron):
    """Shared parameters of ALIF/XLIF: membrane leak, a second leak, base and adaptive threshold."""

    state_size = 3
    flops_per_update = 13

    def __init__(
        self,
        channels: int,
        *,
        leaks: dict[str, tuple[float, float]],
        t0: tuple[float, float],
        t1: tuple[float, float],
        learn_leak: bool,
        learn_thresh: bool,
        hard_reset: bool,
        detach: bool,
        act_width: float,
    ) -> None:
        super().__init__(channels, act_width)
        for name, mean_std in leaks.items():
            _per_channel(self, name, _normal(channels, mean_std), learn_leak)
        _per_channel(self, "t0", _normal(channels, t0), learn_thresh)
        _per_channel(self, "t1", _normal(channels, t1), learn_thresh)
        self.hard_reset = bool(hard_reset)
        self.detach = bool(detach)

    def _membrane(
        self, v: torch.Tensor, z: torch.Tensor, current: torch.Tensor, prev_thresh: torch.Tensor
    ) -> torch.Tensor:
        """Membrane update; the soft reset subtracts the previous step's threshold."""
        leak_v = torch.sigmoid(self.leak_v)
        if self.detach:
            z = z.detach()
        if self.hard_reset:
            return v * leak_v * (1 - z) + (1 - leak_v) * current
        return v * leak_v + (1 - leak_v) * current - z * prev_thresh


class ALIF(_AdaptiveBase):
    """tudelft ``ConvALIF``: adaptive threshold driven by the neuron's own spikes (state ``[v, z, t]``).

    13 ops per update (threshold trace 3, threshold 2, membrane with soft reset 7, compare 1).
    Defaults follow the seed: ``t0 = 0.01``, ``t1 = 1.8`` (fixed buffers), soft reset.

    Args:
        channels: neurons per pixel.
        leak_v: ``(mean, std)`` of the membrane leak parameter.
        leak_t: ``(mean, std)`` of the threshold-trace leak parameter.
        t0: ``(mean, std)`` of the base threshold.
        t1: ``(mean, std)`` of the adaptation gain.
        learn_leak: leaks are parameters.
        learn_thresh: ``t0``/``t1`` are parameters.
        hard_reset: hard (else soft) reset.
        detach: detach the previous spikes in the reset.
        act_width: arctan surrogate width.
    """

    def __init__(
        self,
        channels: int,
        *,
        leak_v: tuple[float, float] = (-4.0, 0.1),
        leak_t: tuple[float, float] = (-4.0, 0.1),
        t0: tuple[float, float] = (0.01, 0.0),
        t1: tuple[float, float] = (1.8, 0.0),
        learn_leak: bool = True,
        learn_thresh: bool = False,
        hard_reset: bool = False,
        detach: bool = True,
        act_width: float = 10.0,
    ) -> None:
        super().__init__(channels, leaks={"leak_v": leak_v, "leak_t": leak_t}, t0=t0, t1=t1, learn_leak=learn_leak,
                         learn_thresh=learn_thresh, hard_reset=hard_reset, detach=detach, act_width=act_width)

    def forward(
        self, current: torch.Tensor, state: torch.Tensor, trace_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step; ``state = [v, z, t]``. Returns ``(z', [v', z', t'])``."""
        del trace_input
        v, z, t = state[0], state[1], state[2]
        t0, t1 = self.t0.clamp_min(0.01), self.t1.clamp_min(0)
        leak_t = torch.sigmoid(self.leak_t)
        t_out = t * leak_t + (1 - leak_t) * z
        thresh = t0 + t1 * t_out
        v_out = self._membrane(v, z, current, t0 + t1 * t)
        z_out = spike_fn(v_out - thresh, self.act_width)
        return z_out, torch.stack([v_out, z_out, t_out])


class XLIF(_AdaptiveBase):
    """tudelft ``ConvXLIF``: threshold adapted by the presynaptic trace (state ``[v, z, pt]``).

    13 ops per update (trace 3, threshold 2, membrane with soft reset 7, compare 1).

    Args:
        channels: neurons per pixel.
        leak_v: ``(mean, std)`` of the membrane leak parameter.
        leak_pt: ``(mean, std)`` of the trace leak parameter.
        t0: ``(mean, std)`` of the base threshold.
        t1: ``(mean, std)`` of the adaptation gain.
        learn_leak: leaks are parameters.
        learn_thresh: ``t0``/``t1`` are parameters.
        hard_reset: hard (else soft) reset.
        detach: detach the previous spikes in the reset.
        act_width: arctan surrogate width.
    """

    uses_trace = True

    def __init__(
        self,
        channels: int,
        *,
        leak_v: tuple[float, float] = (-4.0, 0.1),
        leak_pt: tuple[float, float] = (-4.0, 0.1),
        t0: tuple[float, float] = (0.01, 0.0),
        t1: tuple[float, float] = (1.8, 0.0),
        learn_leak: bool = True,
        learn_thresh: bool = False,
        hard_reset: bool = False,
        detach: bool = True,
        act_width: float = 10.0,
    ) -> None:
        super().__init__(channels, leaks={"leak_v": leak_v, "leak_pt": leak_pt}, t0=t0, t1=t1,
                         learn_leak=learn_leak, learn_thresh=learn_thresh, hard_reset=hard_reset, detach=detach,
                         act_width=act_width)

    def forward(
        self, current: torch.Tensor, state: torch.Tensor, trace_input: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step; ``trace_input`` = pooled mean |input|. Returns ``(z', [v', z', pt'])``."""
        if trace_input is None:
            raise ValueError("XLIF needs the pooled presynaptic input (trace_input)")
        v, z, pt = state[0], state[1], state[2]
        t0, t1 = self.t0.clamp_min(0.01), self.t1.clamp_min(0)
        leak_pt = torch.sigmoid(self.leak_pt)
        pt_out = pt * leak_pt + (1 - leak_pt) * trace_input
        thresh = t0 + t1 * pt_out
        v_out = self._membrane(v, z, current, t0 + t1 * pt)
        z_out = spike_fn(v_out - thresh, self.act_width)
        return z_out, torch.stack([v_out, z_out, pt_out])


#: Neuron classes by the names the model factories accept.
NEURON_TYPES: dict[str, type[EventFlowNeuron]] = {
    "lif": LIF,
    "leaky": LeakyLIF,
    "leaky_fork": ForkLeakyLIF,
    "plif": PLIF,
    "alif": ALIF,
    "xlif": XLIF,
}


def event_flow_neuron_rule(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """event_flow neurons (single step): spikes = nonzero outputs, ``flops_per_update`` ops per update."""
    spikes = output[0] if isinstance(output, tuple) else output
    per = int(getattr(module, "flops_per_update", EventFlowNeuron.flops_per_update))
    activity = NeuronActivity(spikes=spikes, time_dim=None, flops_per_update=per)
    return Cost(flops=per * spikes.numel(), neuron=activity)


def _register_rule() -> None:
    """Register the counting rule once (a re-import of this module must not fail)."""
    try:
        register_rule(EventFlowNeuron)(event_flow_neuron_rule)
    except ValueError:
        logger.debug("event_flow neuron rule already registered")


_register_rule()

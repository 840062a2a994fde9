"""OTTT online spiking VGG-11 (WS) and its feedback variant (Xiao et al., NeurIPS 2022).

Re-implementation of ``online_spiking_vgg11_ws`` and ``online_spiking_vgg11f_ws`` from
``pkuxmq/OTTT-SNN`` (``docs/seed_models.md`` section 5.1). The networks are *single-step*: the
caller runs one forward per time step, passing ``init=True`` at ``t = 0`` to zero every neuron's
state, and feeds the same static image at every step (direct encoding) or one event frame per step.

Per conv block: ``ScaledWSConv2d(k3, p1)`` -> ``OnlineLIFNode`` -> ``Scale(2.74)``; ``'M'`` is
``AvgPool2d(2)``; the head is ``AdaptiveAvgPool2d(1)`` -> ``Flatten`` -> ``Linear(512, classes)``
with no neuron, so each step yields analog logits. At 32x32 one step costs 605.7 M conv MACs per
sample and has 409,600 spiking neurons. VGG-11F adds ``fb_conv(up(features of the previous
step))`` (512->64, k3, zero-initialised, nearest upsampling x8) to the first conv's output from
the second step on: +302.0 M MACs per step at 32x32.

Training uses OTTT's gradient trick (``grad_with_rate=True``, active only in ``train()`` mode):
every neuron also emits its presynaptic trace ``rate``; each synaptic layer fed by spikes computes
its output from the spikes but its weight gradient from the trace (:func:`spike_trace_op`, the
seed's ``WrapedSNNOp`` + ``Replace``). In ``eval()`` mode (what ``snnprof count`` runs) the
networks are plain spiking nets. Not implemented: ``fc_hw > 1`` heads, the non-light classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from spikingjelly.activation_based import base, neuron, surrogate
from torch import nn

from snnprof.models.common import bernoulli_frames, gaussian_images, model_device
from snnprof.models.registry import register_model

__all__ = [
    "CFG_A", "OTTT_PAPER", "SPIKE_SCALE", "OnlineLIFNode", "OnlineSequential", "OnlineSpikingVGG",
    "OnlineSpikingVGGF", "Replace", "Scale", "ScaledWSConv2d", "from_batch", "init_ottt_weights",
    "make_inputs", "ottt_vgg11_ws", "ottt_vgg11f_ws", "run", "scaled_channels", "spike_trace_op",
]  # fmt: skip

#: VGG-11 layout "A": output channels of each 3x3 conv, ``"M"`` = 2x2 average pooling.
CFG_A: tuple[int | str, ...] = (64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)

#: OTTT's constant post-spike scaling (keeps activations near unit variance with WS convs).
SPIKE_SCALE: float = 2.74

#: Citation of the seed project (shared by the OTTT zoo entries).
OTTT_PAPER = (
    "M. Xiao, Q. Meng, Z. Zhang, D. He, Z. Lin. Online Training Through Time for Spiking Neural "
    "Networks. NeurIPS 2022. arXiv:2210.04195; code: github.com/pkuxmq/OTTT-SNN"
)


class OnlineLIFNode(neuron.LIFNode):
    """OTTT's online LIF neuron: soft reset, detached membrane history, presynaptic rate trace.

    One call is one time step (``step_mode='s'`` only). With decay ``d = 1 - 1/tau``::

        v    = v.detach() * d + x          # decay_input=False, v_reset=None
        s    = H(v - v_threshold)          # Heaviside forward, sigmoid(alpha=4) surrogate backward
        v    = v - s * v_threshold         # soft reset (reset path detached if detach_reset)
        s    = s * mask                    # neuron dropout (training only; one mask per sample and run)
        rate = rate * d + s                # presynaptic trace, no gradient (if track_rate)

    A subclass of SpikingJelly's ``LIFNode`` (hence ``BaseNode``/``MemoryModule``), so generic
    SpikingJelly neuron rules match it; the state lives in the ``v`` and ``rate`` memories and is
    cleared by ``reset()`` (``functional.reset_net``) or by ``forward(x, init=True)``.

    Args:
        tau: membrane time constant, in time steps (> 1).
        v_threshold: firing threshold, in membrane-potential units.
        surrogate_function: spike function; default ``surrogate.Sigmoid(alpha=4.0)``.
        detach_reset: detach the reset term from the autograd graph.
        track_rate: maintain the presynaptic rate trace ``rate``.
        neuron_dropout: probability of silencing a neuron for a whole run (training only);
            kept spikes are scaled by ``1 / (1 - p)``.
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        *,
        surrogate_function: surrogate.SurrogateFunctionBase | None = None,
        detach_reset: bool = True,
        track_rate: bool = True,
        neuron_dropout: float = 0.0,
    ) -> None:
        super().__init__(
            tau=float(tau),
            decay_input=False,
            v_threshold=float(v_threshold),
            v_reset=None,
            surrogate_function=surrogate_function if surrogate_function is not None else surrogate.Sigmoid(alpha=4.0),
            detach_reset=bool(detach_reset),
            step_mode="s",
        )
        if not 0.0 <= float(neuron_dropout) < 1.0:
            raise ValueError(f"neuron_dropout must lie in [0, 1), got {neuron_dropout!r}")
        self.track_rate = bool(track_rate)
        self.neuron_dropout = float(neuron_dropout)
        self.dropout_mask: torch.Tensor | None = None
        self.register_memory("rate", 0.0)

    def supported_step_mode(self) -> tuple[str, ...]:
        """Only single-step mode: OTTT is trained and run online, one call per time step."""
        return ("s",)

    def extra_repr(self) -> str:  # noqa: D102
        return super().extra_repr() + f", track_rate={self.track_rate}, neuron_dropout={self.neuron_dropout}"

    def reset(self) -> None:
        """Zero ``v`` and ``rate`` and drop the neuron-dropout mask."""
        super().reset()
        self.dropout_mask = None

    def materialize_states(
        self,
        inputs: tuple[torch.Tensor, ...],
        states: tuple[object, ...],
        step_mode: str,
    ) -> tuple[object, ...]:
        """Turn the scalar reset values of ``v`` and ``rate`` into zero tensors shaped like the input."""
        v, rate = super().materialize_states(inputs, states, step_mode)
        assert isinstance(v, torch.Tensor)
        if not isinstance(rate, torch.Tensor) or rate.shape != v.shape:
            rate = torch.zeros_like(v)
        elif rate.dtype != v.dtype or rate.device != v.device:
            rate = rate.to(dtype=v.dtype, device=v.device)
        return v, rate

    def single_step_functional_forward(
        self,
        inputs: tuple[torch.Tensor, ...],
        states: tuple[object, ...],
        **kwargs: object,
    ) -> tuple[tuple[torch.Tensor, ...], tuple[object, ...]]:
        """One time step with explicit state ``(v, rate)``; returns ``((spike,), (v, rate))``."""
        del kwargs
        x = inputs[0]
        v, rate = states
        assert isinstance(v, torch.Tensor) and isinstance(rate, torch.Tensor)
        decay = 1.0 - 1.0 / self.tau
        v = v.detach() * decay + x
        spike = self.surrogate_function(v - self.v_threshold)
        spike_reset = spike.detach() if self.detach_reset else spike
        v = v - spike_reset * self.v_threshold
        if self.dropout_mask is not None and self.training:
            spike = spike * self.dropout_mask
        if self.track_rate:
            with torch.no_grad():
                rate = rate * decay + spike.detach()
        return (spike,), (v, rate)

    def forward(self, x: torch.Tensor, init: bool = False, with_rate: bool = False) -> torch.Tensor:
        """Advance one time step.

        Args:
            x: input current of this step, any shape ``[B, ...]``.
            init: zero the state (``v`` and ``rate``) before the step; pass ``True`` at ``t = 0``.
            with_rate: return ``cat(spike, rate)`` along dim 0 (``[2B, ...]``), the pair the
                gradient trick consumes (:func:`spike_trace_op`); needs ``track_rate``.

        Returns:
            Spikes (0/1, same shape and dtype as ``x``), or spikes and trace stacked on dim 0.
        """
        if init:
            self.reset()
            if self.training and self.neuron_dropout > 0.0:
                keep = 1.0 - self.neuron_dropout
                self.dropout_mask = torch.empty_like(x).bernoulli_(keep) / keep
        spike = super().forward(x)
        if not with_rate:
            return spike
        if not self.track_rate:
            raise RuntimeError("with_rate=True needs track_rate=True")
        return torch.cat((spike, self.rate), dim=0)


class ScaledWSConv2d(nn.Conv2d):
    """Conv2d with scaled weight standardisation (NF-Net style), as used by OTTT.

    The weight applied in ``forward`` is ``(W - mean) / sqrt(var * fan_in + eps) * gain``, with
    mean and (unbiased) variance over each output channel's ``fan_in = C_in/groups * kh * kw``
    entries and a learnable per-output-channel ``gain`` (initialised to 1). Shapes, MACs and
    parameters (``weight``, ``bias``, ``gain``) are those of a plain ``nn.Conv2d`` plus ``gain``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: kernel size, pixels.
        stride: stride, pixels.
        padding: zero padding, pixels.
        dilation: dilation, pixels.
        groups: channel groups.
        bias: add a learnable bias.
        gain: learn a per-output-channel gain (else none).
        eps: stabiliser added to ``var * fan_in``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 1,
        *,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        gain: bool = True,
        eps: float = 1e-4,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=bias
        )
        if gain:
            self.gain: nn.Parameter | None = nn.Parameter(torch.ones(out_channels, 1, 1, 1))
        else:
            self.register_parameter("gain", None)
        self.eps = float(eps)

    def standardized_weight(self) -> torch.Tensor:
        """The standardised (and gained) weight ``[C_out, C_in/groups, kh, kw]`` used in forward."""
        fan_in = self.weight[0].numel()
        mean = self.weight.mean(dim=(1, 2, 3), keepdim=True)
        var = self.weight.var(dim=(1, 2, 3), keepdim=True)
        weight = (self.weight - mean) / torch.sqrt(var * fan_in + self.eps)
        if self.gain is not None:
            weight = weight * self.gain
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x`` ``[B, C_in, H, W]`` with the standardised weight."""
        return torch.nn.functional.conv2d(
            x, self.standardized_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups
        )


class Scale(nn.Module):
    """Multiply by a constant: ``y = x * scale`` (OTTT scales spikes by 2.74 after each neuron).

    Args:
        scale: the constant factor (dimensionless).
    """

    def __init__(self, scale: float = SPIKE_SCALE) -> None:
        super().__init__()
        self.scale = float(scale)

    def extra_repr(self) -> str:  # noqa: D102
        return f"scale={self.scale}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x * scale``."""
        return x * self.scale


class Replace(torch.autograd.Function):
    """``Replace.apply(a, b)`` returns ``b``'s values; the backward passes the gradient to both."""

    @staticmethod
    def forward(ctx: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # noqa: D102
        del ctx, a
        return b.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # noqa: D102
        del ctx
        return grad, grad


def spike_trace_op(op: nn.Module, pair: torch.Tensor) -> torch.Tensor:
    """OTTT's gradient trick for one synaptic layer fed with ``cat(spike, rate)`` (``[2B, ...]``).

    The output equals ``op(spike)``; the gradient w.r.t. the spikes is the usual one, but the
    weight gradient is computed with the presynaptic trace ``rate`` as input (``dL/dW = g . rate``),
    i.e. the seed's ``WrapedSNNOp`` with ``Replace``. Costs two forwards of ``op``.

    Args:
        op: a conv/linear module.
        pair: spikes (first half of dim 0) and their traces (second half).

    Returns:
        ``op(spike)`` with trace-based weight gradients, ``[B, ...]``.
    """
    batch = pair.shape[0] // 2
    spike, rate = pair[:batch], pair[batch:]
    with torch.no_grad():
        out = op(spike)
    out_for_grad = op(Replace.apply(spike, rate))
    return Replace.apply(out_for_grad, out)


def _is_synapse(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d | nn.Linear)


class OnlineSequential(nn.Sequential):
    """``nn.Sequential`` passing ``init`` to every online neuron, block and nested container.

    With ``trace=True`` (training with the gradient trick) neurons emit ``cat(spike, rate)`` and
    the next synaptic layer consumes that pair through :func:`spike_trace_op`; modules in between
    (``Scale``, pools) act on both halves, as in the seed. Children with an ``online_block``
    attribute (residual blocks) are called as ``child(x, init=init, trace=trace)``.
    """

    def forward(self, x: torch.Tensor, init: bool = False, trace: bool = False) -> torch.Tensor:
        """Run the children in order; ``init=True`` zeroes the state of each ``OnlineLIFNode``."""
        return self.forward_paired(x, init=init, trace=trace, paired=False)[0]

    def forward_paired(
        self, x: torch.Tensor, *, init: bool, trace: bool, paired: bool
    ) -> tuple[torch.Tensor, bool]:
        """Like ``forward``; also says whether the output is a ``cat(spike, rate)`` pair."""
        for module in self:
            if isinstance(module, OnlineLIFNode):
                x, paired = module(x, init=init, with_rate=trace), trace
            elif isinstance(module, OnlineSequential):
                x, paired = module.forward_paired(x, init=init, trace=trace, paired=paired)
            elif getattr(module, "online_block", False):
                x, paired = module(x, init=init, trace=trace), False
            elif paired and _is_synapse(module):
                x, paired = spike_trace_op(module, x), False
            else:
                x = module(x)
        return x, paired


def scaled_channels(channels: int, width: float) -> int:
    """``round(channels * width)``, at least 1 (the channel-width multiplier of the OTTT models)."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return max(1, round(channels * width))


def init_ottt_weights(model: nn.Module, linear_std: float | None = 0.01) -> None:
    """The seed's initialisation: Kaiming-normal (fan_out, ReLU) convs with zero bias; Linear N(0, std), zero bias.

    Args:
        model: the network (modified in place).
        linear_std: std of Linear weights; ``None`` leaves Linear layers alone.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _conv_blocks(
    cfg: Sequence[int | str], in_channels: int, *, width: float, tau: float, scale: float, dropout: float
) -> tuple[list[nn.Module], int]:
    """``[WS conv, LIF, Scale]`` blocks and ``AvgPool2d(2)`` for ``'M'``; returns layers and out channels."""
    layers: list[nn.Module] = []
    channels = in_channels
    for item in cfg:
        if item == "M":
            layers.append(nn.AvgPool2d(2))
            continue
        if not isinstance(item, int) or item <= 0:
            raise ValueError(f"cfg entries must be positive ints or 'M', got {item!r}")
        out = scaled_channels(item, width)
        layers += [
            ScaledWSConv2d(channels, out, kernel_size=3, padding=1, bias=True),
            OnlineLIFNode(tau=tau, neuron_dropout=dropout),
            Scale(scale),
        ]
        channels = out
    return layers, channels


class OnlineSpikingVGG(nn.Module):
    """OTTT's online spiking VGG with weight-standardised convs (single-step network).

    Attributes:
        features: ``OnlineSequential`` of ``[ScaledWSConv2d, OnlineLIFNode, Scale]`` blocks and pools.
        avgpool: ``AdaptiveAvgPool2d(1)``.
        flatten: ``Flatten(1)``.
        classifier: ``Linear(last_channels, num_classes)`` (analog logits, no neuron).

    Args:
        cfg: conv output channels per layer, ``"M"`` for a 2x2 average pool.
        num_classes: classifier outputs.
        in_channels: image channels (3 for CIFAR, 2 for CIFAR10-DVS).
        tau: neuron time constant, in time steps.
        scale: post-spike scale factor.
        width: channel multiplier (1.0 = published; smaller for CPU-speed training).
        grad_with_rate: use OTTT's trace-based weight gradients in ``train()`` mode.
        neuron_dropout: per-run neuron dropout probability (training only; CIFAR10-DVS uses 0.1).
    """

    def __init__(
        self,
        cfg: Sequence[int | str] = CFG_A,
        num_classes: int = 10,
        in_channels: int = 3,
        tau: float = 2.0,
        scale: float = SPIKE_SCALE,
        *,
        width: float = 1.0,
        grad_with_rate: bool = True,
        neuron_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes <= 0 or in_channels <= 0:
            raise ValueError(f"num_classes and in_channels must be positive, got {num_classes}, {in_channels}")
        self.cfg = tuple(cfg)
        self.num_classes, self.in_channels = int(num_classes), int(in_channels)
        self.tau, self.width, self.grad_with_rate = float(tau), float(width), bool(grad_with_rate)
        layers, channels = self._layers(scale, float(neuron_dropout))
        self.features = OnlineSequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(channels, self.num_classes)
        init_ottt_weights(self)

    def _layers(self, scale: float, dropout: float) -> tuple[list[nn.Module], int]:
        return _conv_blocks(self.cfg, self.in_channels, width=self.width, tau=self.tau, scale=scale, dropout=dropout)

    @property
    def trace_mode(self) -> bool:
        """True while training with the gradient trick (``train()`` and ``grad_with_rate``)."""
        return self.training and self.grad_with_rate

    def _head(self, x: torch.Tensor, paired: bool) -> torch.Tensor:
        x = self.flatten(self.avgpool(x))
        return spike_trace_op(self.classifier, x) if paired else self.classifier(x)

    def forward(self, x: torch.Tensor, init: bool = False) -> torch.Tensor:
        """One time step.

        Args:
            x: image batch ``[B, in_channels, H, W]`` (H, W divisible by 8 for cfg A).
            init: zero every neuron's state first; pass ``True`` at ``t = 0``.

        Returns:
            Logits of this step, ``[B, num_classes]``.
        """
        x, paired = self.features.forward_paired(x, init=init, trace=self.trace_mode, paired=False)
        return self._head(x, paired)


class OnlineSpikingVGGF(OnlineSpikingVGG, base.MemoryModule):
    """OTTT's VGG-F: the online spiking VGG plus a top-down feedback connection.

    From the second step on, the first conv's output gets ``fb_conv(up(features_{t-1}))``: the
    last feature map of the previous step (scaled spikes, ``[B, C_last, H/8, W/8]``), upsampled
    by nearest neighbour x8 and convolved by a zero-initialised 3x3 ``nn.Conv2d(C_last, C_first)``.
    The previous features live in the ``fb_features`` memory (cleared by ``init=True`` or
    ``functional.reset_net``). Module names: ``conv1``, ``features`` (starting with the first
    neuron), ``up``, ``fb_conv``, ``avgpool``, ``flatten``, ``classifier``.

    Args: as :class:`OnlineSpikingVGG`.
    """

    def __init__(self, cfg: Sequence[int | str] = CFG_A, *args: Any, **kwargs: Any) -> None:
        super().__init__(cfg, *args, **kwargs)
        factor = 2 ** sum(1 for item in self.cfg if item in ("M", "S"))
        self.up = nn.Upsample(scale_factor=factor, mode="nearest")
        self.fb_conv = nn.Conv2d(self.classifier.in_features, self.conv1.out_channels, kernel_size=3, padding=1)
        nn.init.zeros_(self.fb_conv.weight)
        nn.init.zeros_(self.fb_conv.bias)
        self.register_memory("fb_features", None)

    def _layers(self, scale: float, dropout: float) -> tuple[list[nn.Module], int]:
        layers, channels = super()._layers(scale, dropout)
        if not isinstance(layers[0], ScaledWSConv2d):
            raise ValueError("VGG-F needs a conv as its first cfg entry")
        self.conv1 = layers[0]
        return layers[1:], channels

    def forward(self, x: torch.Tensor, init: bool = False) -> torch.Tensor:
        """One time step (see :meth:`OnlineSpikingVGG.forward`); ``init=True`` skips the feedback."""
        trace = self.trace_mode
        if init:
            self.reset()
        x = self.conv1(x)
        previous = self.fb_features
        if isinstance(previous, torch.Tensor):
            up = self.up(previous)
            x = x + (spike_trace_op(self.fb_conv, up) if trace and up.shape[0] == 2 * x.shape[0] else self.fb_conv(up))
        x, paired = self.features.forward_paired(x, init=init, trace=trace, paired=False)
        self.fb_features = x.detach().clone()
        return self._head(x, paired)


def make_inputs(
    model: nn.Module,
    batch_size: int,
    time_steps: int,
    seed: int,
    *,
    image_size: int = 32,
    frames: bool = False,
    p: float = 0.2,
) -> torch.Tensor:
    """Seeded stand-in inputs: Gaussian CIFAR-shaped images, or Bernoulli event frames.

    Direct encoding feeds the same image ``[B, C, S, S]`` at every step; ``frames=True`` gives
    one binary frame per step, ``[T, B, C, S, S]`` (the seed's CIFAR10-DVS stand-in, 48x48, C=2).

    Args:
        model: the network (its ``in_channels`` and device are used).
        batch_size: B, images.
        time_steps: T (used only for frames).
        seed: generator seed.
        image_size: S = H = W, pixels.
        frames: per-step event frames instead of a static image.
        p: event probability per entry of a frame.
    """
    channels = int(getattr(model, "in_channels", 3))
    device = model_device(model)
    if frames:
        return bernoulli_frames(time_steps, batch_size, channels, image_size, image_size, seed=seed, p=p, device=device)
    return gaussian_images(batch_size, channels, image_size, image_size, seed=seed, device=device)


def run(model: nn.Module, inputs: torch.Tensor, time_steps: int) -> torch.Tensor:
    """OTTT's online evaluation loop: ``out_t = model(x_t, init=(t == 0))`` for ``t < T``.

    Args:
        model: an online network whose forward takes ``(x, init)``.
        inputs: a static image batch ``[B, C, H, W]`` fed at every step, or per-step frames
            ``[T', B, C, H, W]`` with ``T' >= T`` (frame ``t`` at step ``t``).
        time_steps: T >= 1.

    Returns:
        Logits summed over the T steps, ``[B, num_classes]`` (what OTTT's accuracy uses).
    """
    if time_steps < 1:
        raise ValueError(f"time_steps must be >= 1, got {time_steps}")
    per_step = inputs.dim() == 5
    if per_step and inputs.shape[0] < time_steps:
        raise ValueError(f"inputs hold {inputs.shape[0]} frames, fewer than time_steps={time_steps}")
    total = model(inputs[0] if per_step else inputs, init=True)
    for t in range(1, time_steps):
        total = total + model(inputs[t] if per_step else inputs, init=False)
    return total


def from_batch(batch: torch.Tensor) -> torch.Tensor:
    """Collated dataset inputs to runner inputs: ``[B, T, C, H, W] -> [T, B, C, H, W]``; images unchanged."""
    return batch.transpose(0, 1).contiguous() if batch.dim() == 5 else batch


_VGG_DEFAULTS = {"batch_size": 8, "time_steps": 6, "image_size": 32}


def _vgg_registration(description: str) -> dict[str, object]:
    """Registry arguments shared by the OTTT VGG variants."""
    return {
        "make_inputs": make_inputs,
        "run": run,
        "step_mode": "single",
        "description": description,
        "paper": OTTT_PAPER,
        "defaults": dict(_VGG_DEFAULTS),
        "from_batch": from_batch,
    }


@register_model(
    "ottt_vgg11_ws",
    **_vgg_registration("OTTT online spiking VGG-11 (weight-standardised convs, LIF tau=2, x2.74), CIFAR 32x32"),
)
def ottt_vgg11_ws(
    num_classes: int = 10,
    in_channels: int = 3,
    tau: float = 2.0,
    *,
    width: float = 1.0,
    grad_with_rate: bool = True,
    neuron_dropout: float = 0.0,
) -> OnlineSpikingVGG:
    """Build OTTT's ``online_spiking_vgg11_ws`` (cfg A).

    Args:
        num_classes: classifier outputs (10 for CIFAR-10, 100 for CIFAR-100).
        in_channels: image channels (3; 2 for the CIFAR10-DVS variant at 48x48).
        tau: neuron time constant, in time steps.
        width: channel multiplier (1.0 = published).
        grad_with_rate: OTTT's trace-based weight gradients in ``train()`` mode.
        neuron_dropout: per-run neuron dropout (training only).
    """
    kw = {"width": width, "grad_with_rate": grad_with_rate, "neuron_dropout": neuron_dropout}
    return OnlineSpikingVGG(CFG_A, num_classes=num_classes, in_channels=in_channels, tau=tau, **kw)


@register_model(
    "ottt_vgg11f_ws",
    **_vgg_registration("OTTT online spiking VGG-11F: VGG-11 (WS) + zero-init 512->64 feedback conv, last step"),
)
def ottt_vgg11f_ws(
    num_classes: int = 10,
    in_channels: int = 3,
    tau: float = 2.0,
    *,
    width: float = 1.0,
    grad_with_rate: bool = True,
    neuron_dropout: float = 0.0,
) -> OnlineSpikingVGGF:
    """Build OTTT's ``online_spiking_vgg11f_ws`` (cfg A plus feedback); arguments as :func:`ottt_vgg11_ws`."""
    kw = {"width": width, "grad_with_rate": grad_with_rate, "neuron_dropout": neuron_dropout}
    return OnlineSpikingVGGF(CFG_A, num_classes=num_classes, in_channels=in_channels, tau=tau, **kw)

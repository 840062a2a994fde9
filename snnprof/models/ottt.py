"""OTTT online spiking VGG-11 with weight standardisation (Xiao et al., NeurIPS 2022).

Re-implementation of ``online_spiking_vgg11_ws`` from ``pkuxmq/OTTT-SNN`` (see
``docs/seed_models.md`` section 5.1), for profiling. The network is *single-step*: the caller
runs one forward per time step, passing ``init=True`` at ``t = 0`` to zero every neuron's state,
and feeds the same static image at every step (direct encoding).

Per conv block: ``ScaledWSConv2d(k3, p1)`` -> ``OnlineLIFNode`` -> ``Scale(2.74)``; ``'M'`` is
``AvgPool2d(2)``; the head is ``AdaptiveAvgPool2d(1)`` -> ``Flatten`` -> ``Linear(512, classes)``
with no neuron, so each step yields analog logits. At 32x32 one step costs 605.7 M conv MACs
per sample and has 409,600 spiking neurons.

Not implemented here: the feedback variant (VGG-F), OTTT's gradient trick (``spike_rate``
output / trace-based weight gradients), neuron dropout and ``save_spike``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from spikingjelly.activation_based import neuron, surrogate
from torch import nn

from snnprof.models.common import gaussian_images, model_device
from snnprof.models.registry import register_model

__all__ = [
    "CFG_A",
    "OnlineLIFNode",
    "OnlineSequential",
    "OnlineSpikingVGG",
    "Scale",
    "ScaledWSConv2d",
    "make_inputs",
    "ottt_vgg11_ws",
    "run",
]

#: VGG-11 layout "A": output channels of each 3x3 conv, ``"M"`` = 2x2 average pooling.
CFG_A: tuple[int | str, ...] = (64, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)

#: OTTT's constant post-spike scaling (keeps activations near unit variance with WS convs).
SPIKE_SCALE: float = 2.74


class OnlineLIFNode(neuron.LIFNode):
    """OTTT's online LIF neuron: soft reset, detached membrane history, presynaptic rate trace.

    One call is one time step (``step_mode='s'`` only). With decay ``d = 1 - 1/tau``::

        v    = v.detach() * d + x          # decay_input=False, v_reset=None
        s    = H(v - v_threshold)          # Heaviside forward, sigmoid(alpha=4) surrogate backward
        v    = v - s * v_threshold         # soft reset (reset path detached if detach_reset)
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
    """

    def __init__(
        self,
        tau: float = 2.0,
        v_threshold: float = 1.0,
        surrogate_function: surrogate.SurrogateFunctionBase | None = None,
        detach_reset: bool = True,
        track_rate: bool = True,
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
        self.track_rate = bool(track_rate)
        self.register_memory("rate", 0.0)

    def supported_step_mode(self) -> tuple[str, ...]:
        """Only single-step mode: OTTT is trained and run online, one call per time step."""
        return ("s",)

    def extra_repr(self) -> str:  # noqa: D102
        return super().extra_repr() + f", track_rate={self.track_rate}"

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
        if self.track_rate:
            with torch.no_grad():
                rate = rate * decay + spike.detach()
        return (spike,), (v, rate)

    def forward(self, x: torch.Tensor, init: bool = False) -> torch.Tensor:
        """Advance one time step.

        Args:
            x: input current of this step, any shape ``[B, ...]``.
            init: zero the state (``v`` and ``rate``) before the step; pass ``True`` at ``t = 0``.

        Returns:
            Spikes (0/1, same shape and dtype as ``x``).
        """
        if init:
            self.reset()
        return super().forward(x)


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
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
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


class OnlineSequential(nn.Sequential):
    """``nn.Sequential`` whose forward passes ``init`` on to every online neuron (and nested container)."""

    def forward(self, x: torch.Tensor, init: bool = False) -> torch.Tensor:
        """Run the children in order; ``init=True`` zeroes the state of each ``OnlineLIFNode``."""
        for module in self:
            x = module(x, init=init) if isinstance(module, OnlineLIFNode | OnlineSequential) else module(x)
        return x


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
    """

    def __init__(
        self,
        cfg: Sequence[int | str] = CFG_A,
        num_classes: int = 10,
        in_channels: int = 3,
        tau: float = 2.0,
        scale: float = SPIKE_SCALE,
    ) -> None:
        super().__init__()
        if num_classes <= 0 or in_channels <= 0:
            raise ValueError(f"num_classes and in_channels must be positive, got {num_classes}, {in_channels}")
        self.cfg = tuple(cfg)
        self.num_classes = int(num_classes)
        self.in_channels = int(in_channels)
        self.tau = float(tau)
        layers: list[nn.Module] = []
        channels = self.in_channels
        for item in self.cfg:
            if item == "M":
                layers.append(nn.AvgPool2d(2))
                continue
            if not isinstance(item, int) or item <= 0:
                raise ValueError(f"cfg entries must be positive ints or 'M', got {item!r}")
            layers += [
                ScaledWSConv2d(channels, item, kernel_size=3, padding=1, bias=True),
                OnlineLIFNode(tau=self.tau),
                Scale(scale),
            ]
            channels = item
        self.features = OnlineSequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(channels, self.num_classes)

    def forward(self, x: torch.Tensor, init: bool = False) -> torch.Tensor:
        """One time step.

        Args:
            x: image batch ``[B, in_channels, H, W]`` (H, W divisible by 8 for cfg A).
            init: zero every neuron's state first; pass ``True`` at ``t = 0``.

        Returns:
            Logits of this step, ``[B, num_classes]``.
        """
        x = self.features(x, init=init)
        return self.classifier(self.flatten(self.avgpool(x)))


def make_inputs(model: nn.Module, batch_size: int, time_steps: int, seed: int, *, image_size: int = 32) -> torch.Tensor:
    """Seeded Gaussian CIFAR-shaped images ``[B, in_channels, image_size, image_size]``.

    Direct encoding feeds the same image at every step, so ``time_steps`` does not change the shape.

    Args:
        model: the network (its ``in_channels`` and device are used).
        batch_size: B, images.
        time_steps: T (unused by the generator).
        seed: generator seed.
        image_size: H = W, pixels.
    """
    del time_steps
    channels = int(getattr(model, "in_channels", 3))
    return gaussian_images(batch_size, channels, image_size, image_size, seed=seed, device=model_device(model))


def run(model: nn.Module, inputs: torch.Tensor, time_steps: int) -> torch.Tensor:
    """OTTT's online evaluation loop: ``out_t = model(x, init=(t == 0))`` for ``t < T``.

    Args:
        model: an online network whose forward takes ``(x, init)``.
        inputs: image batch ``[B, C, H, W]``, fed unchanged at every step.
        time_steps: T >= 1.

    Returns:
        Logits summed over the T steps, ``[B, num_classes]`` (what OTTT's accuracy uses).
    """
    if time_steps < 1:
        raise ValueError(f"time_steps must be >= 1, got {time_steps}")
    total = model(inputs, init=True)
    for _ in range(1, time_steps):
        total = total + model(inputs, init=False)
    return total


@register_model(
    "ottt_vgg11_ws",
    make_inputs=make_inputs,
    run=run,
    step_mode="single",
    description="OTTT online spiking VGG-11 (weight-standardised convs, LIF tau=2, x2.74), CIFAR 32x32",
    paper=(
        "M. Xiao, Q. Meng, Z. Zhang, D. He, Z. Lin. Online Training Through Time for Spiking Neural "
        "Networks. NeurIPS 2022. arXiv:2210.04195; code: github.com/pkuxmq/OTTT-SNN"
    ),
    defaults={"batch_size": 8, "time_steps": 6, "image_size": 32},
)
def ottt_vgg11_ws(num_classes: int = 10, in_channels: int = 3, tau: float = 2.0) -> OnlineSpikingVGG:
    """Build OTTT's ``online_spiking_vgg11_ws`` (cfg A).

    Args:
        num_classes: classifier outputs (10 for CIFAR-10, 100 for CIFAR-100).
        in_channels: image channels (3; 2 for the CIFAR10-DVS variant at 48x48).
        tau: neuron time constant, in time steps.
    """
    return OnlineSpikingVGG(CFG_A, num_classes=num_classes, in_channels=in_channels, tau=tau)

"""OTTT online spiking NF-ResNet-34 for ImageNet (Xiao et al., NeurIPS 2022).

Re-implementation of ``online_spiking_nfresnet34`` from ``pkuxmq/OTTT-SNN``
(``models/spiking_resnet_imagenet.py``; ``docs/seed_models.md`` section 5.1), single-step like
the VGGs in :mod:`snnprof.models.ottt`::

    conv1   WS-conv 7x7 s2 p3 (C_in -> 64)  -> pool AvgPool 3x3 s2 p1   (no neuron: analog stem)
    layer1..4  [3, 4, 6, 3] BasicBlocks of 64, 128, 256, 512 channels (stride 1, 2, 2, 2)
    avgpool AdaptiveAvgPool(1) -> flatten -> fc Linear(512 -> classes), zero-initialised weight

    BasicBlock (NF-ResNet, no BatchNorm): s1 = sn1(x / beta) * 2.74
        identity = downsample(s1) (WS-conv 1x1, stride) when the shape changes, else x
        out = conv2(sn2(conv1(s1)) * 2.74) * skipinit_gain * alpha + identity

``beta = sqrt(expected variance)`` of the block input (1 at the stem, +alpha^2 per block, reset to
1 + alpha^2 after a downsampling block), ``alpha = 0.2``, ``skipinit_gain`` a learnable scalar
initialised to 0. 32 spiking layers (``sn1``, ``sn2`` per block); convs fed by spikes use OTTT's
trace-based weight gradients in training (:func:`~snnprof.models.ottt.spike_trace_op`). At 224x224
one step costs 3.67 G MACs per sample. Not implemented: stochastic depth and fc dropout (both 0 in
the seed's ImageNet run).
"""

from __future__ import annotations

import torch
from torch import nn

from snnprof.models.common import gaussian_images, model_device
from snnprof.models.ottt import (
    OTTT_PAPER,
    SPIKE_SCALE,
    OnlineLIFNode,
    OnlineSequential,
    ScaledWSConv2d,
    from_batch,
    init_ottt_weights,
    run,
    scaled_channels,
    spike_trace_op,
)
from snnprof.models.registry import register_model

__all__ = ["LAYERS_34", "OnlineNFBasicBlock", "OnlineSpikingNFResNet", "make_imagenet_inputs", "ottt_nfresnet34"]

#: BasicBlocks per stage of ResNet-34.
LAYERS_34: tuple[int, int, int, int] = (3, 4, 6, 3)

#: Output channels and stride of the four stages.
_STAGES: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (256, 2), (512, 2))


def _synapse(op: nn.Module, x: torch.Tensor, trace: bool) -> torch.Tensor:
    """``op(x)``, or the gradient trick when ``x`` is a ``cat(spike, rate)`` pair."""
    return spike_trace_op(op, x) if trace else op(x)


class OnlineNFBasicBlock(nn.Module):
    """The NF-ResNet BasicBlock of OTTT (see the module docstring for the equations).

    Args:
        inplanes: input channels.
        planes: output channels.
        stride: stride of ``conv1`` (and of the downsample).
        downsample: 1x1 WS-conv on the block's input spikes, or ``None`` for the identity.
        beta: input scaling ``x / beta`` (sqrt of the expected input variance).
        alpha: residual branch scale.
        tau: neuron time constant, in time steps.
        neuron_dropout: per-run neuron dropout (training only).
    """

    online_block = True

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        beta: float = 1.0,
        alpha: float = 1.0,
        tau: float = 2.0,
        neuron_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.conv1 = ScaledWSConv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1)
        self.conv2 = ScaledWSConv2d(planes, planes, kernel_size=3, stride=1, padding=1)
        self.sn1 = OnlineLIFNode(tau=tau, neuron_dropout=neuron_dropout)
        self.sn2 = OnlineLIFNode(tau=tau, neuron_dropout=neuron_dropout)
        self.downsample = downsample
        self.beta, self.alpha, self.scale = float(beta), float(alpha), SPIKE_SCALE
        self.skipinit_gain = nn.Parameter(torch.zeros(()))

    def extra_repr(self) -> str:  # noqa: D102
        return f"beta={self.beta:.4g}, alpha={self.alpha}"

    def forward(self, x: torch.Tensor, init: bool = False, trace: bool = False) -> torch.Tensor:
        """One time step of the block; ``trace=True`` uses the gradient trick (training)."""
        out = self.sn1(x / self.beta, init=init, with_rate=trace) * self.scale
        identity = x if self.downsample is None else _synapse(self.downsample, out, trace)
        out = _synapse(self.conv1, out, trace)
        out = self.sn2(out, init=init, with_rate=trace) * self.scale
        out = _synapse(self.conv2, out, trace)
        return out * self.skipinit_gain * self.alpha + identity


class OnlineSpikingNFResNet(nn.Module):
    """OTTT's online spiking NF-ResNet with BasicBlocks.

    Attributes:
        conv1: the 7x7 stride-2 WS-conv stem (sees the analog image: MACs).
        pool: ``AvgPool2d(3, 2, 1)`` (the seed's ``maxpool`` attribute, an average pool).
        layer1, layer2, layer3, layer4: ``OnlineSequential`` stages of :class:`OnlineNFBasicBlock`.
        avgpool: ``AdaptiveAvgPool2d(1)``.
        flatten: ``Flatten(1)``.
        fc: ``Linear(512 * width, num_classes)`` on the analog residual stream (MACs).

    Args:
        layers: blocks per stage.
        num_classes: classifier outputs.
        in_channels: image channels.
        tau: neuron time constant, in time steps.
        alpha: residual branch scale.
        width: channel multiplier (1.0 = published).
        grad_with_rate: trace-based weight gradients in ``train()`` mode.
        neuron_dropout: per-run neuron dropout (training only).
    """

    def __init__(
        self,
        layers: tuple[int, ...] = LAYERS_34,
        num_classes: int = 1000,
        in_channels: int = 3,
        tau: float = 2.0,
        alpha: float = 0.2,
        *,
        width: float = 1.0,
        grad_with_rate: bool = True,
        neuron_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes <= 0 or in_channels <= 0 or len(layers) != len(_STAGES) or min(layers) < 1:
            raise ValueError(f"need positive num_classes/in_channels and 4 positive stage sizes, got {layers}")
        self.num_classes, self.in_channels = int(num_classes), int(in_channels)
        self.tau, self.alpha, self.width = float(tau), float(alpha), float(width)
        self.grad_with_rate, self.neuron_dropout = bool(grad_with_rate), float(neuron_dropout)
        self.inplanes = scaled_channels(64, width)
        self.conv1 = ScaledWSConv2d(self.in_channels, self.inplanes, kernel_size=7, stride=2, padding=3)
        self.pool = nn.AvgPool2d(kernel_size=3, stride=2, padding=1)
        var = 1.0
        self.layer1, var = self._make_stage(scaled_channels(_STAGES[0][0], width), layers[0], _STAGES[0][1], var)
        self.layer2, var = self._make_stage(scaled_channels(_STAGES[1][0], width), layers[1], _STAGES[1][1], var)
        self.layer3, var = self._make_stage(scaled_channels(_STAGES[2][0], width), layers[2], _STAGES[2][1], var)
        self.layer4, var = self._make_stage(scaled_channels(_STAGES[3][0], width), layers[3], _STAGES[3][1], var)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(self.inplanes, self.num_classes)
        init_ottt_weights(self, linear_std=None)
        nn.init.zeros_(self.fc.weight)

    def _make_stage(self, planes: int, blocks: int, stride: int, var: float) -> tuple[OnlineSequential, float]:
        """One stage; returns it and the expected variance of its output (the seed's bookkeeping)."""
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = ScaledWSConv2d(self.inplanes, planes, kernel_size=1, stride=stride, padding=0)
        kw = {"alpha": self.alpha, "tau": self.tau, "neuron_dropout": self.neuron_dropout}
        stage = [OnlineNFBasicBlock(self.inplanes, planes, stride, downsample, beta=var**0.5, **kw)]
        self.inplanes = planes
        var = 1.0 + self.alpha**2 if downsample is not None else var + self.alpha**2
        for _ in range(1, blocks):
            stage.append(OnlineNFBasicBlock(planes, planes, beta=var**0.5, **kw))
            var += self.alpha**2
        return OnlineSequential(*stage), var

    def forward(self, x: torch.Tensor, init: bool = False) -> torch.Tensor:
        """One time step.

        Args:
            x: image batch ``[B, in_channels, H, W]`` (224x224 for ImageNet).
            init: zero every neuron's state first; pass ``True`` at ``t = 0``.

        Returns:
            Logits of this step, ``[B, num_classes]``.
        """
        trace = self.training and self.grad_with_rate
        x = self.pool(self.conv1(x))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x, init=init, trace=trace)
        return self.fc(self.flatten(self.avgpool(x)))


def make_imagenet_inputs(
    model: nn.Module, batch_size: int, time_steps: int, seed: int, *, image_size: int = 224
) -> torch.Tensor:
    """Seeded Gaussian ImageNet-shaped images ``[B, in_channels, S, S]`` (the same image every step).

    Args:
        model: the network (its ``in_channels`` and device are used).
        batch_size: B, images.
        time_steps: T (unused: direct encoding).
        seed: generator seed.
        image_size: S = H = W, pixels.
    """
    del time_steps
    channels = int(getattr(model, "in_channels", 3))
    return gaussian_images(batch_size, channels, image_size, image_size, seed=seed, device=model_device(model))


@register_model(
    "ottt_nfresnet34",
    make_inputs=make_imagenet_inputs,
    run=run,
    step_mode="single",
    description="OTTT online spiking NF-ResNet-34 (WS convs, skipinit, LIF tau=2, x2.74), ImageNet 224x224",
    paper=OTTT_PAPER,
    defaults={"batch_size": 1, "time_steps": 6, "image_size": 224},
    from_batch=from_batch,
)
def ottt_nfresnet34(
    num_classes: int = 1000,
    in_channels: int = 3,
    tau: float = 2.0,
    *,
    alpha: float = 0.2,
    width: float = 1.0,
    grad_with_rate: bool = True,
    neuron_dropout: float = 0.0,
) -> OnlineSpikingNFResNet:
    """Build OTTT's ``online_spiking_nfresnet34``.

    Args:
        num_classes: classifier outputs (1000 for ImageNet).
        in_channels: image channels.
        tau: neuron time constant, in time steps.
        alpha: residual branch scale.
        width: channel multiplier (1.0 = published).
        grad_with_rate: trace-based weight gradients in ``train()`` mode.
        neuron_dropout: per-run neuron dropout (training only).
    """
    return OnlineSpikingNFResNet(
        LAYERS_34,
        num_classes=num_classes,
        in_channels=in_channels,
        tau=tau,
        alpha=alpha,
        width=width,
        grad_with_rate=grad_with_rate,
        neuron_dropout=neuron_dropout,
    )

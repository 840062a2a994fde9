"""StereoSpike: a stateless spiking U-Net for event-based stereo depth (Rançon et al., 2021).

Re-implementation of ``network/SNN_models.py StereoSpike`` (``urancon/StereoSpike`` @ 6254fec, see
``docs/seed_models.md`` section 3.1) with SpikingJelly's ``activation_based`` IF neurons (its analog twin
is in :mod:`snnprof.models.stereospike_ann`). Module names and ``nn.Sequential``
indices follow the seed, so its ``state_dict`` keys (``bottom.0.weight``, ``deconv4.0.up.1.weight``,
``predict_depth1.0.up.1.bias`` ...) load unchanged.

Stepping (section 3.1): the network is **stateless with T = 1**. Before every sample the caller
resets all neurons (``functional.reset_net``), then one single-step forward runs; every IF neuron
then acts as a Heaviside ``S = H(W * S_prev - 1)``. The input ``x [B, 1, C, H, W]`` holds integer
event counts of one 50 ms window (C = 4: left ON, left OFF, right ON, right OFF; the monocular
variant takes C = 2, left camera only) and the model reads ``x[:, 0]``.

Layers at 260x346 (k = kernel, s = stride; no bias and no BatchNorm in the SNN)::

    bottom      Conv k5 s1 p2  C->32  + IF        260x346
    conv1..4    Conv k5 s2 p2  x2 ch  + IF        130x173, 65x87, 33x44, 17x22
    bottleneck  2 x SEWResBlock(512, ADD): [Conv3x3 + IF, Conv3x3 + IF] + identity
    deconv4..1  NN-upsample to (h + 4, w + 4), Conv k5 p0, + IF      skip sums add4..add1
    predict_depth4..1  NN-upsample to (H + 2, W + 2), Conv k3 p0 (bias) -> 1 channel
    Ineurons    one IFNode(v_threshold=inf): depth4 = p4, depth3 = p4 + p3, ..., depth1 = p4+p3+p2+p1

Dense MACs per forward at 260x346: 27,533,033,216 (binocular), 27,389,097,216 (monocular);
18,148,708 parameters.
``MultiplyBy(1.0)`` of the seed is a no-op and is built as ``nn.Identity`` (other factors build a
real :class:`MultiplyBy`). The skip sums are :class:`SkipAdd` modules (no parameters) so that the
seed's intermediate tensors can be observed by hooks (see ``snnprof/views/stereospike.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from spikingjelly.activation_based import functional, neuron, surrogate
from torch import nn

from snnprof.models.registry import register_model

__all__ = [
    "MVSEC_SIZE",
    "MultiplyBy",
    "NEURONS",
    "NNConvUpsampling",
    "SEWResBlock",
    "SkipAdd",
    "StereoSpike",
    "encoder_sizes",
    "make_inputs",
    "run",
    "stereospike",
]

logger = logging.getLogger(__name__)

#: MVSEC DAVIS346 resolution (H, W), pixels.
MVSEC_SIZE: tuple[int, int] = (260, 346)
#: Channels of bottom, conv1, conv2, conv3, conv4.
CHANNELS: tuple[int, ...] = (32, 64, 128, 256, 512)
_SURROGATES = {"atan": surrogate.ATan, "sigmoid": surrogate.Sigmoid}
_CONNECT = ("ADD", "AND", "IAND")
_PAPER = (
    "U. Rançon, J. Cuadrado-Anibarro, B. R. Cottereau, T. Masquelier. StereoSpike: Depth Learning with a "
    "Spiking Neural Network. IEEE Access 2022, arXiv:2109.13751; code: github.com/urancon/StereoSpike"
)


def encoder_sizes(height: int, width: int, levels: int = 5) -> list[tuple[int, int]]:
    """Feature-map sizes of bottom, conv1, ... (each stride-2 k5 p2 conv maps n to ceil(n / 2)).

    Args:
        height: input H, pixels.
        width: input W, pixels.
        levels: number of sizes (bottom plus the four encoder levels).

    Returns:
        ``[(H, W), (ceil(H/2), ceil(W/2)), ...]``; at 260x346: 260x346, 130x173, 65x87, 33x44, 17x22.
    """
    sizes = [(int(height), int(width))]
    for _ in range(levels - 1):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


class MultiplyBy(nn.Module):
    """Multiply by a constant (the seed's ``MultiplyBy``; factor 1 is built as ``nn.Identity``).

    Args:
        scale: the factor (dimensionless).
    """

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = float(scale)

    def extra_repr(self) -> str:  # noqa: D102
        return f"scale={self.scale}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``x * scale``."""
        return x * self.scale


class SkipAdd(nn.Module):
    """Element-wise sum of two tensors (a U-Net skip connection: integer spike counts 0..2)."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Return ``a + b``."""
        return a + b


def _scale(factor: float) -> nn.Module:
    return nn.Identity() if float(factor) == 1.0 else MultiplyBy(factor)


class NNConvUpsampling(nn.Module):
    """Nearest-neighbour (or bilinear) upsampling to ``up_size + k - 1``, then a k x k conv without padding.

    Output size is exactly ``up_size``. Attribute ``up = Sequential(Upsampling, Conv2d)`` as in the seed.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: conv kernel, pixels.
        up_size: output ``(H, W)``, pixels.
        bias: conv bias.
        mode: ``nearest`` (SNN; integer spike counts stay integers) or ``bilinear`` (the seed's ANN,
            ``align_corners=True``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        up_size: tuple[int, int],
        *,
        bias: bool = False,
        mode: str = "nearest",
    ) -> None:
        super().__init__()
        size = (int(up_size[0]) + kernel_size - 1, int(up_size[1]) + kernel_size - 1)
        if mode == "nearest":
            upsample: nn.Module = nn.UpsamplingNearest2d(size=size)
        elif mode == "bilinear":
            upsample = nn.UpsamplingBilinear2d(size=size)
        else:
            raise ValueError(f"upsampling mode must be 'nearest' or 'bilinear', got {mode!r}")
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=1, padding=0, bias=bias)
        self.up = nn.Sequential(upsample, conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample then convolve ``x [B, C_in, h, w]`` to ``[B, C_out, *up_size]``."""
        return self.up(x)


#: Spiking neurons of the encoder/decoder layers: the binocular net's IF, the monocular net's LIF
#: (``tau``, ATan) or PLIF (``init_tau = tau``, SpikingJelly's default sigmoid surrogate).
NEURONS: tuple[str, ...] = ("if", "lif", "plif")


def _if_node(v_threshold: float, v_reset: float, sg: str, detach_reset: bool = True) -> neuron.IFNode:
    return neuron.IFNode(
        v_threshold=float(v_threshold),
        v_reset=float(v_reset),
        surrogate_function=_surrogate(sg),
        detach_reset=detach_reset,
        step_mode="s",
    )


def _node(kind: str, v_threshold: float, v_reset: float, sg: str, tau: float) -> nn.Module:
    """A single-step spiking neuron of kind ``if``, ``lif`` or ``plif``.

    ``if``: IF with surrogate ``sg``; ``lif``: LIF ``tau`` with surrogate ``sg``; ``plif``: PLIF ``init_tau = tau``
    with the sigmoid surrogate (the seed never passes one to its PLIF nodes).
    """
    if kind == "if":
        return _if_node(v_threshold, v_reset, sg)
    common = {"v_threshold": float(v_threshold), "v_reset": float(v_reset), "detach_reset": True, "step_mode": "s"}
    if kind == "lif":
        return neuron.LIFNode(tau=float(tau), surrogate_function=_surrogate(sg), **common)
    if kind == "plif":
        return neuron.ParametricLIFNode(init_tau=float(tau), surrogate_function=surrogate.Sigmoid(), **common)
    raise ValueError(f"neuron must be one of {NEURONS}, got {kind!r}")


def _surrogate(name: str) -> surrogate.SurrogateFunctionBase:
    if name not in _SURROGATES:
        raise ValueError(f"surrogate must be one of {sorted(_SURROGATES)}, got {name!r}")
    return _SURROGATES[name]()


class SEWResBlock(nn.Module):
    """Spike-element-wise residual block: ``sn2(conv2(sn1(conv1(x)))) (+) x``.

    Args:
        channels: channels in and out.
        connect_function: ``ADD`` (``out + x``, integer outputs), ``AND`` (``out * x``) or ``IAND``
            (``x * (1 - out)``).
        v_threshold: IF threshold.
        v_reset: IF reset potential.
        surrogate_name: surrogate of both neurons (the seed's block default is ``sigmoid``).
        multiply_factor: factor after each conv (1 = none).
        neuron_kind: ``if`` (the seed's default) or ``plif`` (``use_plif=True``: PLIF, ``init_tau = tau``).
        tau: PLIF initial time constant, in time steps.
    """

    def __init__(
        self,
        channels: int,
        connect_function: str = "ADD",
        *,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate_name: str = "sigmoid",
        multiply_factor: float = 1.0,
        neuron_kind: str = "if",
        tau: float = 2.0,
    ) -> None:
        super().__init__()
        if connect_function not in _CONNECT:
            raise ValueError(f"connect_function must be one of {_CONNECT}, got {connect_function!r}")
        if neuron_kind not in ("if", "plif"):
            raise ValueError(f"SEW neurons are 'if' or 'plif' (the seed's use_plif), got {neuron_kind!r}")
        self.connect_function = connect_function
        self.conv1 = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), _scale(multiply_factor))
        self.sn1 = _node(neuron_kind, v_threshold, v_reset, surrogate_name, tau)
        self.conv2 = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), _scale(multiply_factor))
        self.sn2 = _node(neuron_kind, v_threshold, v_reset, surrogate_name, tau)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One step on ``x [B, C, H, W]`` (spikes or spike counts)."""
        out = self.sn2(self.conv2(self.sn1(self.conv1(x))))
        if self.connect_function == "ADD":
            return out + x
        if self.connect_function == "AND":
            return out * x
        return x * (1.0 - out)


class _StereoBase(nn.Module):
    """Shared shape bookkeeping and the U-Net forward of both variants."""

    in_channels: int
    input_size: tuple[int, int]
    depth_prior: float

    def _check_sizes(self, in_channels: int, input_size: Sequence[int]) -> tuple[int, int]:
        if int(in_channels) not in (2, 4):
            raise ValueError(f"in_channels must be 4 (binocular) or 2 (monocular), got {in_channels}")
        if len(input_size) != 2 or min(int(s) for s in input_size) < 16:
            raise ValueError(f"input_size must be (H, W) with H, W >= 16 pixels, got {tuple(input_size)}")
        self.in_channels = int(in_channels)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.depth_prior = 0.0
        return self.input_size

    @property
    def monocular(self) -> bool:
        """True when the model sees the left camera only (2 input channels)."""
        return self.in_channels == 2

    def set_depth_prior(self, value: float) -> None:
        """Initial potential of the output I-neurons, in metres (the seed's ``set_init_depths_potentials``).

        Applied at every forward until changed (0 = none); it shifts every prediction by ``value``.
        """
        self.depth_prior = float(value)

    def _frame(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[2] != self.in_channels or tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(
                f"expected input [B, frames, {self.in_channels}, {self.input_size[0]}, {self.input_size[1]}], "
                f"got {list(x.shape)}"
            )
        return x[:, 0]

    def _readout(self, level: int, skip: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """One stateless forward (reset the neurons first, see :func:`run`).

        Args:
            x: event counts ``[B, frames, C, H, W]``; only ``x[:, 0]`` is used (C = 4 or 2).

        Returns:
            ``([depth1, depth2, depth3, depth4], [out_rconv, out_add4, out_add3, out_add2, out_add1])``;
            depths are ``[B, 1, H, W]`` in metres, ``depth1`` being the full sum of the four heads.
        """
        out_bottom = self.bottom(self._frame(x))
        out_conv1 = self.conv1(out_bottom)
        out_conv2 = self.conv2(out_conv1)
        out_conv3 = self.conv3(out_conv2)
        out_conv4 = self.conv4(out_conv3)
        out_rconv = self.bottleneck(out_conv4)
        out_add4 = self.add4(self.deconv4(out_rconv), out_conv3)
        depth4 = self._readout(4, out_add4)
        out_add3 = self.add3(self.deconv3(out_add4), out_conv2)
        depth3 = self._readout(3, out_add3)
        out_add2 = self.add2(self.deconv2(out_add3), out_conv1)
        depth2 = self._readout(2, out_add2)
        out_add1 = self.add1(self.deconv1(out_add2), out_bottom)
        depth1 = self._readout(1, out_add1)
        return [depth1, depth2, depth3, depth4], [out_rconv, out_add4, out_add3, out_add2, out_add1]


class StereoSpike(_StereoBase):
    """The StereoSpike SNN (stateless T = 1, no bias, no BatchNorm).

    The seed's binocular ``StereoSpike`` (IF neurons) or its monocular
    ``fromZero_feedforward_multiscale_tempo_monocular_SpikeFlowNetLike`` (``neuron_kind = "lif"``,
    ``sew_neuron = "plif"``, ``tau = 10``; ``"plif"`` for its ``use_plif``).

    Args:
        in_channels: 4 (binocular: left ON/OFF, right ON/OFF) or 2 (monocular, left only).
        input_size: ``(H, W)`` of the event histograms, pixels (MVSEC: 260x346).
        v_threshold: IF threshold of every spiking neuron.
        v_reset: IF reset potential.
        surrogate_name: surrogate gradient of the encoder/decoder neurons and I-neurons (seed: ``atan``).
        sew_surrogate: surrogate inside the SEW blocks (the seed does not pass its surrogate through,
            so they keep the block default ``sigmoid``).
        multiply_factor: the seed's ``MultiplyBy`` factor after every conv (1 = none).
        connect_function: SEW connect function (``ADD``).
        neuron_kind: neurons of the encoder/decoder layers, one of :data:`NEURONS` (``if``: the seed's
            binocular ``StereoSpike``; ``lif``/``plif``: its monocular class without/with ``use_plif``).
        sew_neuron: neurons of the SEW blocks, ``if`` or ``plif`` (the monocular class always uses PLIF).
        tau: time constant of the ``lif``/``plif`` neurons, in time steps (the monocular class: 10).
    """

    def __init__(
        self,
        in_channels: int = 4,
        input_size: Sequence[int] = MVSEC_SIZE,
        *,
        v_threshold: float = 1.0,
        v_reset: float = 0.0,
        surrogate_name: str = "atan",
        sew_surrogate: str = "sigmoid",
        multiply_factor: float = 1.0,
        connect_function: str = "ADD",
        neuron_kind: str = "if",
        sew_neuron: str = "if",
        tau: float = 10.0,
    ) -> None:
        super().__init__()
        sizes = encoder_sizes(*self._check_sizes(in_channels, input_size))
        c, mf = CHANNELS, multiply_factor
        _node(neuron_kind, v_threshold, v_reset, surrogate_name, tau)  # validate before building
        self.neuron_kind, self.sew_neuron = neuron_kind, sew_neuron

        def node() -> nn.Module:
            return _node(neuron_kind, v_threshold, v_reset, surrogate_name, tau)

        self.bottom = nn.Sequential(nn.Conv2d(self.in_channels, c[0], 5, 1, 2, bias=False), _scale(mf), node())
        for i in range(1, 5):
            conv = nn.Conv2d(c[i - 1], c[i], 5, 2, 2, bias=False)
            setattr(self, f"conv{i}", nn.Sequential(conv, _scale(mf), node()))
        self.bottleneck = nn.Sequential(
            *(
                SEWResBlock(
                    c[4],
                    connect_function,
                    v_threshold=v_threshold,
                    v_reset=v_reset,
                    surrogate_name=sew_surrogate,
                    multiply_factor=mf,
                    neuron_kind=sew_neuron,
                    tau=tau,
                )
                for _ in range(2)
            )
        )
        for i in range(4, 0, -1):
            up = NNConvUpsampling(c[i], c[i - 1], 5, sizes[i - 1])
            setattr(self, f"deconv{i}", nn.Sequential(up, _scale(mf), node()))
            setattr(self, f"add{i}", SkipAdd())
            head = NNConvUpsampling(c[i - 1], 1, 3, sizes[0], bias=True)
            setattr(self, f"predict_depth{i}", nn.Sequential(head, _scale(mf)))
        self.Ineurons = neuron.IFNode(
            v_threshold=math.inf, v_reset=float(v_reset), surrogate_function=_surrogate(surrogate_name), step_mode="s"
        )

    def _readout(self, level: int, skip: torch.Tensor) -> torch.Tensor:
        """Integrate head ``level`` into the I-neurons and return their membrane potential (metres)."""
        if level == 4 and self.depth_prior != 0.0:
            self.Ineurons.v = self.depth_prior
        self.Ineurons(getattr(self, f"predict_depth{level}")(skip))
        return self.Ineurons.v


def make_inputs(
    model: nn.Module,
    batch_size: int,
    time_steps: int,
    seed: int,
    *,
    boxes: int = 3,
    edge_rate: float = 1.5,
    noise_rate: float = 0.02,
) -> torch.Tensor:
    """Seeded synthetic stereo event-count histograms ``[B, 1, C, H, W]`` (one 50 ms window each).

    Each sample is one frame of a synthetic stereo scene (planes and boxes at known depth, the right
    camera disparity-shifted; see :mod:`snnprof.data.synthetic_stereo`): Poisson event
    counts at intensity edges plus background noise. The monocular variant gets the left camera only.

    Args:
        model: a StereoSpike model (its ``in_channels``, ``input_size`` and device are used).
        batch_size: B, samples (scenes ``seed, seed + 1, ...``).
        time_steps: must be 1 (StereoSpike is stateless, one window per forward).
        seed: generator seed.
        boxes: boxes per scene.
        edge_rate: mean events per edge pixel and polarity per window.
        noise_rate: mean background-noise events per pixel and polarity per window.
    """
    from snnprof.data.synthetic_stereo import SceneSpec, render_scene

    if int(time_steps) != 1:
        raise ValueError(f"time_steps must be 1 (stateless: one 50 ms window per forward), got {time_steps}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    height, width = getattr(model, "input_size", MVSEC_SIZE)
    channels = int(getattr(model, "in_channels", 4))
    frames = []
    for b in range(int(batch_size)):
        spec = SceneSpec(
            height, width, frames=1, boxes=boxes, edge_rate=edge_rate, noise_rate=noise_rate, seed=seed + b
        )
        frames.append(torch.from_numpy(render_scene(spec).counts[0, :channels]))
    x = torch.stack(frames).unsqueeze(1).float()
    return x.to(_device(model))


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def run(model: nn.Module, inputs: torch.Tensor, time_steps: int) -> Any:
    """StereoSpike's stateless evaluation: ``reset_net`` then one forward per batch.

    Args:
        model: a :class:`StereoSpike` or :class:`StereoSpikeANN`.
        inputs: event counts ``[B, 1, C, H, W]``.
        time_steps: must be 1.
    """
    if int(time_steps) != 1:
        raise ValueError(f"StereoSpike is stateless: time_steps must be 1, got {time_steps}")
    functional.reset_net(model)
    return model(inputs)


def _size(height: int, width: int) -> tuple[int, int]:
    return int(height), int(width)


@register_model(
    "stereospike",
    make_inputs=make_inputs,
    run=run,
    step_mode="single",
    description="StereoSpike spiking U-Net (IF, stateless T=1) for event stereo depth, MVSEC 260x346",
    paper=_PAPER,
    defaults={"batch_size": 1, "time_steps": 1},
)
def stereospike(
    monocular: bool = False,
    height: int = MVSEC_SIZE[0],
    width: int = MVSEC_SIZE[1],
    *,
    v_threshold: float = 1.0,
    surrogate_name: str = "atan",
    sew_surrogate: str = "sigmoid",
    multiply_factor: float = 1.0,
    monocular_neuron: str = "lif",
    tau: float = 10.0,
) -> StereoSpike:
    """Build StereoSpike: the seed's binocular net, or (``monocular=True``) its monocular class.

    Args:
        monocular: the left camera only (2 input channels): the seed's monocular network.
        height: input H, pixels.
        width: input W, pixels.
        v_threshold: firing threshold of every spiking neuron.
        surrogate_name: surrogate of the encoder/decoder IF/LIF neurons (``atan`` or ``sigmoid``).
        sew_surrogate: surrogate inside the SEW blocks.
        multiply_factor: the seed's ``MultiplyBy`` factor (1 = none).
        monocular_neuron: monocular only: ``lif`` (the seed's default: LIF ``tau`` layers, PLIF SEW
            blocks), ``plif`` (its ``use_plif=True``: PLIF everywhere) or ``if`` (the binocular net's IF
            neurons on 2 channels, the zoo's variant before the seed's class was built).
        tau: monocular only: time constant of the LIF/PLIF neurons (the seed's 10).
    """
    kinds = {"lif": ("lif", "plif"), "plif": ("plif", "plif"), "if": ("if", "if")}
    if monocular_neuron not in kinds:
        raise ValueError(f"monocular_neuron must be one of {', '.join(kinds)}, got {monocular_neuron!r}")
    neuron_kind, sew_neuron = kinds[monocular_neuron] if monocular else ("if", "if")
    return StereoSpike(
        in_channels=2 if monocular else 4,
        input_size=_size(height, width),
        v_threshold=v_threshold,
        surrogate_name=surrogate_name,
        sew_surrogate=sew_surrogate,
        multiply_factor=multiply_factor,
        neuron_kind=neuron_kind,
        sew_neuron=sew_neuron,
        tau=tau,
    )

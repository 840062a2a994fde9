"""event_flow zoo entries: spiking optical-flow networks of Hagenaars et al. (NeurIPS 2021) and the seed fork.

Registered models (``docs/seed_models.md`` section 4; architectures in :mod:`event_flow_nets` and
:mod:`event_flow_unet`, neurons in :mod:`event_flow_neurons`):

==========================  ==========================================================  =========================
name                        network                                                     MACs / pass at 128x128
==========================  ==========================================================  =========================
``lif_firenet``             LIF-FireNet (head, G1, R1a, R1b, G2, R2a, R2b, pred), C=32  1,218,445,312
``lif_firenet_short``       LIF-FireNet without R1b/R2b (the fork's ``_short``)         916,455,424
``lif_fireflownet``         LIF-FireFlowNet: no recurrent convs                         916,455,424
``plif_firenet``            PLIF-FireNet (presynaptic-trace adaptation)                 1,218,445,312
``alif_firenet``            ALIF-FireNet (adaptive threshold)                           1,218,445,312
``xlif_firenet``            XLIF-FireNet (trace-adaptive threshold)                     1,218,445,312
``spiking_rec_evflownet``   spiking recurrent EV-FlowNet (LIF U-Net, 4 encoders)        4,477,550,592
``firenet``                 ANN FireNet (ConvGRU)                                       2,426,404,864
``evflownet``               ANN EV-FlowNet (U-Net, 4 encoders)                          3,269,591,040
==========================  ==========================================================  =========================

``lif_*`` models take ``neuron = "snntorch"`` (default: the seed fork's code, snnTorch ``Leaky``:
``m = beta v + I``, ``beta ~ U(0, 1)``, ``thresh ~ U(0, 0.8)``, the membrane detached after every pass
and kept by ``reset_states()``, as the fork trains), ``neuron = "snntorch_bptt"`` (the same update, BPTT
through the membrane, ``reset_states()`` zeroing it) or ``neuron = "tudelft"`` (the NeurIPS paper /
tudelft code: ``v = l v (1 - z) + (1 - l) I`` with ``l = sigmoid(N(-4, 0.1))``, ``thresh ~ N(0.8, 0.1)``).
All have learnable per-channel leak and threshold. ``neuron_kwargs`` overrides a neuron's constructor
arguments.

Every model is called once per event window (``step_mode = "single"``; the stateless ``evflownet``
is registered as ``"ann"``), recurrent state carried across calls (``reset_states()`` at a sequence
change, ``detach_states()`` for truncated BPTT). Inputs are ``[T, B, C, H, W]`` event counts
(``cnt``, C = 2) or voxels: T windows of 1000 events of a synthetic translating texture
(:mod:`snnprof.data.synthetic_flow`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from snnprof.models.common import model_device
from snnprof.models.event_flow_cells import NeuronFactory
from snnprof.models.event_flow_nets import FireNetFamily, RecurrentFlowNet, build_firenet
from snnprof.models.event_flow_neurons import NEURON_TYPES
from snnprof.models.event_flow_unet import EVFlowNet, SpikingRecEVFlowNet
from snnprof.models.registry import register_model

__all__ = [
    "LIF_FORMULATIONS",
    "alif_firenet",
    "evflownet",
    "firenet",
    "from_batch",
    "lif_fireflownet",
    "lif_firenet",
    "lif_firenet_short",
    "make_inputs",
    "neuron_factory",
    "plif_firenet",
    "run",
    "spiking_rec_evflownet",
    "xlif_firenet",
]

#: ``neuron`` argument of the ``lif_*`` models -> neuron type name in ``NEURON_TYPES``: the fork's snnTorch
#: ``Leaky`` as it trains (membrane detached every pass, kept by ``reset_states()``), the same update with
#: BPTT through the membrane and a zeroing ``reset_states()``, and the tudelft/paper LIF.
LIF_FORMULATIONS: dict[str, str] = {"snntorch": "leaky_fork", "snntorch_bptt": "leaky", "tudelft": "lif"}

#: The seed's ``train_SNN.yml`` neuron settings for the tudelft LIF (threshold spread 0.1).
_TUDELFT_LIF = {"leak": (-4.0, 0.1), "thresh": (0.8, 0.1)}

_PAPER = (
    "J. Hagenaars, F. Paredes-Valles, G. de Croon. Self-Supervised Learning of Event-Based Optical Flow "
    "with Spiking Neural Networks. NeurIPS 2021. code: github.com/tudelft/event_flow; ONNX-LIF fork: "
    "github.com/LSquarzoni/SNN_Event-based_Optical_Flow"
)
_DEFAULTS = {"batch_size": 1, "time_steps": 10, "height": 128, "width": 128}


def neuron_factory(kind: str, overrides: Mapping[str, Any] | None = None) -> NeuronFactory:
    """A ``channels -> neuron`` factory for a neuron type (``lif``, ``leaky``, ``plif``, ``alif``, ``xlif``).

    Args:
        kind: key of ``NEURON_TYPES``.
        overrides: constructor keyword arguments (lists are turned into tuples).

    Raises:
        ValueError: unknown kind or constructor arguments.
    """
    if kind not in NEURON_TYPES:
        raise ValueError(f"unknown neuron {kind!r}; expected one of {', '.join(NEURON_TYPES)}")
    klass = NEURON_TYPES[kind]
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(overrides or {}).items()}
    try:
        klass(1, **kwargs)
    except TypeError as err:
        raise ValueError(f"bad neuron_kwargs for {klass.__name__}: {err}") from None
    return functools.partial(klass, **kwargs)


def _lif_factory(neuron: str, neuron_kwargs: Mapping[str, Any] | None) -> NeuronFactory:
    if neuron not in LIF_FORMULATIONS:
        raise ValueError(f"neuron must be one of {', '.join(LIF_FORMULATIONS)}, got {neuron!r}")
    defaults = _TUDELFT_LIF if neuron == "tudelft" else {}
    return neuron_factory(LIF_FORMULATIONS[neuron], {**defaults, **dict(neuron_kwargs or {})})


# ----------------------------------------------------------------------------- inputs and runner


def make_inputs(
    model: nn.Module,
    batch_size: int,
    time_steps: int,
    seed: int,
    *,
    height: int = 128,
    width: int = 128,
    window: int = 1000,
) -> torch.Tensor:
    """Event windows of synthetic translating textures, ``[T, B, C, H, W]`` in the model's encoding.

    Sample ``b`` is sequence ``seed * 1000 + b`` of the synthetic generator (random texture and
    direction), cut into ``T`` windows of ``window`` events, encoded like the seed's loader.

    Args:
        model: the network (its ``encoding``, ``num_bins`` and device are used).
        batch_size: B, sequences.
        time_steps: T, windows (forward passes).
        seed: generator seed.
        height: H, pixels.
        width: W, pixels.
        window: events per window.
    """
    from snnprof.data.event_flow_h5 import ArraySource, PassReader
    from snnprof.data.synthetic_flow import generate_sequence

    if min(batch_size, time_steps, height, width, window) <= 0:
        raise ValueError("batch_size, time_steps, height, width and window must be positive")
    encoding, bins = getattr(model, "encoding", "cnt"), int(getattr(model, "num_bins", 2))
    samples = []
    for b in range(batch_size):
        seq = generate_sequence(seed * 1000 + b, height=height, width=width, num_events=time_steps * window)
        reader = PassReader(ArraySource.from_sequence(seq), "events", window, encoding=encoding, num_bins=bins)
        samples.append(torch.stack([reader.read(t).inputs for t in range(time_steps)]))
    return torch.stack(samples, dim=1).to(model_device(model))


def run(model: nn.Module, inputs: torch.Tensor, time_steps: int) -> list[torch.Tensor]:
    """The seed's evaluation loop over one sequence from rest: ``clear_states()``, then one forward per window.

    Args:
        model: an event_flow network.
        inputs: ``[T, B, C, H, W]``.
        time_steps: T (must match ``inputs``).

    Returns:
        The flow list of the last pass.
    """
    if inputs.dim() != 5 or inputs.shape[0] != time_steps:
        raise ValueError(f"expected inputs [T={time_steps}, B, C, H, W], got {tuple(inputs.shape)}")
    if isinstance(model, RecurrentFlowNet):
        model.clear_states()  # every count starts from rest (the fork would carry the last membrane over)
    out: dict[str, Any] = {}
    for t in range(time_steps):
        out = model(inputs[t])
    return out["flow"]


def from_batch(batch: Any) -> torch.Tensor:
    """A collated ``event_flow_h5`` batch (``[B, T, C, H, W]`` inputs, or ``(inputs, target)``) -> ``[T, B, ...]``."""
    inputs = batch[0] if isinstance(batch, tuple | list) else batch
    return inputs.transpose(0, 1).contiguous()


def _register(name: str, description: str, step_mode: str = "single") -> Callable[[Callable[..., nn.Module]],
                                                                                    Callable[..., nn.Module]]:
    defaults = dict(_DEFAULTS, time_steps=1) if step_mode == "ann" else dict(_DEFAULTS)
    return register_model(name, make_inputs=make_inputs, run=run, step_mode=step_mode, description=description,
                          paper=_PAPER, defaults=defaults, from_batch=from_batch)


# ----------------------------------------------------------------------------- factories


@_register("lif_firenet", "event_flow LIF-FireNet (7 spiking conv layers, 2 recurrent), optical flow, 128x128")
def lif_firenet(
    *,
    base_channels: int = 32, kernel_size: int = 3, num_bins: int = 2, encoding: str = "cnt",
    neuron: str = "snntorch", neuron_kwargs: Mapping[str, Any] | None = None, pred_w_scale: float = 0.01,
) -> FireNetFamily:
    """Build LIF-FireNet.

    Args:
        base_channels: channels of every hidden layer (32; the fork's later default is 8).
        kernel_size: hidden conv kernel.
        num_bins: input channels.
        encoding: ``"cnt"`` or ``"voxel"``.
        neuron: ``"snntorch"`` (seed fork as it trains, default), ``"snntorch_bptt"`` or ``"tudelft"`` (paper).
        neuron_kwargs: neuron constructor overrides.
        pred_w_scale: prediction conv initialised ``U(-s, s)`` with zero bias (seed: 0.01).
    """
    return build_firenet(neuron=_lif_factory(neuron, neuron_kwargs), base_channels=base_channels,
                         kernel_size=kernel_size, num_bins=num_bins, encoding=encoding, pred_w_scale=pred_w_scale)


@_register("lif_firenet_short", "event_flow LIF-FireNet_short (R1b, R2b removed; the fork's variant), 128x128")
def lif_firenet_short(
    *,
    base_channels: int = 32, kernel_size: int = 3, num_bins: int = 2, encoding: str = "cnt",
    neuron: str = "snntorch", neuron_kwargs: Mapping[str, Any] | None = None, pred_w_scale: float = 0.01,
) -> FireNetFamily:
    """Build LIF-FireNet_short (head, G1, R1a, G2, R2a, pred); arguments as :func:`lif_firenet`."""
    return build_firenet(neuron=_lif_factory(neuron, neuron_kwargs), short=True, base_channels=base_channels,
                         kernel_size=kernel_size, num_bins=num_bins, encoding=encoding, pred_w_scale=pred_w_scale)


@_register("lif_fireflownet", "event_flow LIF-FireFlowNet (no recurrent convs), optical flow, 128x128")
def lif_fireflownet(
    *,
    base_channels: int = 32, kernel_size: int = 3, num_bins: int = 2, encoding: str = "cnt",
    neuron: str = "snntorch", neuron_kwargs: Mapping[str, Any] | None = None, short: bool = False,
    pred_w_scale: float | None = 0.01,
) -> FireNetFamily:
    """Build LIF-FireFlowNet; ``short`` drops R1b/R2b (the fork's ``LIFFireFlowNet_short``).

    ``pred_w_scale``: prediction conv ``U(-s, s)``, zero bias (seed: ``w_scale_pred = 0.01``, as every
    spiking FireNet); ``None`` keeps PyTorch's default init. Other arguments as :func:`lif_firenet`.
    """
    return build_firenet(neuron=_lif_factory(neuron, neuron_kwargs), recurrent=False, short=short,
                         base_channels=base_channels, kernel_size=kernel_size, num_bins=num_bins,
                         encoding=encoding, pred_w_scale=pred_w_scale)


def _variant(kind: str, neuron_kwargs: Mapping[str, Any] | None, **arch: Any) -> FireNetFamily:
    return build_firenet(neuron=neuron_factory(kind, neuron_kwargs), **arch)


@_register("plif_firenet", "event_flow PLIF-FireNet (presynaptic-trace adaptation), optical flow, 128x128")
def plif_firenet(*, base_channels: int = 32, kernel_size: int = 3, num_bins: int = 2, encoding: str = "cnt",
                 neuron_kwargs: Mapping[str, Any] | None = None, pred_w_scale: float = 0.01) -> FireNetFamily:
    """Build PLIF-FireNet (seed ``ConvPLIF`` defaults, which ``neuron_kwargs`` overrides).

    ``pred_w_scale``: as in :func:`lif_firenet`.
    """
    return _variant("plif", neuron_kwargs, base_channels=base_channels, kernel_size=kernel_size, num_bins=num_bins,
                    encoding=encoding, pred_w_scale=pred_w_scale)


@_register("alif_firenet", "event_flow ALIF-FireNet (adaptive threshold, soft reset), optical flow, 128x128")
def alif_firenet(*, base_channels: int = 32, kernel_size: int = 3, num_bins: int = 2, encoding: str = "cnt",
                 neuron_kwargs: Mapping[str, Any] | None = None, pred_w_scale: float = 0.01) -> FireNetFamily:
    """Build ALIF-FireNet (seed ``ConvALIF`` defaults, which ``neuron_kwargs`` overrides).

    ``pred_w_scale``: as in :func:`lif_firenet`.
    """
    return _variant("alif", neuron_kwargs, base_channels=base_channels, kernel_size=kernel_size, num_bins=num_bins,
                    encoding=encoding, pred_w_scale=pred_w_scale)


@_register("xlif_firenet", "event_flow XLIF-FireNet (trace-adaptive threshold), optical flow, 128x128")
def xlif_firenet(*, base_channels: int = 32, kernel_size: int = 3, num_bins: int = 2, encoding: str = "cnt",
                 neuron_kwargs: Mapping[str, Any] | None = None, pred_w_scale: float = 0.01) -> FireNetFamily:
    """Build XLIF-FireNet (seed ``ConvXLIF`` defaults, which ``neuron_kwargs`` overrides).

    ``pred_w_scale``: as in :func:`lif_firenet`.
    """
    return _variant("xlif", neuron_kwargs, base_channels=base_channels, kernel_size=kernel_size, num_bins=num_bins,
                    encoding=encoding, pred_w_scale=pred_w_scale)


@_register("spiking_rec_evflownet", "event_flow spiking recurrent EV-FlowNet (LIF U-Net), optical flow, 128x128")
def spiking_rec_evflownet(
    *,
    base_channels: int = 32, kernel_size: int = 3, num_bins: int = 2, encoding: str = "cnt",
    neuron: str = "lif", neuron_kwargs: Mapping[str, Any] | None = None,
) -> SpikingRecEVFlowNet:
    """Build SpikingRecEVFlowNet (tudelft LIF neurons with the ``train_SNN.yml`` settings by default).

    Args:
        base_channels: C.
        kernel_size: encoder/decoder kernel.
        num_bins: input channels.
        encoding: ``"cnt"`` or ``"voxel"``.
        neuron: neuron type of every block (``lif``, ``plif``, ``alif``, ``xlif``: the seed's
            Spiking/PLIF/ALIF/XLIF-RecEVFlowNet).
        neuron_kwargs: neuron constructor overrides.
    """
    defaults = _TUDELFT_LIF if neuron == "lif" else {}
    factory = neuron_factory(neuron, {**defaults, **dict(neuron_kwargs or {})})
    return SpikingRecEVFlowNet(factory, base_channels, kernel_size, num_bins=num_bins, encoding=encoding)


@_register("firenet", "event_flow ANN FireNet baseline (ConvGRU recurrent units), optical flow, 128x128")
def firenet(
    *, base_channels: int = 32, kernel_size: int = 3, num_bins: int = 2, encoding: str = "cnt"
) -> FireNetFamily:
    """Build the ANN FireNet (``ConvLayer_`` with ReLU, ConvGRU for G1/G2, default-init tanh prediction)."""
    return build_firenet(neuron=None, base_channels=base_channels, kernel_size=kernel_size, num_bins=num_bins,
                         encoding=encoding, pred_w_scale=None)


@_register("evflownet", "event_flow ANN EV-FlowNet baseline (U-Net, 4 encoders), optical flow, 128x128",
           step_mode="ann")
def evflownet(*, base_channels: int = 32, kernel_size: int = 3, num_bins: int = 2, encoding: str = "cnt") -> EVFlowNet:
    """Build the ANN EV-FlowNet (stateless; ``reset_states``/``detach_states`` are no-ops)."""
    return EVFlowNet(base_channels, kernel_size, num_bins=num_bins, encoding=encoding)


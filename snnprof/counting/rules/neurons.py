"""Spiking neurons: every SpikingJelly node (any step mode, backend), snnTorch and norse.

Each call reports neurons, neuron updates (= output elements), spikes (nonzero outputs), and
spikes per time step and per channel. Multi-step calls take ``[T, B, ...]``; single-step calls are
one time step each. Elementwise ops per update: IF 3 (integrate, compare, reset), LIF and
ParametricLIF 5 (leak, integrate, compare, reset), other ``BaseNode`` nodes and ``STBIFNode`` (a
custom op) 4 (generic estimate, flagged in the warnings). SpikingJelly's other neurons (the
pure-Torch ``SimpleBaseNode`` family, parallel, few-spike, noisy, inter-layer-connection, gated,
DSR, FlexSN ...) are observed: spikes and updates come from their output while the ops inside them
(their weights' products included) are counted one by one, as they run.
Non-spiking nodes (``NonSpiking*``) emit no spikes: their ops are counted like any module's. The
optional rules for snnTorch ``Leaky``/``Synaptic`` (5 and 7) and norse ``LIF``/``LIFCell`` (7)
register only when those packages import.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from spikingjelly.activation_based import base as sj_base
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn

from snnprof.counting.costs import Cost, NeuronActivity
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import optional_classes, out_tensor

__all__ = ["neuron_cost"]

logger = logging.getLogger(__name__)


def _time_dim(module: nn.Module) -> int | None:
    """0 for multi-step calls (``step_mode == "m"``, or a multi-step-only module), else ``None``."""
    mode = getattr(module, "step_mode", None)
    if mode is None:
        mode = "m" if isinstance(module, sj_base.MultiStepModule) else "s"
    return 0 if mode == "m" else None


def neuron_cost(spikes: torch.Tensor, time_dim: int | None, flops_per_update: int, warning: str = "") -> Cost:
    """A spiking neuron call: ``flops_per_update`` ops per update, one update per element of ``spikes``.

    Args:
        spikes: the call's output spikes (``[T, B, ...]`` when ``time_dim`` is 0).
        time_dim: 0 for a multi-step call, ``None`` for a single-step one.
        flops_per_update: elementwise ops of one state update.
        warning: a note on an estimate, shown to the user (none when empty).
    """
    activity = NeuronActivity(spikes=spikes, time_dim=time_dim, flops_per_update=flops_per_update)
    return Cost(flops=flops_per_update * spikes.numel(), neuron=activity, warnings=(warning,) if warning else ())


def _sj_cost(module: nn.Module, output: Any, flops_per_update: int, warning: str = "") -> Cost:
    return neuron_cost(out_tensor(output), _time_dim(module), flops_per_update, warning)


_NEURON = Convention(
    "neurons", "per neuron update: IF 3, LIF / ParametricLIF 5, other SpikingJelly nodes 4 (estimate, flagged); "
    "snnTorch Leaky 5, Synaptic 7; norse LIF 7",
)
_OBSERVED = Convention("neurons", "other SpikingJelly neurons: spikes and updates observed, the ops inside counted")


@register_rule(sj_neuron.IFNode, convention=_NEURON)
def sj_if(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """SpikingJelly IFNode: 3 ops per update."""
    return _sj_cost(module, output, 3)


@register_rule(sj_neuron.LIFNode, sj_neuron.ParametricLIFNode, convention=_NEURON)
def sj_lif(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """SpikingJelly LIFNode / ParametricLIFNode: 5 ops per update."""
    return _sj_cost(module, output, 5)


@register_rule(sj_neuron.BaseNode, sj_neuron.STBIFNode, convention=_NEURON)
def sj_generic(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Any other SpikingJelly node: spikes and updates exact, 4 ops per update (estimate)."""
    return _sj_cost(module, output, 4, f"{type(module).__name__}: 4 ops per neuron update assumed")


_OBSERVED_NODES = (
    "ActivationAwareIFNode", "DSRIFNode", "DSRLIFNode", "FewSpikeNode", "FlexSN", "GatedLIFNode", "ILCBaseNode",
    "MaskedPSN", "NoisyBaseNode", "PSN", "SimpleBaseNode", "SlidingPSN",
)


def _observed(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Other SpikingJelly neurons: spikes and updates from the output (the ops inside are counted one by one)."""
    return _sj_cost(module, output, 0)


_available = [getattr(sj_neuron, n) for n in _OBSERVED_NODES if hasattr(sj_neuron, n)]
register_rule(*_available, convention=_OBSERVED, transparent=True)(_observed)


def _register_optional() -> None:
    for classes, rule in (
        (optional_classes("snntorch", ("Leaky",)), _snn_leaky),
        (optional_classes("snntorch", ("Synaptic",)), _snn_synaptic),
        (optional_classes("norse.torch", ("LIF",)), _norse_rule(True)),
        (optional_classes("norse.torch", ("LIFCell",)), _norse_rule(False)),
    ):
        if classes:
            register_rule(*classes, convention=_NEURON)(rule)


def _snn_leaky(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """SnnTorch Leaky (single step): 5 ops per update."""
    return neuron_cost(out_tensor(output), None, 5)


def _snn_synaptic(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """SnnTorch Synaptic (single step): 7 ops per update."""
    return neuron_cost(out_tensor(output), None, 7)


def _norse_rule(multi: bool) -> Any:
    def rule(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        return neuron_cost(out_tensor(output), 0 if multi else None, 7)

    rule.__name__ = "norse_lif" if multi else "norse_lif_cell"
    rule.__doc__ = f"norse {'LIF (multi-step, [T, B, ...])' if multi else 'LIFCell (single step)'}: 7 ops per update."
    return rule


_register_optional()

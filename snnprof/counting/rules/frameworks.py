"""Counting rules for neurons of other SNN frameworks that the engine's rules do not cover.

Registered only when the framework imports (optional extra ``frameworks``):

* Norse ``LIFBoxCell`` (a LIF without synaptic current; what Norse maps NIR ``LIF`` to) 5 ops per
  update, ``IAFCell`` 3, ``LIBoxCell`` (non-spiking) 4 per element; single-step calls;
* Sinabs ``LIF`` 5 and ``IAF`` 3 ops per update, on Sinabs' ``[B, T, ...]`` layout (the spikes are
  viewed as ``[T, B, ...]``; the ``*Squeeze`` variants' ``[B*T, ...]`` is unflattened with their
  ``batch_size``/``num_timesteps`` first). Sinabs' default ``MultiSpike`` emits several spikes per
  step: they count once per neuron and step (use ``SingleSpike`` for binary spikes).
* Sinabs ``LIFRecurrent`` / ``IAFRecurrent`` are observed, like SpikingJelly's other neurons: spikes
  and updates come from the output while the ops inside, the synapses of their ``rec_connect``
  module included, are counted one by one as they run (an opaque 5/3-per-update rule would hide
  those synapses).
* Sinabs ``ExpLeak`` (a non-spiking leaky integrator; a subclass of ``LIF``) 2 ops per element
  (leak, integrate).
* snnTorch ``RLeaky`` / ``RSynaptic`` (single step, with a ``recurrent`` Linear or convolution) are
  observed the same way: spikes and updates from the output's spikes, the ops inside (the recurrent
  synapses, then the leak and reset) counted one by one as they run.

:mod:`snnprof.counting.rules.neurons` covers snnTorch ``Leaky``/``Synaptic`` and Norse
``LIF``/``LIFCell``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from snnprof.counting.costs import Cost
from snnprof.counting.registry import Convention, register_rule
from snnprof.counting.rules._util import optional_classes, out_tensor
from snnprof.counting.rules.neurons import neuron_cost

__all__ = ["register_framework_rules"]

logger = logging.getLogger(__name__)

_NEURONS = Convention("neurons", "Norse LIFBoxCell 5, IAFCell 3; Sinabs LIF 5, IAF 3 per update (spikes observed)")
_STATE = Convention("elementwise", "Norse LIBoxCell 4 per output element")
_OBSERVED = Convention("neurons", "Sinabs LIFRecurrent, IAFRecurrent: spikes and updates observed, the ops inside "
                                  "(rec_connect's synapses included) counted")
_SNN_RECURRENT = Convention("neurons", "snnTorch RLeaky, RSynaptic: spikes and updates observed, the ops inside "
                                        "(the recurrent synapses included) counted")
_LEAK = Convention("elementwise", "Sinabs ExpLeak 2 per output element")


def _single_step(ops: int) -> Any:
    def rule(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        return neuron_cost(out_tensor(output), None, ops)

    rule.__name__ = f"single_step_neuron_{ops}"
    rule.__doc__ = f"A single-step neuron cell: {ops} ops per update, spikes from its output."
    return rule


def _time_major(module: nn.Module, output: Any) -> tuple[torch.Tensor, int | None]:
    """``(spikes, time_dim)`` of a Sinabs layer's output, viewed as ``[T, B, ...]`` (no time dim below 2 dims).

    Sinabs layers return ``[B, T, ...]``; ``SqueezeMixin`` layers (``LIFSqueeze``, ``IAFSqueeze``)
    return ``[B*T, ...]``, unflattened with their ``batch_size``/``num_timesteps`` (one may be -1).
    """
    spikes = out_tensor(output)
    if isinstance(getattr(module, "num_timesteps", None), int) and isinstance(getattr(module, "batch_size", None), int):
        spikes = spikes.reshape(module.batch_size, module.num_timesteps, *spikes.shape[1:])
    return (spikes, None) if spikes.dim() < 2 else (spikes.transpose(0, 1), 0)


def _batch_time(ops: int) -> Any:
    def rule(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        return neuron_cost(*_time_major(module, output), ops)

    rule.__name__ = f"batch_time_neuron_{ops}"
    rule.__doc__ = f"A [B, T, ...] neuron layer: {ops} ops per update, spikes from its output."
    return rule


def _batch_time_observed(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Sinabs LIFRecurrent / IAFRecurrent: spikes and updates observed; the ops inside (rec_connect's) counted."""
    return neuron_cost(*_time_major(module, output), 0)


def _single_step_observed(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """SnnTorch RLeaky / RSynaptic (single step): spikes and updates observed; the ops inside counted."""
    return neuron_cost(out_tensor(output), None, 0)


def _leak(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Sinabs ExpLeak (non-spiking leaky integrator): 2 ops per element."""
    return Cost(flops=2 * out_tensor(output).numel())


def _state_cell(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Norse LIBoxCell (non-spiking, single step): 4 ops per element."""
    return Cost(flops=4 * out_tensor(output).numel())


def register_framework_rules() -> None:
    """Register the rules of every framework that imports (each class once)."""
    table = [
        (optional_classes("norse.torch", ("LIFBoxCell",)), _single_step(5), _NEURONS),
        (optional_classes("norse.torch", ("IAFCell",)), _single_step(3), _NEURONS),
        (optional_classes("norse.torch", ("LIBoxCell",)), _state_cell, _STATE),
        (optional_classes("sinabs.layers", ("LIF",)), _batch_time(5), _NEURONS),
        (optional_classes("sinabs.layers", ("IAF",)), _batch_time(3), _NEURONS),
        (optional_classes("sinabs.layers", ("ExpLeak",)), _leak, _LEAK),
    ]
    for classes, rule, convention in table:
        if classes:
            register_rule(*classes, convention=convention)(rule)
    recurrent = optional_classes("sinabs.layers", ("LIFRecurrent", "IAFRecurrent"))
    if recurrent:
        register_rule(*recurrent, convention=_OBSERVED, transparent=True)(_batch_time_observed)
    snn_recurrent = optional_classes("snntorch", ("RLeaky", "RSynaptic"))
    if snn_recurrent:
        register_rule(*snn_recurrent, convention=_SNN_RECURRENT, transparent=True)(_single_step_observed)


register_framework_rules()

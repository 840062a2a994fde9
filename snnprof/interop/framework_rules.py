"""Counting rules for neurons of other SNN frameworks that the engine's rules do not cover.

Registered only when the framework imports (optional extra ``frameworks``):

* Norse ``LIFBoxCell`` (a LIF without synaptic current; what Norse maps NIR ``LIF`` to) 5 ops per
  update, ``IAFCell`` 3, ``LIBoxCell`` (non-spiking) 4 per element; single-step calls;
* Sinabs ``LIF`` / ``LIFRecurrent`` 5 and ``IAF`` / ``IAFRecurrent`` 3 ops per update, on Sinabs'
  ``[B, T, ...]`` layout (the spikes are viewed as ``[T, B, ...]``). Sinabs' default ``MultiSpike``
  emits several spikes per step: they count once per neuron and step (use ``SingleSpike`` for
  binary spikes).

The engine (:mod:`snnprof.counting.rules.neurons`) already covers snnTorch ``Leaky``/``Synaptic``
and Norse ``LIF``/``LIFCell``.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from torch import nn

from snnprof.counting import Convention, Cost, NeuronActivity, register_rule
from snnprof.counting.rules._util import out_tensor

__all__ = ["register_framework_rules"]

logger = logging.getLogger(__name__)

_NEURONS = Convention("neurons", "Norse LIFBoxCell 5, IAFCell 3; Sinabs LIF 5, IAF 3 per update (spikes observed)")
_STATE = Convention("elementwise", "Norse LIBoxCell 4 per output element")


def _optional(module: str, names: tuple[str, ...]) -> list[type]:
    """The classes ``names`` of ``module`` that exist (none when the package does not import)."""
    try:
        found = importlib.import_module(module)
    except Exception:  # noqa: BLE001  (optional framework missing or broken: no rule)
        return []
    return [getattr(found, n) for n in names if isinstance(getattr(found, n, None), type)]


def _single_step(ops: int) -> Any:
    def rule(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        spikes = out_tensor(output)
        return Cost(flops=ops * spikes.numel(), neuron=NeuronActivity(spikes=spikes, time_dim=None,
                                                                       flops_per_update=ops))

    rule.__name__ = f"single_step_neuron_{ops}"
    rule.__doc__ = f"A single-step neuron cell: {ops} ops per update, spikes from its output."
    return rule


def _batch_time(ops: int) -> Any:
    def rule(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
        spikes = out_tensor(output)
        steps = spikes.transpose(0, 1) if spikes.dim() >= 2 else spikes
        return Cost(flops=ops * spikes.numel(), neuron=NeuronActivity(spikes=steps, time_dim=0 if spikes.dim() >= 2
                                                                       else None, flops_per_update=ops))

    rule.__name__ = f"batch_time_neuron_{ops}"
    rule.__doc__ = f"A [B, T, ...] neuron layer: {ops} ops per update, spikes from its output."
    return rule


def _state_cell(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """Norse LIBoxCell (non-spiking, single step): 4 ops per element."""
    return Cost(flops=4 * out_tensor(output).numel())


def register_framework_rules() -> None:
    """Register the rules of every framework that imports (each class once)."""
    table = [
        (_optional("norse.torch", ("LIFBoxCell",)), _single_step(5), _NEURONS),
        (_optional("norse.torch", ("IAFCell",)), _single_step(3), _NEURONS),
        (_optional("norse.torch", ("LIBoxCell",)), _state_cell, _STATE),
        (_optional("sinabs.layers", ("LIF", "LIFRecurrent")), _batch_time(5), _NEURONS),
        (_optional("sinabs.layers", ("IAF", "IAFRecurrent")), _batch_time(3), _NEURONS),
    ]
    for classes, rule, convention in table:
        if classes:
            register_rule(*classes, convention=convention)(rule)


register_framework_rules()

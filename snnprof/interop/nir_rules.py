"""Counting rules of the NIR node modules (:mod:`snnprof.interop.nir_nodes`), one call = one time step.

Spiking nodes report neurons, updates and spikes as SpikingJelly's do, with the same elementwise
ops per update: ``IF`` 3 (integrate, compare, reset) and ``LIF`` 5 (leak, integrate, compare,
reset), ``CubaLIF`` 7 (as snnTorch ``Synaptic``), ``Threshold`` 1 (a stateless compare). The
non-spiking state nodes emit no spikes and count their ops like any elementwise module: ``LI`` 4,
``CubaLI`` 7, ``I`` 2, ``Scale`` 1 per element. Synaptic nodes (``Affine``, ``Linear``, conv,
pooling) are mapped to ``torch.nn`` layers and counted by the built-in rules.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from snnprof.counting import Convention, Cost, NeuronActivity, register_rule
from snnprof.counting.rules._util import out_tensor
from snnprof.interop.nir_nodes import (
    NIRIF,
    NIRLI,
    NIRLIF,
    NIRCubaLI,
    NIRCubaLIF,
    NIRIntegrator,
    NIRScale,
    NIRThreshold,
)

__all__ = ["OPS_PER_UPDATE"]

logger = logging.getLogger(__name__)

#: Elementwise ops per neuron update (spiking nodes) or per element (state and scale nodes).
OPS_PER_UPDATE: dict[type, int] = {
    NIRIF: 3, NIRLIF: 5, NIRCubaLIF: 7, NIRThreshold: 1, NIRLI: 4, NIRCubaLI: 7, NIRIntegrator: 2, NIRScale: 1,
}

_SPIKING = Convention("neurons", "NIR nodes per update: IF 3, LIF 5, CubaLIF 7, Threshold 1 (spikes observed)")
_STATE = Convention("elementwise", "NIR LI 4, CubaLI 7, I 2, Scale 1 per output element")


@register_rule(NIRIF, NIRLIF, NIRCubaLIF, NIRThreshold, convention=_SPIKING)
def nir_spiking(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """NIR spiking node (one step): neurons, updates and spikes of its output; ops per update from the table."""
    spikes = out_tensor(output)
    ops = OPS_PER_UPDATE[type(module)]
    return Cost(flops=ops * spikes.numel(), neuron=NeuronActivity(spikes=spikes, time_dim=None, flops_per_update=ops))


@register_rule(NIRLI, NIRCubaLI, NIRIntegrator, NIRScale, convention=_STATE)
def nir_state(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """NIR non-spiking node (one step): its elementwise ops per output element."""
    return Cost(flops=OPS_PER_UPDATE[type(module)] * out_tensor(output).numel())

"""SpikingJelly layers that are not subclasses of a torch layer with a rule.

``layer.Dropout`` / ``layer.Dropout2d`` are ``MemoryModule``s (their mask is kept across time
steps), not ``nn.Dropout``s: zero cost, like every dropout. ``PrintShapeModule`` prints and returns
its input. The other SpikingJelly layers are containers or compositions of counted modules and ops.
"""

from __future__ import annotations

from typing import Any

from spikingjelly.activation_based import layer as sj_layer
from torch import nn

from snnprof.counting.costs import Cost
from snnprof.counting.registry import Convention, register_rule

__all__: list[str] = []


@register_rule(sj_layer.Dropout, sj_layer.PrintShapeModule, convention=Convention("zero", "0"))
def sj_zero_cost(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Cost:
    """SpikingJelly dropout (mask kept over time steps) and shape printing: no arithmetic."""
    return Cost()

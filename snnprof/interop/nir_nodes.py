r"""PyTorch modules for the NIR nodes that nirtorch does not map (or maps wrongly), one time step each.

nirtorch 2.6's ``DEFAULT_MAP`` maps Affine, Linear, Conv1d/2d, AvgPool2d, SumPool2d and Flatten;
neurons, ``Scale`` and ``Threshold`` are left to each framework. We add them here (nirtorch has no
neuron mapping of its own, so a small module per node is needed), and replace five default
mappings: ``Conv1d``/``Conv2d`` (nirtorch passes NumPy scalars as stride and padding, which end up
in the layers' geometry and cannot be written as JSON), ``Affine`` (nirtorch 2.6 sets
``weight.bias`` instead of the layer's bias, so the bias is lost), ``SumPool2d`` (nirtorch uses
``LPPool2d(norm_type=1)``, which drops padding and takes ``|x|``; here
``AvgPool2d(divisor_override=1)``, an exact sum) and ``Flatten`` (NIR's ``start_dim``/``end_dim``
do not count the batch axis: NIR 0 is torch 1, as snnTorch exports it).

Discretisation (forward Euler with step ``dt``, in the graph's time unit; ``tau/dt`` is
precomputed so that ``dt = 1`` reproduces SpikingJelly's ``v + (x - v) / tau`` bit for bit):

* ``LIF``: :math:`v \leftarrow v + ((v_{leak} - v) + r x) / (\tau/dt)`; spike :math:`z = [v > v_{th}]`;
  :math:`v \leftarrow v_{reset}` where :math:`z = 1`.
* ``CubaLIF``: the synaptic current first, :math:`I \leftarrow I + (w_{in} x - I) / (\tau_{syn}/dt)`,
  then the membrane as LIF with input :math:`I` (snnTorch's ``Synaptic`` order).
* ``LI`` / ``CubaLI``: as LIF / CubaLIF without spikes; the output is the membrane.
* ``IF`` and ``I`` (integrator): :math:`v \leftarrow v + r x` per step (no ``dt``, as Norse's IAF and
  SpikingJelly's ``IFNode``); IF spikes and resets like LIF.
* ``Threshold``: :math:`z = [x > \theta]`; ``Scale``: :math:`x \odot s`.

Membranes start at ``v_reset`` (spiking nodes) or ``v_leak`` (LI), currents at 0. Stateful
modules take ``(x, state)`` and return ``(output, state)``, as nirtorch's graph executor expects.
"""

from __future__ import annotations

import logging
from typing import Any

import nir
import numpy as np
import torch
from torch import nn

__all__ = [
    "TIME_CONSTANTS",
    "NIRCubaLI",
    "NIRCubaLIF",
    "NIRIF",
    "NIRLI",
    "NIRLIF",
    "NIRIntegrator",
    "NIRScale",
    "NIRThreshold",
    "node_map",
]

logger = logging.getLogger(__name__)


def _buffer(value: Any) -> torch.Tensor:
    """A NIR parameter (array or scalar) as a float32 tensor."""
    return torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=torch.float32)


def _steps(tau: Any, dt: float) -> torch.Tensor:
    """``tau / dt`` in float64, then float32: how many steps a time constant spans."""
    return _buffer(np.asarray(tau, dtype=np.float64) / dt)


#: Time-constant fields of the NIR node types (what ``dt`` must not exceed).
TIME_CONSTANTS: dict[type, tuple[str, ...]] = {
    nir.LIF: ("tau",), nir.LI: ("tau",), nir.CubaLIF: ("tau_syn", "tau_mem"), nir.CubaLI: ("tau_syn", "tau_mem"),
}


class _Neuron(nn.Module):
    """Shared buffer registration of the NIR neuron modules."""

    def _register(self, **params: Any) -> None:
        for name, value in params.items():
            self.register_buffer(name, _buffer(value) if not isinstance(value, torch.Tensor) else value)

    def _spike(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Spikes of ``v`` and the membrane after the reset."""
        fired = v > self.v_threshold
        return fired.to(v.dtype), torch.where(fired, self.v_reset.expand_as(v), v)


class NIRLIF(_Neuron):
    """NIR ``LIF``: leaky integrate-and-fire (see the module docstring)."""

    def __init__(self, node: nir.LIF, dt: float) -> None:
        super().__init__()
        self._register(tau_steps=_steps(node.tau, dt), r=node.r, v_leak=node.v_leak,
                       v_threshold=node.v_threshold, v_reset=node.v_reset)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``(spikes, membrane)``."""
        v = self.v_reset.expand_as(x) if state is None else state
        v = v + ((self.v_leak - v) + self.r * x) / self.tau_steps
        return self._spike(v)


class NIRCubaLIF(_Neuron):
    """NIR ``CubaLIF``: current-based LIF (current first, then membrane)."""

    def __init__(self, node: nir.CubaLIF, dt: float) -> None:
        super().__init__()
        self._register(syn_steps=_steps(node.tau_syn, dt), mem_steps=_steps(node.tau_mem, dt),
                       r=node.r, v_leak=node.v_leak, v_threshold=node.v_threshold, v_reset=node.v_reset,
                       w_in=node.w_in)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One step: ``(spikes, (current, membrane))``."""
        i, v = (torch.zeros_like(x), self.v_reset.expand_as(x)) if state is None else state
        i = i + (self.w_in * x - i) / self.syn_steps
        v = v + ((self.v_leak - v) + self.r * i) / self.mem_steps
        z, v = self._spike(v)
        return z, (i, v)


class NIRIF(_Neuron):
    """NIR ``IF``: integrate-and-fire, ``v += r x`` per step."""

    def __init__(self, node: nir.IF) -> None:
        super().__init__()
        self._register(r=node.r, v_threshold=node.v_threshold, v_reset=node.v_reset)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``(spikes, membrane)``."""
        v = self.v_reset.expand_as(x) if state is None else state
        return self._spike(v + self.r * x)


class NIRLI(_Neuron):
    """NIR ``LI``: leaky integrator; the output is the membrane."""

    def __init__(self, node: nir.LI, dt: float) -> None:
        super().__init__()
        self._register(tau_steps=_steps(node.tau, dt), r=node.r, v_leak=node.v_leak)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``(membrane, membrane)``."""
        v = self.v_leak.expand_as(x) if state is None else state
        v = v + ((self.v_leak - v) + self.r * x) / self.tau_steps
        return v, v


class NIRCubaLI(_Neuron):
    """NIR ``CubaLI``: current-based leaky integrator; the output is the membrane."""

    def __init__(self, node: nir.CubaLI, dt: float) -> None:
        super().__init__()
        self._register(syn_steps=_steps(node.tau_syn, dt), mem_steps=_steps(node.tau_mem, dt),
                       r=node.r, v_leak=node.v_leak, w_in=node.w_in)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One step: ``(membrane, (current, membrane))``."""
        i, v = (torch.zeros_like(x), self.v_leak.expand_as(x)) if state is None else state
        i = i + (self.w_in * x - i) / self.syn_steps
        v = v + ((self.v_leak - v) + self.r * i) / self.mem_steps
        return v, (i, v)


class NIRIntegrator(_Neuron):
    """NIR ``I``: integrator, ``v += r x`` per step; the output is the membrane."""

    def __init__(self, node: nir.I) -> None:
        super().__init__()
        self._register(r=node.r)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One step: ``(membrane, membrane)``."""
        v = (torch.zeros_like(x) if state is None else state) + self.r * x
        return v, v


class NIRThreshold(_Neuron):
    """NIR ``Threshold``: stateless spikes ``x > threshold``."""

    def __init__(self, node: nir.Threshold) -> None:
        super().__init__()
        self._register(threshold=node.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes (0/1 in the input's dtype)."""
        return (x > self.threshold).to(x.dtype)


class NIRScale(_Neuron):
    """NIR ``Scale``: elementwise product with a fixed vector."""

    def __init__(self, node: nir.Scale) -> None:
        super().__init__()
        self._register(scale=node.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x * scale``."""
        return x * self.scale


def _pair(value: Any) -> tuple[int, ...] | int:
    array = np.asarray(value).astype(int).reshape(-1)
    return int(array[0]) if array.size == 1 else tuple(int(v) for v in array)


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in np.atleast_1d(np.asarray(value)).reshape(-1))


def _conv(node: nir.Conv1d | nir.Conv2d, dims: int) -> nn.Module:
    """Conv1d/Conv2d with Python ints (nirtorch passes NumPy scalars, which JSON outputs cannot hold)."""
    weight = _buffer(node.weight)
    klass = nn.Conv1d if dims == 1 else nn.Conv2d

    def arg(value: Any) -> tuple[int, ...]:
        ints = _ints(value)
        return ints * dims if len(ints) == 1 else ints

    padding = node.padding if isinstance(node.padding, str) else arg(node.padding)
    module = klass(weight.shape[1] * int(node.groups), weight.shape[0], tuple(weight.shape[2:]),
                   stride=arg(node.stride), padding=padding, dilation=arg(node.dilation), groups=int(node.groups),
                   bias=True)
    module.weight.data = weight
    module.bias.data = _buffer(node.bias)
    return module


def _affine(node: nir.Affine) -> nn.Linear:
    weight = _buffer(node.weight)
    module = nn.Linear(weight.shape[-1], weight.shape[-2], bias=True)
    module.weight.data = weight
    module.bias.data = _buffer(node.bias)
    return module


def _sum_pool(node: nir.SumPool2d) -> nn.AvgPool2d:
    return nn.AvgPool2d(_pair(node.kernel_size), _pair(node.stride), _pair(node.padding), divisor_override=1)


def _avg_pool(node: nir.AvgPool2d) -> nn.AvgPool2d:
    return nn.AvgPool2d(_pair(node.kernel_size), _pair(node.stride), _pair(node.padding))


def _flatten(node: nir.Flatten) -> nn.Flatten:
    start, end = int(node.start_dim), int(node.end_dim)
    return nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)


def node_map(dt: float) -> dict[type, Any]:
    """The NIR node types this module maps, each with its module factory (nirtorch's ``node_map``).

    Args:
        dt: the time step, in the graph's time unit (what its ``tau`` values are in).
    """
    return {
        nir.Affine: _affine,
        nir.Conv1d: lambda node: _conv(node, 1),
        nir.Conv2d: lambda node: _conv(node, 2),
        nir.SumPool2d: _sum_pool,
        nir.AvgPool2d: _avg_pool,
        nir.Flatten: _flatten,
        nir.LIF: lambda node: NIRLIF(node, dt),
        nir.CubaLIF: lambda node: NIRCubaLIF(node, dt),
        nir.IF: NIRIF,
        nir.LI: lambda node: NIRLI(node, dt),
        nir.CubaLI: lambda node: NIRCubaLI(node, dt),
        nir.I: NIRIntegrator,
        nir.Threshold: NIRThreshold,
        nir.Scale: NIRScale,
    }

"""Load a NIR graph (``.nir`` file) as a PyTorch module that snnprof profiles with its usual rules.

The graph is mapped node by node with :func:`nirtorch.nir_to_torch` (its ``DEFAULT_MAP`` plus the
neuron, ``Scale``, ``Threshold``, ``Affine``, ``SumPool2d`` and ``Flatten`` modules of
:mod:`snnprof.interop.nir_nodes`) and wired by nirtorch's graph executor, which also handles
recurrent edges (a node fed by a later one gets that node's output of the previous step) and
nested subgraphs. :class:`NIRNetwork` steps that executor through time: it takes ``[T, B, ...]``
and returns the stacked outputs, one executor call per step with the state carried over.

Layers are named after the graph's nodes (dots become underscores, as nirtorch does), so a profile
of a NIR graph reads like the graph. ``dt`` is the time step in the graph's time unit: an argument,
else the graph's ``metadata["dt"]``, else 1 (time constants given in steps). Graphs exported by
snnTorch use ``dt = 1e-4``, Norse ``1e-3``; a ``dt`` larger than a time constant is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nir
import nirtorch
import numpy as np
import torch
from nirtorch.nir_interpreter import DEFAULT_MAP
from torch import nn

from snnprof.interop import nir_rules  # noqa: F401  (registers the counting rules of the NIR modules)
from snnprof.interop.nir_nodes import TIME_CONSTANTS, node_map
from snnprof.quiet import quiet_libraries

__all__ = ["DEFAULT_DT", "NIRImportError", "NIRNetwork", "graph_input_shape", "load_nir", "read_graph"]

logger = logging.getLogger(__name__)

#: Time step used when neither the caller nor the graph's metadata gives one (time constants in steps).
DEFAULT_DT = 1.0
#: A time constant stored in float32 may sit just below the float64 dt it equals (1e-4 in float32 < 1e-4).
_RELATIVE_SLACK = 1e-6


class NIRImportError(ValueError):
    """A NIR graph cannot be read or mapped (the message names the file or the node).

    Attributes:
        about_dt: the problem is the time step (a ``dt`` longer than a time constant, or not positive).
    """

    def __init__(self, message: str, about_dt: bool = False) -> None:
        super().__init__(message)
        self.about_dt = about_dt


def read_graph(path: str | Path) -> nir.NIRGraph:
    """Read a ``.nir`` file.

    Raises:
        NIRImportError: the file is missing or not a NIR graph.
    """
    try:
        with quiet_libraries():
            graph = nir.read(str(path))
    except Exception as err:  # noqa: BLE001  (h5py and nir raise many types for bad files)
        text = str(err).strip().splitlines()
        raise NIRImportError(f"cannot read {path} as a NIR graph: {type(err).__name__}: "
                             f"{text[0] if text else ''}".rstrip(": ")) from None
    if not isinstance(graph, nir.NIRGraph):
        graph = nir.NIRGraph.from_list(graph)
    return graph


def _walk(graph: nir.NIRGraph, prefix: str = "") -> Iterator[tuple[str, nir.NIRNode]]:
    """``(dotted name, node)`` of every node, subgraphs included."""
    for name, node in graph.nodes.items():
        yield prefix + name, node
        if isinstance(node, nir.NIRGraph):
            yield from _walk(node, f"{prefix}{name}.")


def _check_nodes(graph: nir.NIRGraph, dt: float) -> None:
    """Every node has a mapping, and ``dt`` does not exceed a time constant.

    Raises:
        NIRImportError: naming the first node at fault.
    """
    known = set(DEFAULT_MAP) | set(node_map(dt)) | {nir.NIRGraph}
    for name, node in _walk(graph):
        if type(node) not in known:
            supported = ", ".join(sorted({t.__name__ for t in known} - {"NIRGraph", "Input", "Output"}))
            raise NIRImportError(f"node {name!r}: NIR {type(node).__name__} is not supported; supported nodes: "
                                 f"{supported}")
        for field in TIME_CONSTANTS.get(type(node), ()):
            tau = np.asarray(getattr(node, field), dtype=np.float64)
            if tau.size and float(tau.min()) < dt * (1 - _RELATIVE_SLACK):
                raise NIRImportError(f"node {name!r}: {field} down to {float(tau.min()):g} is shorter than dt = "
                                     f"{dt:g} (an Euler step must not exceed a time constant); give the graph's dt, "
                                     "e.g. dt = 1e-4 for graphs exported by snnTorch, 1e-3 by Norse", about_dt=True)


def graph_input_shape(graph: nir.NIRGraph) -> tuple[int, ...] | None:
    """The per-sample input shape the graph declares (no batch or time axis), or ``None``."""
    inputs = [n for n in graph.nodes.values() if isinstance(n, nir.Input)]
    if len(inputs) != 1:
        return None
    shape = inputs[0].input_type.get("input")
    if shape is None:
        return None
    dims = tuple(int(s) for s in np.asarray(shape).reshape(-1))
    return dims if dims and all(d > 0 for d in dims) else None


def graph_dt(graph: nir.NIRGraph, dt: float | None) -> float:
    """``dt`` if given, else the graph's ``metadata["dt"]``, else :data:`DEFAULT_DT`."""
    if dt is not None:
        return float(dt)
    meta = getattr(graph, "metadata", None) or {}
    value = meta.get("dt") if isinstance(meta, dict) else None
    return float(np.asarray(value).reshape(-1)[0]) if value is not None else DEFAULT_DT


class NIRNetwork(nn.Module):
    """A NIR graph stepped through time: ``[T, B, ...]`` in, stacked ``[T, B, ...]`` out.

    Its children are the graph's nodes (so layers carry the nodes' names); the executor that wires
    them (a :class:`torch.fx.GraphModule` from nirtorch) is kept outside the module tree.

    Attributes:
        dt: the time step the neurons were discretised with.
        input_shape: the per-sample input shape the graph declares, or ``None``.
    """

    def __init__(self, executor: torch.fx.GraphModule, dt: float, input_shape: tuple[int, ...] | None) -> None:
        super().__init__()
        for name, module in executor.named_children():
            self.add_module(name, module)
        object.__setattr__(self, "_executor", executor)  # not a child: layer names stay the node names
        self.dt = dt
        self.input_shape = input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run every time step of ``x`` (``[T, B, ...]``) with fresh state; returns ``[T, B, ...]``."""
        state: Any = None
        outputs = []
        for t in range(x.shape[0]):
            out, state = self._executor(x[t], state)
            outputs.append(out)
        return torch.stack(outputs)


def load_nir(source: str | Path | nir.NIRGraph, dt: float | None = None) -> NIRNetwork:
    """Map a NIR graph (a ``.nir`` path or a :class:`nir.NIRGraph`) to a :class:`NIRNetwork`.

    Example:
        >>> net = load_nir("graph.nir", dt=1e-4)               # doctest: +SKIP
        >>> result = snnprof.profile(net, spikes)              # doctest: +SKIP  (spikes: [T, B, ...])

    Args:
        source: the graph or its file.
        dt: time step in the graph's time unit (default: ``metadata["dt"]``, else 1).

    Raises:
        NIRImportError: unreadable file, unsupported node, ``dt`` above a time constant, or a graph
            nirtorch cannot wire (no input or output node, several inputs).
    """
    graph = read_graph(source) if isinstance(source, (str, Path)) else source
    step = graph_dt(graph, dt)
    if not step > 0:
        raise NIRImportError(f"expected dt > 0, got {step:g}", about_dt=True)
    _check_nodes(graph, step)
    try:
        with quiet_libraries():
            executor = nirtorch.nir_to_torch(graph, node_map(step))
    except Exception as err:  # noqa: BLE001  (nirtorch raises ValueError, NotImplementedError, KeyError ...)
        text = str(err).strip().splitlines()
        raise NIRImportError(f"nirtorch cannot build the graph: {type(err).__name__}: {text[0] if text else ''}"
                             ) from None
    return NIRNetwork(executor, step, graph_input_shape(graph))

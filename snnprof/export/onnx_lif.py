"""ONNX export of the event_flow LIF-FireNet family, one time step per graph call, state in and out.

The graph computes exactly one forward pass of the network::

    (events [B, C, H, W], state_<layer> [S, B, C_l, H, W] for every layer)
        -> (flow [B, 2, H, W], next_state_<layer> ...)

where ``state_<layer>`` stacks the layer's membrane potential, its previous spikes and (PLIF, ALIF,
XLIF) its trace or adaptive threshold. Feeding ``next_state_*`` back as ``state_*`` runs the
network over a sequence; all-zero states start a sequence (``clear_states()``).

The neuron updates are exported in standard ONNX operators (``Mul``, ``Add``, ``Sub``, ``Greater``,
``Cast``, ``Sigmoid``/``Clip`` folded into constants ...), so any ONNX runtime runs the graph; no
custom operator library (like the seed fork's ``SNN_implementation::LIF``) is needed. For the
default ``neuron = "snntorch"`` networks the update is the fork's LIF op:
``m = beta * mem + input; spike = m > thr; mem_out = spike ? 0 : m`` (the fork's C++ op fires at
``m >= thr``; snnTorch, which the fork trains with, at ``m > thr``; we follow snnTorch).
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from snnprof.errors import SnnprofError
from snnprof.models.event_flow_cells import SpikingConvCell
from snnprof.models.event_flow_nets import FireNetFamily

__all__ = [
    "DEFAULT_OPSET",
    "ExportError",
    "OnnxExport",
    "OnnxStep",
    "VerifyReport",
    "check_exportable",
    "export_onnx",
    "initial_states",
    "run_onnx",
    "verify_onnx",
]

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 18


def _umask() -> int:
    """The process umask (files written via a temporary file get the usual permissions)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


class ExportError(SnnprofError):
    """The model cannot be exported, or a needed package is missing."""


@dataclass(frozen=True)
class OnnxExport:
    """What was exported.

    Attributes:
        path: the ``.onnx`` file.
        layers: the stateful layers, in state order.
        input_shapes: graph input name -> shape.
        output_names: graph outputs (``flow`` then ``next_state_<layer>``).
        opset: ONNX opset version.
        op_types: operator type -> count in the graph.
    """

    path: Path
    layers: tuple[str, ...]
    input_shapes: dict[str, list[int]]
    output_names: tuple[str, ...]
    opset: int
    op_types: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VerifyReport:
    """PyTorch vs ONNX Runtime over a sequence.

    Attributes:
        steps: time steps compared.
        spike_mismatches: spikes (over all layers and steps) that differ.
        spikes: spikes emitted by PyTorch over all layers and steps.
        max_membrane_diff: largest absolute membrane difference.
        max_flow_diff: largest absolute flow difference.
    """

    steps: int
    spike_mismatches: int
    spikes: int
    max_membrane_diff: float
    max_flow_diff: float


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(
            f"ONNX export needs the '{module}' package; install it with: pip install onnx onnxscript onnxruntime"
        ) from None


def check_exportable(model: nn.Module) -> FireNetFamily:
    """Return ``model`` if it is a spiking FireNet-family network (LIF/PLIF/ALIF/XLIF-FireNet, FireFlowNet).

    Raises:
        ExportError: any other model.
    """
    if not isinstance(model, FireNetFamily) or not all(
        isinstance(getattr(model, n), SpikingConvCell) for n in model.layer_names
    ):
        raise ExportError(
            f"ONNX export supports the spiking FireNet family (lif_firenet, lif_firenet_short, lif_fireflownet, "
            f"plif/alif/xlif_firenet), not {type(model).__name__}"
        )
    return model


class OnnxStep(nn.Module):
    """One time step of a FireNet-family network with explicit states: ``(events, *states) -> (flow, *states')``."""

    def __init__(self, net: FireNetFamily) -> None:
        super().__init__()
        self.net = net

    def forward(self, events: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run one pass from ``states``; returns the flow and the new states."""
        self.net.states = list(states)
        flow = self.net(events)["flow"][0]
        return (flow, *self.net._states)


def initial_states(model: FireNetFamily, batch_size: int, height: int, width: int) -> list[torch.Tensor]:
    """All-zero states (a sequence start) ``[S, B, C, H, W]`` per layer, on the model's device."""
    device = next(model.parameters()).device
    states = []
    for name in model.layer_names:
        cell: SpikingConvCell = getattr(model, name)
        shape = (cell.neuron.state_size, batch_size, cell.neuron.channels, height, width)
        states.append(torch.zeros(shape, device=device))
    return states


def _op_types(path: Path) -> tuple[int, dict[str, int]]:
    onnx = _require("onnx")
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
    return opset, dict(sorted(Counter(n.op_type for n in proto.graph.node).items()))


def export_onnx(
    model: nn.Module, path: str | os.PathLike[str], *, batch_size: int, height: int, width: int,
    opset: int = DEFAULT_OPSET,
) -> OnnxExport:
    """Export one time step of a spiking FireNet-family network to ONNX (written atomically).

    Args:
        model: the network (put in eval mode; its recurrent state is reset afterwards).
        path: destination ``.onnx`` file.
        batch_size: B of the graph's (static) input shapes.
        height: H, pixels.
        width: W, pixels.
        opset: ONNX opset version.

    Raises:
        ExportError: unsupported model or missing ``onnx``/``onnxscript``.
    """
    net = check_exportable(model)
    _require("onnx")
    _require("onnxscript")
    net.eval()
    events = torch.zeros(batch_size, net.num_bins, height, width, device=next(net.parameters()).device)
    states = initial_states(net, batch_size, height, width)
    names = tuple(net.layer_names)
    inputs = ["events", *(f"state_{n}" for n in names)]
    outputs = ["flow", *(f"next_state_{n}" for n in names)]
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".onnx")
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*were assigned during export.*")
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*LeafSpec.*")
            torch.onnx.export(OnnxStep(net).eval(), (events, *states), tmp, input_names=inputs, output_names=outputs,
                              opset_version=opset, dynamo=True, external_data=False, verbose=False)
        version, ops = _op_types(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)
        net.clear_states()
    shapes = {"events": list(events.shape), **{f"state_{n}": list(s.shape) for n, s in zip(names, states, strict=True)}}
    logger.debug("exported %s to %s", type(net).__name__, dest)
    return OnnxExport(dest, names, shapes, tuple(outputs), version, ops)


def run_onnx(path: str | os.PathLike[str], inputs: torch.Tensor, states: list[torch.Tensor]) -> list[list[Any]]:
    """Run an exported graph over ``inputs [T, B, C, H, W]`` in ONNX Runtime, feeding the states back.

    Returns:
        Per step ``[flow, state_0, state_1, ...]`` as numpy arrays.
    """
    ort = _require("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    current = [s.detach().cpu().numpy() for s in states]
    results = []
    for t in range(inputs.shape[0]):
        feed = dict(zip(names, [inputs[t].detach().cpu().numpy(), *current], strict=True))
        out = session.run(None, feed)
        results.append(out)
        current = out[1:]
    return results


def verify_onnx(model: nn.Module, path: str | os.PathLike[str], inputs: torch.Tensor) -> VerifyReport:
    """Compare PyTorch and ONNX Runtime step by step on ``inputs [T, B, C, H, W]`` from zero states.

    Spikes are compared exactly (``state[1]`` of every layer), membranes (``state[0]``) and flows by
    absolute difference.
    """
    net = check_exportable(model).eval()
    steps, batch, _, height, width = inputs.shape
    onnx_out = run_onnx(path, inputs, initial_states(net, batch, height, width))
    net.clear_states()
    mismatches = spikes = 0
    mem_diff = flow_diff = 0.0
    with torch.no_grad():
        for t in range(steps):
            flow = net(inputs[t])["flow"][0]
            flow_diff = max(flow_diff, float((flow.cpu() - torch.from_numpy(onnx_out[t][0])).abs().max()))
            for state, other in zip(net._states, onnx_out[t][1:], strict=True):
                ref = torch.from_numpy(other)
                mismatches += int((state[1].cpu() != ref[1]).sum())
                spikes += int(state[1].count_nonzero())
                mem_diff = max(mem_diff, float((state[0].cpu() - ref[0]).abs().max()))
    net.clear_states()
    return VerifyReport(steps, mismatches, spikes, mem_diff, flow_diff)

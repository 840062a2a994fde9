"""Write a PyTorch / SpikingJelly model as a NIR graph (what ``snnprof export CONFIG --nir FILE`` does).

The model is traced with :func:`nirtorch.torch_to_nir` (torch.fx; additions become merged edges),
with the layers below as leaves. Every other module with parameters, and every neuron NIR cannot
express, is refused with its name, so an export never silently changes the network:

* ``nn.Linear`` -> ``Affine`` (``Linear`` without bias); ``nn.Conv1d`` / ``nn.Conv2d`` (zero padding,
  numeric) -> ``Conv1d`` / ``Conv2d``; ``nn.AvgPool2d`` -> ``AvgPool2d`` (``SumPool2d`` when
  ``divisor_override = 1``); ``nn.Flatten`` -> ``Flatten`` (NIR dims exclude the batch axis);
* SpikingJelly ``LIFNode`` with a hard reset -> ``LIF`` (``tau``, ``r = 1`` with ``decay_input``,
  else ``r = tau``; ``v_leak = v_reset``); ``IFNode`` with a hard reset -> ``IF`` (``r = 1``).

Time constants are written in steps and the graph's ``metadata["dt"]`` is 1, so
:func:`snnprof.interop.load_nir` reads it back with the same discretisation (bit-identical LIF
updates for ``decay_input`` nodes). NIR fires on ``v > threshold`` where SpikingJelly fires on
``v >= threshold``: spike counts differ only where a membrane lands exactly on the threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nir
import nirtorch
import numpy as np
import torch
from spikingjelly.activation_based import neuron as sj_neuron
from torch import nn

from snnprof.interop.nir_import import NIRImportError
from snnprof.quiet import quiet_libraries

__all__ = ["NIRExportError", "to_nir", "write_nir"]

logger = logging.getLogger(__name__)

#: The time step written into exported graphs (time constants are in steps).
EXPORT_DT = 1.0


class NIRExportError(NIRImportError):
    """A model cannot be written as a NIR graph (the message names the module at fault)."""


def _array(value: Any) -> np.ndarray:
    return np.asarray(value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else value, dtype=np.float32)


def _scalar(value: Any) -> np.ndarray:
    return _array(value).reshape(-1)[:1] if np.ndim(_array(value)) else np.asarray([float(value)], dtype=np.float32)


Shape = tuple[int, ...]


def _linear(m: nn.Linear, _in: Shape, _out: Shape) -> nir.NIRNode:
    if m.bias is None:
        return nir.Linear(weight=_array(m.weight))
    return nir.Affine(weight=_array(m.weight), bias=_array(m.bias))


def _check_conv(m: nn.Module) -> None:
    if getattr(m, "padding_mode", "zeros") != "zeros" or isinstance(m.padding, str):
        raise NIRExportError(f"{type(m).__name__} with padding {m.padding!r} / {m.padding_mode!r}: NIR convolutions "
                             "take numeric zero padding")


def _conv_bias(m: nn.Module) -> np.ndarray:
    return _array(m.bias) if m.bias is not None else np.zeros(m.out_channels, dtype=np.float32)


def _conv2d(m: nn.Conv2d, shape_in: Shape, _out: Shape) -> nir.NIRNode:
    _check_conv(m)
    return nir.Conv2d(input_shape=shape_in[-2:], weight=_array(m.weight), stride=m.stride, padding=m.padding,
                      dilation=m.dilation, groups=m.groups, bias=_conv_bias(m))


def _conv1d(m: nn.Conv1d, shape_in: Shape, _out: Shape) -> nir.NIRNode:
    _check_conv(m)
    return nir.Conv1d(input_shape=shape_in[-1], weight=_array(m.weight), stride=m.stride[0], padding=m.padding[0],
                      dilation=m.dilation[0], groups=m.groups, bias=_conv_bias(m))


def _pool(m: nn.AvgPool2d, _in: Shape, _out: Shape) -> nir.NIRNode:
    if m.ceil_mode:
        raise NIRExportError("AvgPool2d with ceil_mode=True: NIR pooling floors the output size")
    kernel, stride = np.atleast_1d(m.kernel_size), np.atleast_1d(m.stride if m.stride is not None else m.kernel_size)
    padding = np.atleast_1d(m.padding)
    kernel, stride, padding = (np.resize(a, 2).astype(np.int64) for a in (kernel, stride, padding))
    if m.divisor_override == 1:
        return nir.SumPool2d(kernel_size=kernel, stride=stride, padding=padding)
    if m.divisor_override is not None or (padding.any() and not m.count_include_pad):
        raise NIRExportError("AvgPool2d with a divisor override other than 1, or padding excluded from the "
                             "average: NIR pools by the kernel size")
    return nir.AvgPool2d(kernel_size=kernel, stride=stride, padding=padding)


def _flatten(m: nn.Flatten, shape_in: Shape, _out: Shape) -> nir.NIRNode:
    if m.start_dim == 0:
        raise NIRExportError("Flatten(start_dim=0) flattens the batch axis, which NIR graphs do not have")
    start = m.start_dim - 1 if m.start_dim > 0 else m.start_dim
    end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
    return nir.Flatten(input_type={"input": np.asarray(shape_in)}, start_dim=start, end_dim=end)


def _hard_reset(m: nn.Module) -> float:
    if m.v_reset is None:
        raise NIRExportError(f"{type(m).__name__} with a soft reset (v_reset=None): NIR neurons reset to v_reset")
    return float(m.v_reset)


def _full(shape: Shape, value: Any) -> np.ndarray:
    """A per-neuron parameter array of the layer's shape."""
    return np.full(shape, float(_scalar(value)[0]), dtype=np.float32)


def _lif(m: sj_neuron.LIFNode, _in: Shape, shape: Shape) -> nir.NIRNode:
    v_reset = _hard_reset(m)
    tau = _full(shape, m.tau)
    return nir.LIF(tau=tau, r=np.ones_like(tau) if m.decay_input else tau.copy(), v_leak=_full(shape, v_reset),
                   v_threshold=_full(shape, m.v_threshold), v_reset=_full(shape, v_reset))


def _if(m: sj_neuron.IFNode, _in: Shape, shape: Shape) -> nir.NIRNode:
    v_reset = _hard_reset(m)
    return nir.IF(r=_full(shape, 1.0), v_threshold=_full(shape, m.v_threshold), v_reset=_full(shape, v_reset))


#: Module class -> NIR node factory (subclasses such as SpikingJelly's ``layer.Conv2d`` match).
EXPORTERS: dict[type, Callable[[Any, Shape, Shape], nir.NIRNode]] = {
    nn.Linear: _linear, nn.Conv1d: _conv1d, nn.Conv2d: _conv2d, nn.AvgPool2d: _pool, nn.Flatten: _flatten,
    sj_neuron.LIFNode: _lif, sj_neuron.IFNode: _if,
}
#: Modules that run as identities in eval mode.
_IDENTITIES: tuple[type, ...] = (nn.Identity, nn.Dropout)


def _exporter(module: nn.Module) -> Callable[[Any, Shape, Shape], nir.NIRNode] | None:
    if type(module) in (sj_neuron.ParametricLIFNode,):  # a LIFNode subclass with a learned, sigmoid-mapped tau
        return None
    return next((fn for klass, fn in EXPORTERS.items() if isinstance(module, klass)), None)


def _leaf_shapes(model: nn.Module, input_shape: Shape, lead: int) -> dict[int, tuple[Shape, Shape]]:
    """Per-sample ``(input shape, output shape)`` of every exportable leaf, from one zero-input forward."""
    shapes: dict[int, tuple[Shape, Shape]] = {}

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if args and isinstance(args[0], torch.Tensor) and isinstance(output, torch.Tensor):
            shapes[id(module)] = (tuple(args[0].shape[lead:]), tuple(output.shape[lead:]))

    handles = [m.register_forward_hook(hook) for m in model.modules() if _exporter(m) is not None]
    x = torch.zeros((1,) * lead + tuple(input_shape), device=next(model.parameters(), torch.zeros(())).device)
    try:
        with quiet_libraries(), torch.no_grad():
            model(x)
    except Exception as err:  # noqa: BLE001  (model code raises anything)
        text = str(err).strip().splitlines()
        raise NIRExportError(f"the model rejects a zero input of shape {list(x.shape)}: {type(err).__name__}: "
                             f"{text[0] if text else ''}") from None
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _leaf_map(model: nn.Module, shapes: dict[int, tuple[Shape, Shape]]) -> dict[type, Callable[[Any], nir.NIRNode]]:
    """``{concrete module class: factory}`` of every leaf the model uses (nirtorch maps by exact class).

    Raises:
        NIRExportError: naming the first module NIR cannot express.
    """
    names = {id(module): name for name, module in model.named_modules()}
    found: dict[type, Callable[[Any], nir.NIRNode]] = {}
    for name, module in model.named_modules():
        exporter = _exporter(module)
        if exporter is not None:
            found[type(module)] = _bound(exporter, names, shapes)
            continue
        if isinstance(module, _IDENTITIES) or next(module.children(), None) is not None:
            continue
        if isinstance(module, sj_neuron.BaseNode) or next(module.parameters(recurse=False), None) is not None:
            supported = ", ".join(sorted(k.__name__ for k in EXPORTERS))
            raise NIRExportError(f"{name or '(model)'} ({type(module).__name__}): not expressible in NIR; "
                                 f"exportable layers: {supported} (neurons with a hard reset)")
    return found


def _bound(exporter: Callable[[Any, Shape, Shape], nir.NIRNode], names: dict[int, str],
           shapes: dict[int, tuple[Shape, Shape]]) -> Callable[[Any], nir.NIRNode]:
    """``exporter`` with the module's shapes bound; refusals name the module."""

    def export(module: Any) -> nir.NIRNode:
        name = names.get(id(module)) or "(model)"
        if id(module) not in shapes:
            raise NIRExportError(f"{name}: did not run on a zero input (no shape to export)")
        try:
            return exporter(module, *shapes[id(module)])
        except NIRExportError as err:
            raise NIRExportError(f"{name}: {err}") from None

    return export


def to_nir(model: nn.Module, input_shape: Shape, step_mode: str = "multi") -> nir.NIRGraph:
    """The NIR graph of ``model`` (eval mode assumed; the model's parameters are not changed).

    Args:
        model: the network (a chain or graph of the exportable layers; additions allowed).
        input_shape: per-sample input shape, no batch or time axis (written into the Input node).
        step_mode: ``multi`` (the model takes ``[T, B, ...]``) or ``single`` / ``ann`` (``[B, ...]``);
            one zero-input forward of ``T = B = 1`` finds every layer's shape.

    Raises:
        NIRExportError: a module NIR cannot express, or a forward torch.fx cannot trace.
    """
    shapes = _leaf_shapes(model, input_shape, 2 if step_mode == "multi" else 1)
    leaves = _leaf_map(model, shapes)
    try:
        with quiet_libraries(), torch.no_grad():
            graph = nirtorch.torch_to_nir(model, leaves, default_dict=None, type_check=False)
    except NIRExportError:
        raise
    except Exception as err:  # noqa: BLE001  (torch.fx and nirtorch raise many types)
        text = str(err).strip().splitlines()
        raise NIRExportError(f"cannot trace {type(model).__name__} into a NIR graph: {type(err).__name__}: "
                             f"{text[0] if text else ''}") from None
    for name, node in list(graph.nodes.items()):
        if isinstance(node, nir.Input):
            graph.nodes[name] = nir.Input(input_type=np.asarray(input_shape, dtype=np.int64))
    graph.metadata = {"dt": EXPORT_DT}
    try:
        graph.infer_types()
    except Exception as err:  # noqa: BLE001  (nir's type inference raises ValueError and others)
        raise NIRExportError(f"NIR type inference fails on the exported graph: {err}") from None
    return graph


def write_nir(graph: nir.NIRGraph, path: str | Path) -> Path:
    """Write ``graph`` to ``path`` (an HDF5 ``.nir`` file) through a temporary file, then rename."""
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    try:
        nir.write(str(partial), graph)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target

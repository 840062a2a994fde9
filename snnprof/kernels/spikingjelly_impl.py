"""SpikingJelly's multi-step neurons (``IFNode``, ``LIFNode``, ``ParametricLIFNode``, ``step_mode="m"``).

SpikingJelly 2.x picks the implementation by device: on the CPU a Torch custom op with a hand-written
per-step backward (backend ``"torch"``); on an NVIDIA GPU a native CUDA kernel (``"cuda"``, only if
SpikingJelly was built with it), a Triton kernel (``"triton"``) or the Torch op (``"torch"``), chosen by
the ``SJ_{LIF,IF,PLIF}_CUDA_IMPLEMENTATION`` environment variables. :func:`sj_multistep` forces one
backend per call.

GPU backends are **unverified**: this code was written on a machine without a GPU. Forcing a GPU
backend sets SpikingJelly's private selection state (``_ops.<neuron>._selection``); if that changes
upstream, the backend is reported unavailable with the reason.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
from collections.abc import Iterator
from typing import Any

import torch

from snnprof.kernels.reference import NeuronOutput, NeuronSpec

__all__ = ["CPU_BACKENDS", "CUDA_BACKENDS", "backend_unavailable_reason", "sj_multistep"]

logger = logging.getLogger(__name__)

#: SpikingJelly backends per device type.
CPU_BACKENDS: tuple[str, ...] = ("torch",)
CUDA_BACKENDS: tuple[str, ...] = ("torch", "triton", "cuda")

_OPS_MODULE = {"if": "spikingjelly._ops.if_", "lif": "spikingjelly._ops.lif", "plif": "spikingjelly._ops.plif"}


def _surrogate(spec: NeuronSpec) -> Any:
    """The SpikingJelly surrogate object for ``spec``."""
    from spikingjelly.activation_based import surrogate

    cls = surrogate.Sigmoid if spec.surrogate == "sigmoid" else surrogate.ATan
    return cls(alpha=spec.surrogate_alpha)


def make_node(spec: NeuronSpec, store_v_seq: bool = False) -> torch.nn.Module:
    """A fresh multi-step SpikingJelly neuron module configured like ``spec``."""
    from spikingjelly.activation_based import neuron

    common = {
        "v_threshold": float(spec.v_threshold),
        "v_reset": None if spec.v_reset is None else float(spec.v_reset),
        "surrogate_function": _surrogate(spec),
        "detach_reset": spec.detach_reset,
        "step_mode": "m",
        "store_v_seq": store_v_seq,
    }
    if spec.kind == "if":
        return neuron.IFNode(**common)
    if spec.kind == "lif":
        return neuron.LIFNode(tau=float(spec.tau), decay_input=spec.decay_input, **common)
    return neuron.ParametricLIFNode(init_tau=float(spec.tau), decay_input=spec.decay_input, **common)


@contextlib.contextmanager
def _forced_backend(kind: str, device: torch.device, backend: str) -> Iterator[None]:
    """Force SpikingJelly's CUDA implementation choice for one neuron kind (no-op on the CPU)."""
    if device.type != "cuda":
        yield
        return
    selection = importlib.import_module(_OPS_MODULE[kind])._selection
    saved = selection._requested
    selection._requested = backend
    selection._selections.clear()
    try:
        yield
    finally:
        selection._requested = saved
        selection._selections.clear()


def sj_multistep(
    x_seq: torch.Tensor,
    spec: NeuronSpec,
    w: torch.Tensor | None = None,
    v_init: torch.Tensor | None = None,
    store_v_seq: bool = False,
    *,
    backend: str = "torch",
) -> NeuronOutput:
    """Run SpikingJelly's multi-step neuron; same contract as :func:`~snnprof.kernels.reference.eager_multistep`.

    Args:
        x_seq: input current ``[T, *]``.
        spec: the neuron configuration.
        w: PLIF's parameter (0-dim tensor) used in place of the module's own ``w`` so gradients reach it.
        v_init: initial membrane ``x_seq.shape[1:]``; default ``v_reset`` (0 for soft reset).
        store_v_seq: return the membrane of every step instead of only the last.
        backend: ``"torch"``; on a GPU also ``"triton"`` or ``"cuda"``.

    Returns:
        Spikes ``[T, *]`` and the membrane.
    """
    node = make_node(spec, store_v_seq).to(x_seq.device)
    if v_init is not None:
        node.v = v_init
    with _forced_backend(spec.kind, x_seq.device, backend):
        if spec.kind == "plif":
            if w is None:
                raise ValueError("a PLIF neuron needs its parameter w (a 0-dim tensor)")
            spikes = torch.func.functional_call(node, {"w": w}, (x_seq,))
        else:
            spikes = node(x_seq)
    return NeuronOutput(spikes, node.v_seq if store_v_seq else node.v)


@functools.cache
def backend_unavailable_reason(backend: str, device_type: str) -> str | None:
    """``None`` if SpikingJelly's ``backend`` runs on ``device_type`` here, else why not (one sentence)."""
    try:
        import spikingjelly.activation_based.neuron  # noqa: F401
    except ImportError as err:
        return f"spikingjelly is not importable: {err}"
    if device_type == "cpu":
        return None if backend in CPU_BACKENDS else f"SpikingJelly has no {backend!r} backend on the CPU"
    if not torch.cuda.is_available():
        return "no CUDA device"
    try:  # one tiny LIF call with the backend forced (unverified: written without a GPU)
        x = torch.zeros(2, 4, device="cuda")
        sj_multistep(x, NeuronSpec("lif"), backend=backend)
    except Exception as err:  # noqa: BLE001 - any failure means "not usable here", with its reason
        return f"SpikingJelly {backend!r} backend failed: {' '.join(str(err).split())[:200]}"
    return None

"""Multi-step neuron kernels (IF, LIF, ParametricLIF over ``[T, N]``) and event-driven synapses, with benchmarks.

Implementations of one contract, ``fn(x_seq, spec, w=None, v_init=None, store_v_seq=False) ->
NeuronOutput`` (see :func:`~snnprof.kernels.reference.eager_multistep`):

========== ======= ===========================================================================
name       device  what
========== ======= ===========================================================================
eager      any     the reference: one PyTorch step per time step, autograd backward
sj_torch   any     SpikingJelly's multi-step neuron, Torch backend
sj_triton  cuda    SpikingJelly, Triton backend (unverified here)
sj_cuda    cuda    SpikingJelly, native CUDA backend if SpikingJelly was built with it (unverified)
compiled   any     ``torch.compile`` of the eager loop
fused_cpu  cpu     our C++/OpenMP kernel, forward and backward (:mod:`.fused_cpu`)
fused_cuda cuda    our Triton kernels (unverified here; :mod:`.fused_cuda`)
========== ======= ===========================================================================

Modules are imported on first use, so ``import snnprof.kernels`` stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from snnprof.kernels.reference import NeuronOutput, NeuronSpec, eager_multistep, init_w

__all__ = [
    "NEURON_IMPLS",
    "NeuronImpl",
    "NeuronOutput",
    "NeuronSpec",
    "eager_multistep",
    "get_impl",
    "impls_for",
    "init_w",
]


def _resolve(target: str | Callable[..., Any]) -> Callable[..., Any]:
    """``"package.module:attr"`` -> the attribute (imports the module); callables pass through."""
    if callable(target):
        return target
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class NeuronImpl:
    """One multi-step neuron implementation, resolved lazily.

    Attributes:
        name: registry name (``eager``, ``sj_torch``, ``fused_cpu`` ...).
        device_types: device types it runs on (``"cpu"``, ``"cuda"``).
        description: one line for tables.
        target: the function with the common contract, or ``"module:function"`` (imported on first use).
        check: function (or ``"module:function"``) returning ``None`` or why it is unavailable (one sentence).
        check_args: extra leading arguments of ``check`` (before the device type).
        kwargs: extra keyword arguments of ``target``.
        verified: False for code that was never run on its device by its author (GPU paths).
    """

    name: str
    device_types: tuple[str, ...]
    description: str
    target: str | Callable[..., NeuronOutput]
    check: str | Callable[..., str | None] | None = None
    check_args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    verified: bool = True

    def __call__(
        self,
        x_seq: torch.Tensor,
        spec: NeuronSpec,
        w: torch.Tensor | None = None,
        v_init: torch.Tensor | None = None,
        store_v_seq: bool = False,
    ) -> NeuronOutput:
        """Run the implementation (see :func:`~snnprof.kernels.reference.eager_multistep`)."""
        return _resolve(self.target)(x_seq, spec, w, v_init, store_v_seq, **self.kwargs)

    def unavailable_reason(self, device_type: str) -> str | None:
        """``None`` if it can run on ``device_type`` here, else why not."""
        if device_type not in self.device_types:
            return f"{self.name} does not run on {device_type}"
        if self.check is None:
            return None
        return _resolve(self.check)(*self.check_args, device_type)


def _sj(backend: str, devices: tuple[str, ...], verified: bool) -> NeuronImpl:
    return NeuronImpl(
        f"sj_{backend}",
        devices,
        f"SpikingJelly multi-step neuron, {backend} backend",
        "snnprof.kernels.spikingjelly_impl:sj_multistep",
        "snnprof.kernels.spikingjelly_impl:backend_unavailable_reason",
        (backend,),
        {"backend": backend},
        verified,
    )


#: Every implementation, in table order.
NEURON_IMPLS: tuple[NeuronImpl, ...] = (
    NeuronImpl("eager", ("cpu", "cuda"), "eager PyTorch loop, one step per time step (reference)",
               "snnprof.kernels.reference:eager_multistep"),
    _sj("torch", ("cpu", "cuda"), verified=True),
    _sj("triton", ("cuda",), verified=False),
    _sj("cuda", ("cuda",), verified=False),
    NeuronImpl("compiled", ("cpu", "cuda"), "torch.compile of the eager loop",
               "snnprof.kernels.compiled:compiled_multistep", "snnprof.kernels.compiled:unavailable_reason"),
    NeuronImpl("fused_cpu", ("cpu",), "ours: fused C++/OpenMP forward and backward",
               "snnprof.kernels.fused_cpu:fused_multistep", "snnprof.kernels.fused_cpu:unavailable_reason"),
    NeuronImpl("fused_cuda", ("cuda",), "ours: fused Triton forward and backward",
               "snnprof.kernels.fused_cuda:fused_cuda_multistep", "snnprof.kernels.fused_cuda:unavailable_reason",
               verified=False),
)  # fmt: skip


def get_impl(name: str) -> NeuronImpl:
    """The implementation called ``name``; raises ``KeyError`` listing the known names."""
    for impl in NEURON_IMPLS:
        if impl.name == name:
            return impl
    raise KeyError(f"unknown implementation {name!r}; known: {', '.join(i.name for i in NEURON_IMPLS)}")


def impls_for(device_type: str) -> tuple[NeuronImpl, ...]:
    """The implementations that target ``device_type`` (available or not)."""
    return tuple(impl for impl in NEURON_IMPLS if device_type in impl.device_types)

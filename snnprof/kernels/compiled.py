"""``torch.compile`` of the eager reference loop (TorchInductor; C++/OpenMP code on the CPU, Triton on a GPU).

One compiled function per neuron configuration, cached for the process; Inductor specialises it to the
input's shape and dtype on first call (the compile takes tens of seconds on a 2-core CPU and is not
part of any timing). If Inductor cannot compile here (no C++ compiler, no Triton on a GPU), the
implementation is reported unavailable with the reason from :func:`unavailable_reason`.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
from collections.abc import Callable

import torch

from snnprof.kernels.reference import NeuronOutput, NeuronSpec, eager_multistep

__all__ = ["compiled_multistep", "unavailable_reason"]

logger = logging.getLogger(__name__)

_Fn = Callable[[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"], tuple[torch.Tensor, torch.Tensor]]


@functools.cache
def _compiled(spec: NeuronSpec, store_v_seq: bool) -> _Fn:
    """The compiled loop for one configuration (tuples in and out: what Dynamo traces best)."""

    def run(
        x_seq: torch.Tensor, w: torch.Tensor | None, v_init: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = eager_multistep(x_seq, spec, w, v_init, store_v_seq)
        return out.spikes, out.v

    return torch.compile(run, dynamic=False)


def compiled_multistep(
    x_seq: torch.Tensor,
    spec: NeuronSpec,
    w: torch.Tensor | None = None,
    v_init: torch.Tensor | None = None,
    store_v_seq: bool = False,
) -> NeuronOutput:
    """The reference loop under ``torch.compile``; contract of :func:`~snnprof.kernels.reference.eager_multistep`."""
    spikes, v = _compiled(spec, store_v_seq)(x_seq, w, v_init)
    return NeuronOutput(spikes, v)


def unavailable_reason(device_type: str) -> str | None:
    """``None`` if Inductor has what it needs on ``device_type`` (a C++ compiler; Triton and a GPU), else why not.

    This is a cheap check; a compile that still fails raises on the first call, which the bench
    reports as "unavailable" with the error.
    """
    if device_type == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA device"
        if importlib.util.find_spec("triton") is None:
            return "torch.compile needs Triton on a GPU, and it is not installed"
        return None
    if not any(shutil.which(name) for name in (os.environ.get("CXX") or "", "c++", "g++", "clang++") if name):
        return "torch.compile (Inductor) needs a C++ compiler on the CPU, and none was found"
    return None

"""Our fused CPU kernel: multi-step IF/LIF/PLIF forward and backward in one C++/OpenMP pass each.

The C++ source (``snnprof/csrc/neuron_cpu.cpp``) has no Torch headers; :mod:`snnprof.native_build`
compiles it at install time (else on first use) and it is called through :mod:`ctypes` on the tensors'
data pointers. It is vectorised over neurons and sequential over time, and bandwidth-bound: the
forward reads ``x`` and writes the spikes (and the membrane if asked), 8 bytes per neuron update in
float32; the backward recomputes the block's charge ``H`` in cache from ``x`` and fuses the surrogate,
so a forward+backward moves ``x`` twice, the spikes, ``grad_spike`` and ``grad_x`` once: 20 bytes per
update. Outputs larger than the last-level cache are written with non-temporal stores (no
write-allocate read) into buffers from :mod:`snnprof.kernels.buffer_pool` (no page faults on reuse).

:func:`fused_multistep` is wrapped in a :class:`torch.autograd.Function`, so training uses it::

    out = fused_multistep(x_seq, NeuronSpec("lif", tau=2.0))     # x_seq: [T, ...] float32 on CPU
    out.spikes.sum().backward()
"""

from __future__ import annotations

import ctypes
import functools
import logging
from typing import Any

import torch

from snnprof.errors import first_line
from snnprof.kernels import buffer_pool
from snnprof.kernels.membw import llc_bytes
from snnprof.kernels.reference import NeuronOutput, NeuronSpec, run_flat
from snnprof.native_build import NativeBuildError, load

__all__ = [
    "KernelBuildError",
    "fused_multistep",
    "is_available",
    "load_library",
    "unavailable_reason",
    "uses_streaming_stores",
]

logger = logging.getLogger(__name__)

#: The error raised when the kernel cannot be built or loaded (the native build helper's).
KernelBuildError = NativeBuildError

_SOURCE = "neuron_cpu.cpp"
_ABI_VERSION = 2
_DTYPES = {torch.float32: 0, torch.float64: 1}
#: (kind, decay_input) -> the kernel's charge-equation code.
_CHARGE = {
    ("if", True): 0, ("if", False): 0, ("lif", True): 1, ("lif", False): 2, ("plif", True): 3, ("plif", False): 4,
}  # fmt: skip
_SURROGATE = {"sigmoid": 0, "atan": 1}
_MIN_PARALLEL_UPDATES = 1 << 18
_STREAM_STORES = 1  # the kernels' flag: non-temporal stores of the large outputs


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Declare the C signatures (argument types catch mistakes that would otherwise crash)."""
    ptr, i64, f64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double, ctypes.c_int
    lib.snn_vector_bytes.restype = c_int
    lib.snn_forward.restype = c_int
    lib.snn_forward.argtypes = [c_int, ptr, ptr, ptr, ptr, ptr, i64, i64, c_int, c_int, f64, f64, f64, c_int, c_int]
    lib.snn_backward.restype = c_int
    lib.snn_backward.argtypes = [
        c_int, ptr, ptr, ptr, ptr, ptr, ptr, ptr, ctypes.POINTER(f64),
        i64, i64, c_int, c_int, c_int, c_int, f64, f64, f64, f64, c_int, c_int,
    ]  # fmt: skip
    return lib


@functools.cache
def load_library() -> ctypes.CDLL:
    """The kernel library (install-time build, else built now), loaded once per process.

    Raises:
        KernelBuildError: the library cannot be built or loaded, or has another ABI version.
    """
    return _bind(load(_SOURCE, "snn_abi_version", _ABI_VERSION))


def unavailable_reason(device_type: str = "cpu") -> str | None:
    """``None`` if the kernel builds and loads here (CPU only), else why not (one sentence)."""
    if device_type != "cpu":
        return f"the fused CPU kernel does not run on {device_type}"
    try:
        load_library()
    except KernelBuildError as err:
        return first_line(err)
    return None


def is_available() -> bool:
    """Whether the fused CPU kernel can be used on this machine."""
    return unavailable_reason() is None


def uses_streaming_stores(output_bytes: int) -> bool:
    """Whether a call writing ``output_bytes`` uses non-temporal stores: only when they exceed the last-level cache.

    A smaller output is left in the cache, where its consumer (the next layer, or the backward) finds it.
    """
    return output_bytes > llc_bytes()


def _ptr(t: torch.Tensor | None) -> int | None:
    """Data pointer of a tensor (``None`` stays ``None``: a NULL pointer for the kernel)."""
    return None if t is None else t.data_ptr()


def _k_value(spec: NeuronSpec, q: torch.Tensor | None) -> float:
    """The kernel's ``k``: tau for LIF (divides), q = sigmoid(w) for PLIF (multiplies), unused for IF."""
    if spec.kind == "plif":
        assert q is not None
        return float(q.item())
    return float(spec.tau)


def _threads(updates: int) -> int:
    """OpenMP threads for a call: one below ``_MIN_PARALLEL_UPDATES`` (waking threads costs more)."""
    return torch.get_num_threads() if updates >= _MIN_PARALLEL_UPDATES else 1


def _flags(output_bytes: int) -> int:
    """The kernel's flags for a call writing ``output_bytes`` (streaming stores beyond the cache)."""
    return _STREAM_STORES if uses_streaming_stores(output_bytes) else 0


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise RuntimeError(f"fused CPU kernel {what} rejected its arguments (code {rc})")


class _FusedNeuron(torch.autograd.Function):
    """Autograd wrapper: forward and backward are one kernel call each."""

    @staticmethod
    def forward(  # noqa: PLR0917 - autograd passes apply()'s arguments positionally
        ctx: Any, x: torch.Tensor, v0: torch.Tensor | None, q: torch.Tensor | None, spec: NeuronSpec, store: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lib = load_library()
        steps, n = x.shape
        spikes = buffer_pool.empty(x.shape, x.dtype)
        v_out = buffer_pool.empty(x.shape if store else (n,), x.dtype)
        out_bytes = spikes.numel() * spikes.element_size() * (2 if store else 1)
        rc = lib.snn_forward(
            _DTYPES[x.dtype], _ptr(x), _ptr(v0), _ptr(spikes), _ptr(v_out) if store else None,
            None if store else _ptr(v_out), steps, n, _CHARGE[(spec.kind, spec.decay_input)], int(spec.hard_reset),
            _k_value(spec, q), spec.v_threshold, spec.reset_value, _threads(steps * n), _flags(out_bytes),
        )  # fmt: skip
        _check(rc, "forward")
        ctx.save_for_backward(x, v0, q)
        ctx.spec, ctx.store = spec, store
        return spikes, v_out

    @staticmethod
    def backward(ctx: Any, g_spikes: torch.Tensor | None, g_v: torch.Tensor | None) -> tuple[Any, ...]:
        x, v0, q = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        steps, n = x.shape
        gs = torch.zeros_like(x) if g_spikes is None else g_spikes.contiguous()
        g_v = None if g_v is None else g_v.contiguous()
        gx = buffer_pool.empty(x.shape, x.dtype)
        gv0 = x.new_empty(n) if v0 is not None and ctx.needs_input_grad[1] else None
        gk = ctypes.c_double(0.0)
        rc = load_library().snn_backward(
            _DTYPES[x.dtype], _ptr(x), _ptr(v0), _ptr(gs), _ptr(g_v) if ctx.store else None,
            None if ctx.store else _ptr(g_v), _ptr(gx), _ptr(gv0), ctypes.byref(gk), steps, n,
            _CHARGE[(spec.kind, spec.decay_input)], int(spec.hard_reset), int(spec.detach_reset),
            _SURROGATE[spec.surrogate], _k_value(spec, q), spec.v_threshold, spec.reset_value,
            spec.surrogate_alpha, _threads(steps * n), _flags(gx.numel() * gx.element_size()),
        )  # fmt: skip
        _check(rc, "backward")
        gq = torch.tensor(gk.value, dtype=q.dtype).reshape(q.shape) if q is not None else None
        return gx, gv0, gq, None, None


def _validate(x_seq: torch.Tensor, v_init: torch.Tensor | None) -> None:
    """Clear errors for inputs the kernel does not take."""
    if x_seq.device.type != "cpu":
        raise ValueError(f"the fused CPU kernel needs CPU tensors, got {x_seq.device}")
    if x_seq.dtype not in _DTYPES:
        raise TypeError(f"the fused CPU kernel supports float32 and float64, got {x_seq.dtype}")
    if x_seq.dim() < 1:
        raise ValueError("x_seq must have a leading time dimension [T, ...]")
    if v_init is not None and (v_init.shape != x_seq.shape[1:] or v_init.dtype != x_seq.dtype):
        expected = f"{tuple(x_seq.shape[1:])} {x_seq.dtype}"
        raise ValueError(f"v_init must be {expected}, got {tuple(v_init.shape)} {v_init.dtype}")


def fused_multistep(
    x_seq: torch.Tensor,
    spec: NeuronSpec,
    w: torch.Tensor | None = None,
    v_init: torch.Tensor | None = None,
    store_v_seq: bool = False,
) -> NeuronOutput:
    """Multi-step neuron with the fused CPU kernel; same contract as :func:`~snnprof.kernels.reference.eager_multistep`.

    Args:
        x_seq: input current ``[T, *]``, float32 or float64, on the CPU.
        spec: the neuron configuration.
        w: PLIF's learnable scalar (0-dim tensor); gradients flow to it.
        v_init: initial membrane ``x_seq.shape[1:]``; default ``v_reset`` (0 for soft reset).
        store_v_seq: return the membrane of every step instead of only the last.

    Returns:
        Spikes ``[T, *]`` and the membrane, differentiable w.r.t. ``x_seq``, ``v_init`` and ``w``.

    Raises:
        KernelBuildError: the kernel cannot be built here (no compiler).
    """
    _validate(x_seq, v_init)
    return run_flat(_FusedNeuron.apply, x_seq, v_init, w, spec=spec, store_v_seq=store_v_seq, q_dtype=x_seq.dtype)

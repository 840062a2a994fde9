"""One-pass activation statistics in C++ for the counting engine on CPU: input kinds and spike counts.

The Torch formulation of kind detection (:func:`snnprof.counting.kinds.classify`) needs four to
five passes over a tensor and a temporary as large as it; counting a neuron's spikes per (time
step, sample, channel) needs a full-size indicator tensor and a reduction. The kernels of
``snnprof/csrc/event_stats.cpp`` read the tensor once and write only their small result
(measured on a ``[8, 16, 32, 32, 32]`` float32 spike tensor, one thread: kind 0.61 ms vs 3.4 ms,
spike counts 0.60 ms vs 1.8 ms; see ``benchmarks/test_native_stats.py``). They compute exactly the
same answers (kinds by the same rules, integer counts), so the engine uses them whenever they apply
and falls back to Torch otherwise:
contiguous float32/float64 CPU tensors only, and only when the library builds.

The library comes from :mod:`snnprof.native_build`: built at install time, else compiled on first
use with the system C++ compiler into its cache (about a second, once per machine). Without a compiler,
or with ``SNNPROF_NATIVE=0`` in the environment, every function here declines (``None`` or ``False``)
and the engine uses its Torch path (same counts, slower).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from typing import NamedTuple

import torch

from snnprof.errors import first_line
from snnprof.native_build import NativeBuildError, library_path

__all__ = [
    "ENV_VAR", "NativeStats", "accumulate_spikes", "available", "classify", "classify_conv", "rows_of",
    "unavailable_reason",
]

logger = logging.getLogger(__name__)

#: Set to ``0`` to disable the native statistics (the engine then uses its Torch passes).
ENV_VAR = "SNNPROF_NATIVE"
_SOURCE = "event_stats.cpp"
_ABI_VERSION = 4
_DTYPES = {torch.float32: 0, torch.float64: 1}
_MIN_PARALLEL = 1 << 18  # elements below which one thread is faster than waking a team


class NativeStats(NamedTuple):
    """Kind and, for spikes, exact synaptic operations of one operand, from one native pass.

    Attributes:
        code: the kind code (:mod:`snnprof.counting.kinds`).
        peak: ``max(x)`` (meaningful unless dense).
        events: events (nonzero values) in ``x``; 0.0 unless spikes.
        accumulates: exact accumulates; 0.0 unless spikes.
        per_frame: accumulates of each frame (float64), or ``None`` (not spikes, or not asked for).
    """

    code: int
    peak: float
    events: float
    accumulates: float
    per_frame: torch.Tensor | None


def _bind(lib: ctypes.CDLL) -> ctypes.CDLL:
    ptr, i64, c_int = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    lib.snn_stats_abi_version.restype = c_int
    lib.snn_classify.restype = c_int
    lib.snn_classify.argtypes = [c_int, ptr, i64, ctypes.POINTER(ctypes.c_double), c_int]
    lib.snn_accumulate_spikes.restype = c_int
    lib.snn_accumulate_spikes.argtypes = [c_int, ptr, i64, i64, i64, i64, i64, ptr, ptr, ptr, ptr, c_int]
    lib.snn_classify_conv.restype = c_int
    lib.snn_classify_conv.argtypes = [
        c_int, ptr, i64, i64, i64, i64, ptr, ctypes.c_double, ptr, ptr, ctypes.POINTER(ctypes.c_double), c_int,
    ]
    return lib


@functools.cache
def _load() -> ctypes.CDLL | str:
    """The bound library, or why it cannot be used (one sentence); built at most once per process."""
    if os.environ.get(ENV_VAR, "1").strip() == "0":
        return f"disabled by {ENV_VAR}=0"
    try:
        path = library_path(_SOURCE)
        lib = _bind(ctypes.CDLL(str(path)))
    except (NativeBuildError, OSError) as err:
        reason = first_line(err)
        logger.info("native activation statistics unavailable, using Torch passes: %s", reason)
        return reason
    if lib.snn_stats_abi_version() != _ABI_VERSION:
        return f"{path} has ABI {lib.snn_stats_abi_version()}, expected {_ABI_VERSION}; delete it"
    return lib


def unavailable_reason() -> str | None:
    """``None`` when the native statistics are in use, else why not."""
    lib = _load()
    return lib if isinstance(lib, str) else None


def available() -> bool:
    """Whether the native statistics are in use in this process."""
    return unavailable_reason() is None


def _library_for(x: torch.Tensor) -> ctypes.CDLL | None:
    """The library if it applies to ``x`` (contiguous float32/float64 CPU data, no lazy negation), else ``None``."""
    if not x.is_cpu or x.dtype not in _DTYPES or x.numel() == 0 or not x.is_contiguous() or x.is_neg():
        return None
    lib = _load()
    return None if isinstance(lib, str) else lib


def _threads(elements: int) -> int:
    return torch.get_num_threads() if elements >= _MIN_PARALLEL else 1


def classify(x: torch.Tensor) -> tuple[int, float] | None:
    """Kind code and peak of ``x`` in one pass: ``(code, max(x))`` (the peak is meaningful unless dense).

    The rules of :func:`snnprof.counting.kinds.classify` (spike, count, ternary, dense), decided
    exactly (no float sums). Stops early once ``x`` is proven dense. ``None`` when the native path
    does not apply to ``x``.
    """
    lib = _library_for(x)
    if lib is None:
        return None
    peak = ctypes.c_double(0.0)
    code = lib.snn_classify(_DTYPES[x.dtype], x.data_ptr(), x.numel(), ctypes.byref(peak), _threads(x.numel()))
    if code < 0:
        raise RuntimeError(f"native classify rejected a {x.dtype} tensor of {x.numel()} elements (code {code})")
    return code, peak.value


def classify_conv(
    x: torch.Tensor, frames: int, groups: int, cover: torch.Tensor, scale: int
) -> NativeStats | None:
    """Kind of a convolution's input and, for spikes, its exact synaptic operations, in one pass.

    ``x`` is seen as ``[frames * groups, C_in / groups, positions]``; ``cover`` (float64 CPU
    ``[positions]``) holds the outputs each input position reaches per output channel and
    ``scale`` is ``C_out / groups``. Every event (nonzero value) at position ``p`` then costs
    ``scale * cover[p]`` accumulates.

    Returns:
        :class:`NativeStats`: the kind code, ``max(x)``, and for spikes the event and accumulate
        totals and the accumulates of each frame (float64 ``[frames]``, exact); for other kinds
        those three are ``0.0, 0.0, None``. ``None`` when the native path does not apply.
    """
    lib = _library_for(x)
    positions = cover.numel()
    if lib is None or frames <= 0 or positions <= 0 or x.numel() % (frames * groups * positions):
        return None
    channels = x.numel() // (frames * groups * positions)
    per_frame = torch.empty(frames, dtype=torch.float64)
    sums = (ctypes.c_double * 2)()
    peak = ctypes.c_double(0.0)
    code = lib.snn_classify_conv(_DTYPES[x.dtype], x.data_ptr(), frames * groups, groups, channels, positions,
                                 cover.data_ptr(), float(scale), per_frame.data_ptr(), sums, ctypes.byref(peak),
                                 _threads(x.numel()))
    if code < 0:
        raise RuntimeError(f"native classify_conv rejected [{frames}x{groups}, {channels}, {positions}] (code {code})")
    if code != 0:
        return NativeStats(code, peak.value, 0.0, 0.0, None)
    return NativeStats(code, peak.value, sums[0], sums[1], per_frame)


def accumulate_spikes(s: torch.Tensor, layout: tuple[int, int, int], start: int, *, total: torch.Tensor,
                      per_channel: torch.Tensor, per_step: torch.Tensor, per_index: torch.Tensor | None) -> bool:
    """Add the spikes (nonzero values) of a neuron output to running float64 CPU sums in one pass.

    ``s`` is viewed as ``[steps, rows, channels, inner]`` (``layout = (steps, rows, channels)``):
    ``total += all spikes``, ``per_channel[c] += spikes of channel c``, ``per_step[start + t] +=
    spikes of step t``; ``per_index`` (``[steps * rows]``, if given) receives the spikes of each
    (step, row) index. The sums must be contiguous float64 CPU tensors large enough.

    Returns:
        False (nothing added) when the native path does not apply to ``s``.
    """
    lib = _library_for(s)
    steps, rows, channels = layout
    lines = steps * rows * channels
    if lib is None or lines <= 0 or s.numel() % lines:
        return False
    rc = lib.snn_accumulate_spikes(
        _DTYPES[s.dtype], s.data_ptr(), steps, rows, channels, s.numel() // lines, start, total.data_ptr(),
        per_channel.data_ptr(), per_step.data_ptr(), None if per_index is None else per_index.data_ptr(),
        _threads(s.numel()),
    )
    if rc != 0:
        raise RuntimeError(f"native accumulate_spikes rejected {layout} (code {rc})")
    return True


def rows_of(shape: torch.Size | tuple[int, ...], lead: int) -> tuple[int, ...]:
    """The kept leading dims of a spike grid: ``shape[:lead + 1]``, or ``(*shape, 1)`` if it has no channel dim."""
    return tuple(shape[: lead + 1]) if len(shape) > lead else (*shape, 1)

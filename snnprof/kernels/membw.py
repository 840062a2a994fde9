"""The machine's streaming memory bandwidth (STREAM-style copy and triad), the yardstick of ``snnprof bench``.

A neuron kernel does a few flops per element it moves, so the best it can do is to move its bytes at
the rate the memory system sustains for long sequential streams. :func:`measure_stream` measures that
rate the way McCalpin's STREAM does: copy (``c = a``) and triad (``a = b + s * c``) over three arrays
that are each at least four times the last-level cache, first touched by the threads that use them,
with the bytes the loop names counted (copy 2 arrays, triad 3) and the median time per rep.

* CPU: ``csrc/membw.cpp`` with the given OpenMP threads (``snnprof bench`` passes its own). Stores are
  non-temporal, like the fused kernels' large outputs; ``copy_plain_gbs`` repeats the copy with plain
  stores, which first read each destination line (write-allocate: 3 arrays of traffic, 2 counted).
* GPU: ``Tensor.copy_`` and ``torch.add(b, c, alpha=s, out=a)`` on arrays at least four times the L2
  cache, timed with CUDA events (unverified: written without a GPU).
"""

from __future__ import annotations

import ctypes
import functools
import statistics
from dataclasses import dataclass
from pathlib import Path

import torch

from snnprof.native_build import load

__all__ = ["StreamArrays", "StreamResult", "llc_bytes", "measure_stream", "stream_array_bytes"]

_SOURCE = "membw.cpp"
_ABI_VERSION = 3
_MIN_ARRAY_BYTES = 64 << 20
_DEFAULT_LLC_BYTES = 32 << 20
_COPY, _TRIAD = 0, 1


@dataclass(frozen=True)
class StreamResult:
    """One STREAM-style measurement.

    Attributes:
        device: ``cpu`` or ``cuda``.
        threads: CPU threads used (``0`` on a GPU).
        array_bytes: bytes of each of the three arrays.
        reps: timed reps per kernel (after one warm-up).
        copy_gbs: copy bandwidth in GB/s (1e9 bytes; 2 arrays counted), median over the reps.
        triad_gbs: triad bandwidth in GB/s (3 arrays counted), median over the reps.
        copy_plain_gbs: copy with plain (write-allocating) stores in GB/s; ``None`` on a GPU.
    """

    device: str
    threads: int
    array_bytes: int
    reps: int
    copy_gbs: float
    triad_gbs: float
    copy_plain_gbs: float | None = None

    @property
    def reference_gbs(self) -> float:
        """The bandwidth kernels are compared with: the better of copy and triad (GB/s)."""
        return max(self.copy_gbs, self.triad_gbs)


def _cache_size(text: str) -> int:
    """``"32768K"`` / ``"32M"`` / ``"1048576"`` -> bytes."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


@functools.cache
def llc_bytes() -> int:
    """Size of this CPU's last-level cache in bytes (Linux sysfs; 32 MiB if unknown)."""
    best_level, best_size = 0, 0
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            level = int((index / "level").read_text())
            size = _cache_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        best_level, best_size = max((best_level, best_size), (level, size))
    return best_size or _DEFAULT_LLC_BYTES


def stream_array_bytes(device: str = "cpu") -> int:
    """STREAM's rule: each array at least 4x the last-level cache (L2 on a GPU), and at least 64 MiB."""
    if device == "cuda":
        cache = int(getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "L2_cache_size", 0))
    else:
        cache = llc_bytes()
    return max(4 * cache, _MIN_ARRAY_BYTES)


@functools.cache
def _library() -> ctypes.CDLL:
    lib = load(_SOURCE, "snn_membw_abi_version", _ABI_VERSION)
    lib.snn_stream_new.restype = ctypes.c_void_p
    lib.snn_stream_new.argtypes = [ctypes.c_int64, ctypes.c_int]
    lib.snn_stream_run.restype = ctypes.c_double
    lib.snn_stream_run.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    lib.snn_stream_free.argtypes = [ctypes.c_void_p]
    lib.snn_stream_evict.restype = ctypes.c_double
    lib.snn_stream_evict.argtypes = [ctypes.c_void_p]
    return lib


class StreamArrays:
    """STREAM's three arrays, allocated once, whose kernels can be timed one run at a time.

    ``snnprof bench`` times :meth:`copy` and :meth:`triad` in the same round-robin as the neuron kernels,
    so the machine's bandwidth and the kernels' are measured under the same conditions. Use as a
    context manager (the arrays are freed on exit).

    Args:
        device: ``cpu`` or ``cuda``.
        threads: CPU threads (default: ``torch.get_num_threads()``).
        array_bytes: bytes per array (default: :func:`stream_array_bytes`).

    Raises:
        NativeBuildError: on the CPU, when the STREAM library cannot be built here.
        MemoryError: the arrays cannot be allocated.
    """

    def __init__(self, device: str = "cpu", threads: int | None = None, array_bytes: int | None = None) -> None:
        self.device = device
        self.elements = max(1, (array_bytes or stream_array_bytes(device)) // 4)
        self.threads = 0 if device == "cuda" else threads or torch.get_num_threads()
        self._handle: int | None = None
        self._tensors: tuple[torch.Tensor, ...] = ()
        if device == "cuda":
            self._tensors = tuple(torch.ones(self.elements, device="cuda") for _ in range(3))
            return
        self._handle = _library().snn_stream_new(self.elements, self.threads)
        if not self._handle:
            raise MemoryError(f"STREAM: cannot allocate 3 x {self.elements * 4} bytes")

    @property
    def array_bytes(self) -> int:
        """Bytes per array."""
        return self.elements * 4

    def bytes_moved(self, kind: str) -> int:
        """Bytes STREAM counts per run of ``kind`` (``copy``: 2 arrays, ``triad``: 3)."""
        return (2 if kind == "copy" else 3) * self.array_bytes

    def run(self, kind: str, stream: bool = True) -> float:
        """One run of ``copy`` or ``triad``; returns its seconds (``stream``: non-temporal stores, CPU only)."""
        if self.device == "cuda":
            return self._run_cuda(kind)
        if self._handle is None:
            raise ValueError("the STREAM arrays were freed")
        return float(_library().snn_stream_run(self._handle, _COPY if kind == "copy" else _TRIAD, int(stream)))

    def copy(self) -> None:
        """One copy run (for timing by the caller)."""
        self.run("copy")

    def triad(self) -> None:
        """One triad run (for timing by the caller)."""
        self.run("triad")

    def evict(self) -> None:
        """Read one array (CPU): the caches are left holding clean lines only, whatever ran before.

        ``snnprof bench`` calls this before every timed call (untimed), so a call never pays for writing
        back the dirty lines of the call before it, and the order of the round-robin does not matter.
        """
        if self.device == "cuda" or self._handle is None:
            return
        _library().snn_stream_evict(self._handle)

    def _run_cuda(self, kind: str) -> float:
        a, b, c = self._tensors
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        if kind == "copy":
            c.copy_(a)
        else:
            torch.add(b, c, alpha=3.0, out=a)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    def close(self) -> None:
        """Free the arrays."""
        if self._handle is not None:
            _library().snn_stream_free(self._handle)
            self._handle = None
        self._tensors = ()

    def __enter__(self) -> StreamArrays:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def measure(self, reps: int = 10) -> StreamResult:
        """Copy and triad (and on the CPU the plain-store copy): medians of ``reps`` runs after one warm-up."""
        plain = None if self.device == "cuda" else self._median_gbs("copy", reps, stream=False)
        return StreamResult(self.device, self.threads, self.array_bytes, reps, self._median_gbs("copy", reps),
                            self._median_gbs("triad", reps), plain)  # fmt: skip

    def _median_gbs(self, kind: str, reps: int, stream: bool = True) -> float:
        self.run(kind, stream)
        seconds = [self.run(kind, stream) for _ in range(reps)]
        return self.bytes_moved(kind) / statistics.median(seconds) / 1e9


def measure_stream(
    device: str = "cpu", threads: int | None = None, reps: int = 10, array_bytes: int | None = None
) -> StreamResult:
    """Measure copy and triad bandwidth (see the module docstring); medians over ``reps`` runs each.

    Args:
        device: ``cpu`` or ``cuda``.
        threads: CPU threads (default: ``torch.get_num_threads()``).
        reps: timed runs per kernel, after one warm-up.
        array_bytes: bytes per array (default: :func:`stream_array_bytes`).

    Raises:
        NativeBuildError: on the CPU, when the STREAM library cannot be built here.
    """
    with StreamArrays(device, threads, array_bytes) as arrays:
        return arrays.measure(reps)

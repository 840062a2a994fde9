"""Large output tensors of the fused CPU kernels from a caching pool of already-mapped memory.

A fresh multi-megabyte CPU tensor is paid for in page faults when it is first written (the OS maps
and zeroes each page): for a ``[16, 2^20]`` float32 spike output that is about 20 ms, four times the
5 ms the forward kernel needs to write it. PyTorch's CPU allocator hands large blocks back to the OS
when a tensor dies, so a training loop pays this on every step. :func:`empty` takes blocks from a pool
(``csrc/buffer_pool.cpp``) instead: the block of a dead output is kept (up to a limit) and handed out
again, already mapped, as PyTorch's CUDA caching allocator does on a GPU. The tensors reach PyTorch
through DLPack, without a copy; when the last tensor viewing a block dies, the block goes back.

The pool keeps at most ``SNNPROF_BUFFER_POOL_MB`` MiB of free blocks (default 1024); ``0`` disables
it (every output is a plain ``torch.empty``). Tensors under :data:`MIN_POOLED_BYTES`, and every tensor
when the native library is unavailable, come from ``torch.empty``. Pooled tensors are ordinary
contiguous CPU tensors, except that their storage cannot be resized.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from snnprof.errors import first_line
from snnprof.native_build import NativeBuildError, load

__all__ = ["ENV_VAR", "MIN_POOLED_BYTES", "PoolStats", "clear", "empty", "stats", "unavailable_reason"]

logger = logging.getLogger(__name__)

#: MiB of free blocks the pool keeps at most; ``0`` disables the pool.
ENV_VAR = "SNNPROF_BUFFER_POOL_MB"
DEFAULT_LIMIT_MB = 1024
#: Smaller tensors come from ``torch.empty`` (the pool rounds blocks up to 2 MiB).
MIN_POOLED_BYTES = 4 << 20
_SOURCE = "buffer_pool.cpp"
_ABI_VERSION = 1
_BITS = {torch.float32: 32, torch.float64: 64}
_CAPSULE_NAME = b"dltensor"  # DLPack's capsule name; must outlive every capsule (module constant)

_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype = ctypes.py_object
_capsule_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]


@dataclass(frozen=True)
class PoolStats:
    """State of the pool.

    Attributes:
        cached_bytes: bytes of free blocks kept for reuse.
        limit_bytes: the most it keeps.
        hits: requests served from a kept block.
        misses: requests that allocated a new block.
        live: pooled tensors (blocks) alive now.
    """

    cached_bytes: int
    limit_bytes: int
    hits: int
    misses: int
    live: int


def _limit_bytes() -> int:
    """The limit from ``SNNPROF_BUFFER_POOL_MB`` (bad values: the default, with a warning)."""
    text = os.environ.get(ENV_VAR, str(DEFAULT_LIMIT_MB)).strip()
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        logger.warning("%s=%r is not a number of MiB >= 0; using %d", ENV_VAR, text, DEFAULT_LIMIT_MB)
        value = DEFAULT_LIMIT_MB
    return int(value * (1 << 20))


@functools.cache
def _library() -> ctypes.CDLL | str:
    """The bound pool library, or why it is not used (one sentence)."""
    limit = _limit_bytes()
    if limit == 0:
        return f"disabled by {ENV_VAR}=0"
    try:
        lib = load(_SOURCE, "snn_pool_abi_version", _ABI_VERSION)
    except NativeBuildError as err:
        reason = first_line(err)
        logger.info("kernel buffer pool unavailable, using torch.empty: %s", reason)
        return reason
    lib.snn_pool_tensor.restype = ctypes.c_void_p
    lib.snn_pool_tensor.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_int64), ctypes.c_int]
    lib.snn_pool_discard.argtypes = [ctypes.c_void_p]
    lib.snn_pool_set_limit.argtypes = [ctypes.c_int64]
    lib.snn_pool_clear.restype = ctypes.c_int64
    lib.snn_pool_stats.argtypes = [ctypes.POINTER(ctypes.c_int64)]
    lib.snn_pool_set_limit(limit)
    return lib


def unavailable_reason() -> str | None:
    """``None`` when the pool is in use, else why not."""
    lib = _library()
    return lib if isinstance(lib, str) else None


def empty(shape: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor; from the pool when it is large and the pool is in use.

    Args:
        shape: the tensor's shape.
        dtype: ``torch.float32`` or ``torch.float64`` (other dtypes come from ``torch.empty``).
    """
    shape = tuple(int(d) for d in shape)
    lib = _library()
    bits = _BITS.get(dtype)
    if isinstance(lib, str) or bits is None or math.prod(shape) * bits // 8 < MIN_POOLED_BYTES or len(shape) > 8:
        return torch.empty(shape, dtype=dtype)
    handle = lib.snn_pool_tensor(len(shape), (ctypes.c_int64 * len(shape))(*shape), bits)
    if not handle:
        return torch.empty(shape, dtype=dtype)
    try:
        return torch.from_dlpack(_capsule_new(handle, _CAPSULE_NAME, None))
    except Exception:  # a torch that refuses the capsule: hand the block back, use a plain tensor
        lib.snn_pool_discard(handle)
        logger.warning("torch.from_dlpack refused a pooled buffer; using torch.empty", exc_info=True)
        return torch.empty(shape, dtype=dtype)


def stats() -> PoolStats | None:
    """The pool's counters (``None`` when it is not in use)."""
    lib = _library()
    if isinstance(lib, str):
        return None
    out = (ctypes.c_int64 * 5)()
    lib.snn_pool_stats(out)
    return PoolStats(*(int(v) for v in out))


def clear() -> int:
    """Free every kept block; returns the bytes freed (0 when the pool is not in use)."""
    lib = _library()
    return 0 if isinstance(lib, str) else int(lib.snn_pool_clear())

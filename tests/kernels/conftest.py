"""Shared fixtures of the kernel tests: the fused CPU library is built once per session."""

from __future__ import annotations

import ctypes
import time

import pytest


@pytest.fixture(scope="session")
def fused_lib() -> ctypes.CDLL:
    """Build (first use: ~10-20 s on 2 cores; then cached in ~/.cache/snnprof) and load the C++ kernel."""
    from snnprof.kernels.fused_cpu import load_library

    start = time.perf_counter()
    lib = load_library()
    print(f"fused CPU kernel ready in {time.perf_counter() - start:.1f} s")
    return lib

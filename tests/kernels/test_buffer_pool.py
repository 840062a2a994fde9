"""The caching pool of large kernel outputs: reuse, views keep blocks alive, limits, opting out."""

from __future__ import annotations

import gc

import pytest
import torch

from snnprof.kernels import buffer_pool

pytestmark = pytest.mark.skipif(
    buffer_pool.unavailable_reason() is not None, reason=f"buffer pool: {buffer_pool.unavailable_reason()}"
)
BIG = (2, 1 << 20)  # 8 MiB of float32: pooled


def test_large_tensors_are_pooled_and_reused():
    a = buffer_pool.empty(BIG, torch.float32)
    assert a.shape == BIG and a.dtype == torch.float32 and a.is_contiguous() and a.device.type == "cpu"
    a.fill_(3.0)
    assert float(a.sum()) == 3.0 * a.numel()
    ptr = a.data_ptr()
    del a
    before = buffer_pool.stats()
    b = buffer_pool.empty(BIG, torch.float32)
    assert b.data_ptr() == ptr and buffer_pool.stats().hits == before.hits + 1


def test_a_view_keeps_the_block():
    a = buffer_pool.empty(BIG, torch.float64)
    view = a[1]
    ptr = a.data_ptr()
    del a
    gc.collect()
    other = buffer_pool.empty(BIG, torch.float64)
    assert other.data_ptr() != ptr  # the block is still viewed, so not handed out again
    del view
    assert buffer_pool.empty(BIG, torch.float64).data_ptr() == ptr


def test_small_and_other_dtypes_come_from_torch():
    before = buffer_pool.stats()
    small = buffer_pool.empty((16, 1024), torch.float32)
    ints = buffer_pool.empty(BIG, torch.int32)
    assert small.shape == (16, 1024) and ints.dtype == torch.int32
    after = buffer_pool.stats()
    assert (after.hits, after.misses) == (before.hits, before.misses)


def test_limit_and_clear():
    lib = buffer_pool._library()
    try:
        lib.snn_pool_set_limit(0)  # nothing kept: a dead block is freed at once
        buffer_pool.clear()
        a = buffer_pool.empty(BIG, torch.float32)
        del a
        assert buffer_pool.stats().cached_bytes == 0
        lib.snn_pool_set_limit(1 << 30)
        a = buffer_pool.empty(BIG, torch.float32)
        del a
        assert buffer_pool.stats().cached_bytes == 8 << 20  # one 2 MiB-rounded block
        assert buffer_pool.clear() == 8 << 20 and buffer_pool.stats().cached_bytes == 0
    finally:
        lib.snn_pool_set_limit(buffer_pool._limit_bytes())


def test_zero_disables_the_pool(monkeypatch):
    monkeypatch.setenv(buffer_pool.ENV_VAR, "0")
    buffer_pool._library.cache_clear()
    try:
        assert buffer_pool.unavailable_reason() == f"disabled by {buffer_pool.ENV_VAR}=0"
        assert buffer_pool.stats() is None and buffer_pool.clear() == 0
        assert buffer_pool.empty(BIG, torch.float32).shape == BIG
    finally:
        monkeypatch.delenv(buffer_pool.ENV_VAR)
        buffer_pool._library.cache_clear()


LIMITS = [("512", 512 << 20), ("0.5", 1 << 19), ("lots", 1024 << 20), ("-1", 1024 << 20)]


@pytest.mark.parametrize(("text", "limit"), LIMITS)
def test_limit_from_the_environment(monkeypatch, text: str, limit: int):
    monkeypatch.setenv(buffer_pool.ENV_VAR, text)
    assert buffer_pool._limit_bytes() == limit

"""STREAM-style bandwidth: array sizing, the cache-size parser, measurements on small arrays."""

from __future__ import annotations

import pytest
import torch

from snnprof.kernels import membw
from snnprof.kernels.membw import StreamArrays, StreamResult, measure_stream


@pytest.mark.parametrize(("text", "size"), [("32768K\n", 32 << 20), ("1M", 1 << 20), ("2G", 2 << 30), ("512", 512)])
def test_cache_size_parser(text: str, size: int):
    assert membw._cache_size(text) == size


def test_arrays_are_four_times_the_cache(monkeypatch):
    monkeypatch.setattr(membw, "llc_bytes", lambda: 32 << 20)
    assert membw.stream_array_bytes() == 128 << 20
    monkeypatch.setattr(membw, "llc_bytes", lambda: 1 << 20)
    assert membw.stream_array_bytes() == 64 << 20  # never below 64 MiB


def test_reference_is_the_better_of_copy_and_triad():
    result = StreamResult("cpu", 2, 1 << 27, 10, copy_gbs=40.0, triad_gbs=42.5, copy_plain_gbs=30.0)
    assert result.reference_gbs == 42.5


def test_bytes_counted_as_stream_does():
    with StreamArrays(threads=1, array_bytes=1 << 20) as arrays:
        assert arrays.array_bytes == 1 << 20
        assert arrays.bytes_moved("copy") == 2 << 20 and arrays.bytes_moved("triad") == 3 << 20
        assert arrays.run("copy") > 0 and arrays.run("triad", stream=False) > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_measure_small_arrays(threads: int):
    result = measure_stream(threads=threads, reps=3, array_bytes=(1 << 20) + 12)  # not a multiple of the vector
    assert result.threads == threads and result.reps == 3 and result.array_bytes == (1 << 20) + 12
    assert min(result.copy_gbs, result.triad_gbs, result.copy_plain_gbs) > 0


def test_freed_arrays_refuse_to_run():
    arrays = StreamArrays(threads=1, array_bytes=1 << 16)
    arrays.close()
    arrays.close()  # idempotent
    with pytest.raises(ValueError, match="freed"):
        arrays.run("copy")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_measure_on_gpu():
    result = measure_stream("cuda", reps=3, array_bytes=64 << 20)
    assert result.device == "cuda" and result.copy_plain_gbs is None and result.copy_gbs > 0


def test_evict_reads_the_whole_array():
    with StreamArrays(threads=2, array_bytes=(1 << 20) + 12) as arrays:
        arrays.evict()
        # array b holds 2.0 everywhere: the read covers every element, vector body and tail, on both threads
        assert membw._library().snn_stream_evict(arrays._handle) == 2.0 * arrays.elements

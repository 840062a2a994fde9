"""Shared fixtures of the StereoSpike tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread() -> Iterator[None]:
    """Run these conv-heavy tests on one torch thread (restored afterwards).

    On a 2-core machine shared with other jobs, two OpenMP threads spin-wait on each other and run
    10x slower than one; on an idle machine one thread costs about 1.5x.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

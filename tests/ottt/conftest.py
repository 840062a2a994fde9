"""Shared fixtures of the OTTT tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Run on one intra-op thread: these tensors are small, and on a busy 2-core machine a second
    OpenMP thread makes small convolutions an order of magnitude slower. Restored afterwards."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)

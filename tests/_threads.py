"""Shared fixture body: run a test package on one intra-op torch thread.

Small tensors gain nothing from a second OpenMP thread, and on a busy 2-core machine it makes small
convolutions an order of magnitude slower. Packages opt in from their conftest.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


def one_thread() -> Iterator[None]:
    """Set one torch thread for the duration of a test, then restore the previous setting."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)

"""Shared fixtures of the tests/train package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._threads import one_thread


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One torch thread per test (see tests/_threads.py)."""
    yield from one_thread()

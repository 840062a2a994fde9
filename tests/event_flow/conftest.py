"""Fixtures of the event_flow tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._threads import one_thread


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run these small-tensor tests on one intra-op thread (restored afterwards).

    On a loaded 2-core machine the OpenMP workers of tiny convolutions mostly spin-wait; one
    thread made these tests about 10x faster there, with identical results.
    """
    yield from one_thread()

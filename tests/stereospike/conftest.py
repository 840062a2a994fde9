"""Shared fixtures of the StereoSpike tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._threads import one_thread


@pytest.fixture(autouse=True, scope="package")
def _one_torch_thread() -> Iterator[None]:
    """Run these conv-heavy tests on one torch thread (restored afterwards).

    On a 2-core machine shared with other jobs, two OpenMP threads spin-wait on each other and run
    10x slower than one; on an idle machine one thread costs about 1.5x.
    """
    yield from one_thread()

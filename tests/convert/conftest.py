"""Shared helpers of the converter tests: one torch thread, checkpoints written in upstream layouts."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests._threads import one_thread


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread (small tensors on a busy 2-core machine; see tests/_threads.py)."""
    yield from one_thread()


def save(path: Path, obj: Any) -> Path:
    """``torch.save`` ``obj`` to ``path`` (what the upstream training scripts do)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    path.write_bytes(buffer.getvalue())
    return path


def randn(gen: torch.Generator, *shape: int, scale: float = 1.0) -> torch.Tensor:
    """Seeded ``N(0, scale^2)`` tensor."""
    return torch.randn(*shape, generator=gen) * scale

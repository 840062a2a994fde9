"""Dataset readers (real on-disk formats) and synthetic generators that write the same formats.

Readers register with :func:`register_reader`; configs name them in ``[input] reader = "..."``.
A reader is ``reader(path, **kwargs) -> torch.utils.data.Dataset`` whose items are
``(inputs, target)`` for ONE sample (no batch dimension). A zoo entry's ``from_batch`` turns a
collated batch of inputs into what the model's runner takes (e.g. ``[B, T, ...] -> [T, B, ...]``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

__all__ = ["Reader", "UnknownReaderError", "get_reader", "list_readers", "register_reader"]

Reader = Callable[..., Dataset]
_READERS: dict[str, Reader] = {}


class UnknownReaderError(KeyError):
    """Raised when a reader name is not registered."""


def register_reader(name: str) -> Callable[[Reader], Reader]:
    """Decorator registering a dataset reader under ``name``; refuses duplicates."""

    def deco(fn: Reader) -> Reader:
        if name in _READERS:
            raise ValueError(f"dataset reader {name!r} is already registered")
        _READERS[name] = fn
        return fn

    return deco


def _load_all() -> None:
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def list_readers() -> list[str]:
    """Registered reader names, sorted."""
    _load_all()
    return sorted(_READERS)


def get_reader(name: str) -> Reader:
    """The reader registered as ``name`` (``UnknownReaderError`` lists the known ones)."""
    _load_all()
    if name not in _READERS:
        raise UnknownReaderError(f"unknown dataset reader {name!r}; registered readers: {', '.join(sorted(_READERS))}")
    return _READERS[name]


def open_dataset(name: str, path: str | Path, **kwargs: Any) -> Dataset:
    """Open ``path`` with the reader ``name``."""
    return get_reader(name)(Path(path), **kwargs)

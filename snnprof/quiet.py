"""Silence environment notes of libraries while snnprof builds and runs models (e.g. "Triton not available").

The notes are harmless on a CPU machine and would otherwise interleave with snnprof's own output;
levels are restored on exit, so an application embedding snnprof keeps its logging configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["NOISY_LOGGERS", "quiet_libraries"]

#: Loggers whose warnings are environment notes, not problems of the profiled run.
NOISY_LOGGERS: tuple[str, ...] = ("torch._library.triton",)


@contextmanager
def quiet_libraries(level: int = logging.ERROR) -> Iterator[None]:
    """Raise the level of :data:`NOISY_LOGGERS` to ``level`` inside the block."""
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    before = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(level, logger.level))
    try:
        yield
    finally:
        for logger, old in zip(loggers, before, strict=True):
            logger.setLevel(old)

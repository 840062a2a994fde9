"""Errors of dataset-scale profiling (both exit with code 2 and one ``error:`` line in the CLI)."""

from __future__ import annotations

from snnprof.errors import SnnprofError

__all__ = ["DatasetError", "DistributedRunError"]


class DatasetError(SnnprofError):
    """The data set cannot be read to the end: a reader error, or fewer samples than ``len()`` claims."""


class DistributedRunError(SnnprofError):
    """A rank of a distributed run failed (the message names the rank and its error).

    Attributes:
        every_rank: every surviving rank reports it (the ranks lost contact, so none of them can
            rely on rank 0 to print it); otherwise rank 0 alone prints it.
    """

    def __init__(self, message: str, every_rank: bool = False) -> None:
        super().__init__(message)
        self.every_rank = every_rank

"""Shared plumbing of the CLI commands: consoles, exit codes, one-line errors, atomic outputs.

Command modules in :mod:`snnprof.commands` import these helpers so that every command reports
bad input the same way (one ``error:`` line, exit 2, nothing written).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from snnprof.errors import HardwareMissingError, SnnprofError
from snnprof.io import atomic_write_text
from snnprof.models import UnknownModelError

__all__ = ["EXIT_BAD_INPUT", "EXIT_NO_HARDWARE", "err_console", "errors", "fail", "out_console", "write_outputs"]

out_console = Console()
err_console = Console(stderr=True)

EXIT_BAD_INPUT = 2
EXIT_NO_HARDWARE = 3


def _message(err: BaseException) -> str:
    """An exception's message (``KeyError`` subclasses would otherwise be quoted)."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err)


def fail(err: BaseException, code: int) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr and exit with ``code``."""
    line = " ".join(_message(err).split())
    err_console.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True, style="red")
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Turn snnprof's own errors into one-line messages and exit codes 2/3."""
    try:
        yield
    except HardwareMissingError as err:
        fail(err, EXIT_NO_HARDWARE)
    except (SnnprofError, UnknownModelError) as err:
        fail(err, EXIT_BAD_INPUT)


def write_outputs(outputs: dict[Path, str]) -> None:
    """Write every rendered output atomically (all texts are rendered before anything is written)."""
    for path, text in outputs.items():
        try:
            atomic_write_text(path, text)
        except OSError as err:
            fail(OSError(f"cannot write {path}: {err.strerror or err}"), EXIT_BAD_INPUT)



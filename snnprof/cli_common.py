"""Shared plumbing of the CLI commands: consoles, exit codes, one-line errors, atomic outputs, signals.

Command modules in :mod:`snnprof.commands` import these helpers so that every command reports
bad input the same way (one ``error:`` line, exit 2, nothing written): outputs are checked before
any work (:func:`check_outputs`) and written together at the end (:func:`write_outputs`); SIGTERM
stops a command like Ctrl-C (exit 130, temporary files removed).
"""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console

from snnprof.errors import HardwareMissingError, SnnprofError
from snnprof.io import check_output_paths, write_all
from snnprof.models import UnknownModelError
from snnprof.units import printable

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_INTERRUPTED",
    "EXIT_NO_HARDWARE",
    "check_outputs",
    "err_console",
    "errors",
    "fail",
    "handle_sigterm",
    "out_console",
    "strict_json",
    "write_outputs",
]

#: Consoles never interpret Rich markup: names from user files and models are printed as written
#: (renderers also show their control characters escaped, :func:`snnprof.units.printable`).
out_console = Console(markup=False, emoji=False)
err_console = Console(stderr=True, markup=False, emoji=False)

EXIT_BAD_INPUT = 2
EXIT_NO_HARDWARE = 3
EXIT_INTERRUPTED = 130


def _message(err: BaseException) -> str:
    """An exception's message (``KeyError`` subclasses would otherwise be quoted)."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    return str(err)


def fail(err: BaseException, code: int) -> NoReturn:
    """Print ``error: <message>`` as one line on stderr (control characters shown escaped) and exit with ``code``."""
    line = printable(" ".join(_message(err).split()))
    err_console.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True, style="red")
    raise typer.Exit(code)


@contextmanager
def errors() -> Iterator[None]:
    """Turn snnprof's own errors into one-line messages and exit codes 2/3; Ctrl-C/SIGTERM into 130."""
    try:
        yield
    except HardwareMissingError as err:
        fail(err, EXIT_NO_HARDWARE)
    except (SnnprofError, UnknownModelError) as err:
        fail(err, EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        fail(KeyboardInterrupt("interrupted; no output was written"), EXIT_INTERRUPTED)


def _sigterm(signum: int, frame: Any) -> None:
    """SIGTERM raises KeyboardInterrupt, so the command unwinds (and cleans up) as on Ctrl-C."""
    del signum, frame
    raise KeyboardInterrupt


def handle_sigterm() -> None:
    """Stop on SIGTERM as on SIGINT (main thread only; a no-op elsewhere)."""
    with contextlib.suppress(ValueError):  # not the main thread (e.g. an embedding application)
        signal.signal(signal.SIGTERM, _sigterm)


def check_outputs(*paths: Path | None) -> None:
    """Check the command's output paths before any work: distinct, not folders, writable folders.

    Raises:
        typer.Exit: code 2 with one ``error:`` line naming the path.
    """
    given = [p for p in paths if p is not None]
    try:
        check_output_paths(given)
    except OSError as err:
        fail(err, EXIT_BAD_INPUT)


def strict_json(data: Any) -> str:
    """JSON text that strict parsers accept (``NaN``/``Infinity`` are an error, never written)."""
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def write_outputs(outputs: dict[Path, str]) -> None:
    """Write every rendered output as one step: all files appear, or none (exit 2 naming the path)."""
    try:
        write_all({path: text.encode("utf-8") for path, text in outputs.items()})
    except OSError as err:
        where = f" {err.filename}" if err.filename else ""
        fail(OSError(f"cannot write{where}: {err.strerror or err}"), EXIT_BAD_INPUT)

"""The exception hierarchy of snnprof: one specific class per failure users can act on."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "FileKeyError",
    "HardwareMissingError",
    "ProfileFileError",
    "SnnprofError",
    "UncountedOpsError",
    "UncountedOpsWarning",
    "described",
    "first_line",
]


class SnnprofError(Exception):
    """Base class of every error snnprof raises on purpose."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (``""`` when the message is empty)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else ""


def described(err: BaseException) -> str:
    """``Type: first line`` of an exception caught at a boundary (just ``Type`` when its message is empty)."""
    line = first_line(err)
    return f"{type(err).__name__}: {line}" if line else type(err).__name__


def _uncounted(unsupported: list[str], uncalled: list[str], head: str) -> str:
    """``"<head>: a, b; modules with parameters never ran: c"``."""
    parts = [f"{head}: " + ", ".join(unsupported)] if unsupported else []
    if uncalled:
        parts.append("modules with parameters never ran: " + ", ".join(uncalled))
    return "; ".join(parts)


class UncountedOpsError(SnnprofError):
    """``strict=True`` and some modules/ops ran without a rule (or modules with weights never ran).

    Attributes:
        unsupported: ``"name (Type)"`` strings of modules/ops without a rule.
        uncalled: names of modules with parameters that never ran.
    """

    def __init__(self, unsupported: list[str], uncalled: list[str]) -> None:
        self.unsupported, self.uncalled = list(unsupported), list(uncalled)
        super().__init__(_uncounted(self.unsupported, self.uncalled, "no counting rule for"))


class FileKeyError(SnnprofError):
    """An input file is invalid at one key: the message is ``FILE: KEY: expected ...``.

    Attributes:
        path: the file.
        key: dotted key at fault (``""`` for file-level problems).
        expected: what was expected there.
    """

    def __init__(self, path: str, key: str, expected: str) -> None:
        self.path, self.key, self.expected = str(path), key, expected
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + expected)


class ConfigError(FileKeyError):
    """A run config (TOML), or another input named by one (checkpoint, data set, resume file), is invalid."""


class ProfileFileError(FileKeyError):
    """A hardware-profile file is missing or invalid (message names the file and key)."""


class HardwareMissingError(SnnprofError):
    """Needed hardware (an NVIDIA GPU, NVML) is not available."""


class UncountedOpsWarning(UserWarning):
    """Some modules/ops ran without a counting rule, or modules with weights never ran (``strict=False``).

    Emitted once per profiling run (Python ``warnings``); the same names are in
    ``result.unsupported`` and ``result.uncalled``. ``strict=True`` raises
    :class:`UncountedOpsError` instead; ``Profiler(..., warn=False)`` stays silent.

    Attributes:
        unsupported: ``"name (Type)"`` strings of modules/ops without a rule.
        uncalled: names of modules with parameters that never ran.
    """

    def __init__(self, unsupported: list[str], uncalled: list[str]) -> None:
        self.unsupported, self.uncalled = list(unsupported), list(uncalled)
        super().__init__(_uncounted(self.unsupported, self.uncalled, "not counted (no rule)"))

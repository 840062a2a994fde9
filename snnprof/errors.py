"""The exception hierarchy of snnprof: one specific class per failure users can act on."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "HardwareMissingError",
    "ProfileFileError",
    "SnnprofError",
    "UncountedOpsError",
    "UncountedOpsWarning",
]


class SnnprofError(Exception):
    """Base class of every error snnprof raises on purpose."""


class UncountedOpsError(SnnprofError):
    """``strict=True`` and some modules/ops ran without a rule (or modules with weights never ran).

    Attributes:
        unsupported: ``"name (Type)"`` strings of modules/ops without a rule.
        uncalled: names of modules with parameters that never ran.
    """

    def __init__(self, unsupported: list[str], uncalled: list[str]) -> None:
        self.unsupported = list(unsupported)
        self.uncalled = list(uncalled)
        parts = []
        if unsupported:
            parts.append("no counting rule for: " + ", ".join(unsupported))
        if uncalled:
            parts.append("modules with parameters never ran: " + ", ".join(uncalled))
        super().__init__("; ".join(parts))


class ConfigError(SnnprofError):
    """A run config (TOML) is invalid.

    Attributes:
        path: the config file.
        key: dotted key at fault (``""`` for file-level problems).
        expected: what was expected there.
    """

    def __init__(self, path: str, key: str, expected: str) -> None:
        self.path, self.key, self.expected = str(path), key, expected
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + expected)


class ProfileFileError(SnnprofError):
    """A hardware-profile file is missing or invalid (message names the file and key)."""

    def __init__(self, path: str, key: str, expected: str) -> None:
        self.path, self.key, self.expected = str(path), key, expected
        where = f"{self.path}: {key}: " if key else f"{self.path}: "
        super().__init__(where + expected)


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
        self.unsupported = list(unsupported)
        self.uncalled = list(uncalled)
        parts = []
        if unsupported:
            parts.append("not counted (no rule): " + ", ".join(unsupported))
        if uncalled:
            parts.append("modules with parameters never ran: " + ", ".join(uncalled))
        super().__init__("; ".join(parts))

"""Human-readable number formatting: SI-prefixed counts (``1.23 G``) and energies (``4.56 µJ``)."""

from __future__ import annotations

import math
import unicodedata

__all__ = ["format_count", "format_energy_pj", "format_rate", "format_si", "printable"]

_PREFIXES: tuple[tuple[float, str], ...] = (
    (1e15, "P"),
    (1e12, "T"),
    (1e9, "G"),
    (1e6, "M"),
    (1e3, "k"),
)

_ENERGY_UNITS: tuple[tuple[float, str], ...] = (
    (1e12, "J"),
    (1e9, "mJ"),
    (1e6, "µJ"),
    (1e3, "nJ"),
    (1.0, "pJ"),
)


def _significant(value: float, digits: int = 3) -> str:
    """Format ``value`` with about ``digits`` significant digits, without exponent notation."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(digits - 1 - magnitude, 0)
    return f"{value:.{decimals}f}"


def _round_significant(value: float, digits: int) -> float:
    """Round ``value`` to ``digits`` significant digits (so 999 999 picks the next prefix up)."""
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def format_si(value: float, unit: str = "", digits: int = 3) -> str:
    """Format a number with an SI prefix (k, M, G, T, P).

    Args:
        value: the number.
        unit: unit symbol appended after the prefix (``""`` for plain counts).
        digits: significant digits.

    Returns:
        e.g. ``"1.23 G"``, ``"456 kOP"``; values below 1000 keep no prefix.

    Example:
        >>> format_si(1_234_000_000)
        '1.23 G'
    """
    if not math.isfinite(value):
        return str(value)
    rounded = _round_significant(value, digits)
    for scale, prefix in _PREFIXES:
        if abs(rounded) >= scale:
            return f"{_significant(rounded / scale, digits)} {prefix}{unit}".rstrip()
    return f"{_significant(value, digits)} {unit}".rstrip()


def format_count(value: float) -> str:
    """Format an operation/spike count: exact below 10 000, SI-prefixed above.

    Example:
        >>> format_count(512), format_count(4_560_000)
        ('512', '4.56 M')
    """
    if isinstance(value, int) and abs(value) < 10_000:
        return str(value)
    if float(value).is_integer() and abs(value) < 10_000:
        return str(int(value))
    return format_si(value)


def format_energy_pj(picojoules: float, digits: int = 3) -> str:
    """Format an energy given in picojoules with the best unit (pJ, nJ, µJ, mJ, J).

    Example:
        >>> format_energy_pj(4_560_000.0)
        '4.56 µJ'
    """
    if not math.isfinite(picojoules):
        return f"{picojoules} pJ"
    rounded = _round_significant(picojoules, digits)
    for scale, unit in _ENERGY_UNITS:
        if abs(rounded) >= scale:
            return f"{_significant(rounded / scale, digits)} {unit}"
    return f"{_significant(picojoules, digits)} pJ"


def format_rate(rate: float | None) -> str:
    """Format a firing rate as a percentage (``"12.3 %"``); ``None`` gives an em dash.

    Example:
        >>> format_rate(0.1234)
        '12.3 %'
    """
    if rate is None:
        return "—"
    return f"{_significant(_round_significant(rate * 100.0, 3))} %"


def printable(text: str) -> str:
    r"""``text`` safe for a terminal: control characters (escape codes, NUL ...) shown as ``\xNN``.

    Example:
        >>> print(printable("\x1b[31mred"))
        \x1b[31mred
    """
    return "".join(c if c in "\t\n" or not unicodedata.category(c).startswith("C") else _escaped(c) for c in text)


def _escaped(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"
